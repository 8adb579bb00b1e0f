"""The store side of ``omnifs gov check``: what the stores hold, against the rules.

One listing per store (no user metadata). An object under a rule's paths is
checked where it is, whether or not the catalog knows it:

* objects the catalog does not know (left by another tool, or by a lost
  catalog) in a store a residency rule forbids: reported only, since omnifs
  holds no verified copy to keep (``omnifs import`` them first);
* with ``locks``, those objects' Object Lock retention read back (one HEAD
  each, S3) when shorter than the rule (known files: ``gov apply --dry-run``);
* under an ``encryption`` rule, every object's encryption as the store reports
  it (one HEAD each, S3 and MinIO): an object stored unencrypted is a
  violation even on a store that declares a setting (written before it was
  set). A known file's unencrypted copy is fixed like a misplaced one (copy
  to an allowed store, verify, delete it there); an unknown object is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .catalog import Catalog
from .config import Config
from .governance_scan import Finding, Scan, store_views
from .policy.governance import CLASS_XATTR, StoreView, Violation
from .providers import RESERVED_PREFIX, OmnifsError, Provider, open_provider
from .providers.retention import get_retention, object_encryption, unsupported


@dataclass
class StoreFinding:
    """An object the catalog does not know, out of line with a rule (report only)."""

    store: str
    path: str
    rule: str
    kind: str  # "region", "provider", "encryption", "lock"
    detail: str


@dataclass
class StoreScan:
    #: objects listed, per store
    listed: dict[str, int]
    findings: list[StoreFinding]
    #: stores that could not be read: one line each
    unreadable: list[str]


def scan_stores(cat: Catalog, cfg: Config, result: Scan, *, locks: bool = False) -> StoreScan:
    """List every store; add known files' store-side violations to ``result`` (so ``fix``
    remedies them) and return the unknown objects' (and any unreadable store)."""
    views = store_views(cfg)
    out = StoreScan({}, [], [])
    by_ino = {f.ino: f for f in result.findings}
    for name, settings in cfg.providers.items():
        view = views.get(name, StoreView(name))
        try:
            p = open_provider(settings)
        except OmnifsError as e:
            out.unreadable.append(f"{name}: {e}")
            continue
        try:
            out.listed[name] = 0
            for info in p.list("", recursive=True, metadata=False):
                if info.is_prefix or info.key.startswith(RESERVED_PREFIX):
                    continue
                out.listed[name] += 1
                _check_object(cat, cfg, p, view, info.key, info.last_modified, locks,
                              by_ino, result, out)
        except OmnifsError as e:
            out.unreadable.append(f"{name}: {e}")
        finally:
            p.close()
    return out


def _check_object(cat: Catalog, cfg: Config, p: Provider, view: StoreView, key: str,
                  modified: float | None, locks: bool, by_ino: dict[int, Finding],
                  result: Scan, out: StoreScan) -> None:
    gov = cfg.governance.engine
    known = cat.replicas.holders(view.name, key)
    ino = known[0].inode if known else None
    rel = cat.ns.path_of(ino) if ino is not None else None
    path = "/" + (rel if rel is not None else key).strip("/")
    xattr = cat.ns.get_xattr(ino, CLASS_XATTR) if ino is not None else None
    cls = gov.class_of(path, xattr)
    rules = gov.rules_for(path, cls)
    if not rules:
        return
    found: list[Violation] = []
    if ino is None:  # residency: the catalog scan sees only the files it knows
        for rule in rules:
            why = gov.store_refusal(rule, view)
            if why is not None:
                found.append(Violation(rule, why[0], view.name, why[1]))
    declared = not any(v.kind == "encryption" for v in found)
    wants = [r for r in rules if r.encryption]
    if wants and declared and view.encrypted:
        got = object_encryption(p, key)
        if got == "":
            found.append(Violation(wants[0], "encryption", view.name,
                                   f"{view.name} reports the object unencrypted"))
    if locks and ino is None and unsupported(p) is None:
        keep = max((r.retention_s or 0 for r in rules), default=0)
        if keep and modified is not None:
            until = datetime.fromtimestamp(modified + keep, UTC)
            held = get_retention(p, key)
            if held is None or held < until:
                rule = max(rules, key=lambda r: r.retention_s or 0)
                found.append(Violation(rule, "lock", view.name, (
                    f"locked until {held:%Y-%m-%d}" if held else "not locked")
                    + f", the rule wants {until:%Y-%m-%d} (`gov apply` locks known files)"))
    if not found:
        return
    if ino is None:
        out.findings.extend(StoreFinding(view.name, path, v.rule.label, v.kind, v.detail)
                            for v in found)
        return
    finding = by_ino.get(ino)
    if finding is None:
        holders = sorted(r.provider for r in cat.replicas.of(ino) if r.state == "synced")
        finding = by_ino[ino] = Finding(ino, path, cls, holders, [])
        result.findings.append(finding)
    finding.violations.extend(found)
