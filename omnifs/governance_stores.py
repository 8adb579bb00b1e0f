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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from .catalog import Catalog
from .config import Config
from .governance_apply import Applied, apply
from .governance_scan import Finding, Scan, scan, store_views
from .policy.governance import CLASS_XATTR, GovRule, StoreView, Violation
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


#: HEADs (encryption, locks read back) in flight per store
READERS = 8
#: objects judged before their HEADs are sent together
BATCH = 512


@dataclass
class _Object:
    """A listed object under a rule, as the catalog and the rules see it."""

    key: str
    modified: float | None
    ino: int | None
    path: str
    cls: str | None
    rules: list[GovRule]
    found: list[Violation]


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
            batch: list[_Object] = []
            with ThreadPoolExecutor(READERS, thread_name_prefix="gov-head") as pool:
                for info in p.list("", recursive=True, metadata=False):
                    if info.is_prefix or info.key.startswith(RESERVED_PREFIX):
                        continue
                    out.listed[name] += 1
                    obj = _judge(cat, cfg, view, info.key, info.last_modified)
                    if obj is not None:
                        batch.append(obj)
                    if len(batch) >= BATCH:
                        _read_back(cat, p, view, batch, locks, pool, by_ino, result, out)
                        batch = []
                _read_back(cat, p, view, batch, locks, pool, by_ino, result, out)
        except OmnifsError as e:
            out.unreadable.append(f"{name}: {e}")
        finally:
            p.close()
    return out


def _judge(cat: Catalog, cfg: Config, view: StoreView, key: str,
           modified: float | None) -> _Object | None:
    """The object's file (if the catalog knows it), rules and residency violations; None
    when no rule covers it. Catalog reads: on the caller's thread."""
    gov = cfg.governance.engine
    known = cat.replicas.holders(view.name, key)
    ino = known[0].inode if known else None
    rel = cat.ns.path_of(ino) if ino is not None else None
    path = "/" + (rel if rel is not None else key).strip("/")
    xattr = cat.ns.get_xattr(ino, CLASS_XATTR) if ino is not None else None
    cls = gov.class_of(path, xattr)
    rules = gov.rules_for(path, cls)
    if not rules:
        return None
    found: list[Violation] = []
    if ino is None:  # residency: the catalog scan sees only the files it knows
        for rule in rules:
            why = gov.store_refusal(rule, view)
            if why is not None:
                found.append(Violation(rule, why[0], view.name, why[1]))
    return _Object(key, modified, ino, path, cls, rules, found)


def _heads(p: Provider, view: StoreView, obj: _Object, locks: bool) -> list[Violation]:
    """What the store reports of ``obj`` against its rules (HEADs: on a reader thread)."""
    found: list[Violation] = []
    wants = [r for r in obj.rules if r.encryption]
    declared = not any(v.kind == "encryption" for v in obj.found)
    if wants and declared and view.encrypted and object_encryption(p, obj.key) == "":
        found.append(Violation(wants[0], "encryption", view.name,
                               f"{view.name} reports the object unencrypted"))
    keep = max((r.retention_s or 0 for r in obj.rules), default=0)
    if (locks and obj.ino is None and keep and obj.modified is not None
            and unsupported(p) is None):
        until = datetime.fromtimestamp(obj.modified + keep, UTC)
        held = get_retention(p, obj.key)
        if held is None or held < until:
            rule = max(obj.rules, key=lambda r: r.retention_s or 0)
            found.append(Violation(rule, "lock", view.name, (
                f"locked until {held:%Y-%m-%d}" if held else "not locked")
                + f", the rule wants {until:%Y-%m-%d} (`gov apply` locks known files)"))
    return found


def _read_back(cat: Catalog, p: Provider, view: StoreView, batch: list[_Object], locks: bool,
               pool: ThreadPoolExecutor, by_ino: dict[int, Finding], result: Scan,
               out: StoreScan) -> None:
    """Read ``batch``'s objects back in parallel, then record what is out of line."""
    for obj, more in zip(batch, pool.map(lambda o: _heads(p, view, o, locks), batch),
                         strict=True):
        found = obj.found + more
        if not found:
            continue
        if obj.ino is None:
            out.findings.extend(StoreFinding(view.name, obj.path, v.rule.label, v.kind,
                                             v.detail) for v in found)
            continue
        finding = by_ino.get(obj.ino)
        if finding is None:
            holders = sorted(r.provider for r in cat.replicas.of(obj.ino)
                             if r.state == "synced")
            finding = by_ino[obj.ino] = Finding(obj.ino, obj.path, obj.cls, holders, [])
            result.findings.append(finding)
        finding.violations.extend(found)


@dataclass
class Checked:
    """Everything ``gov check`` and ``gov report`` find: the catalog's files, the stores'
    objects, and (``locks``) each retained copy's store-side lock."""

    result: Scan
    stores: StoreScan
    #: ``gov apply --dry-run``'s answer when the locks were read, else None
    locks: Applied | None
    #: whether the stores were listed
    listed: bool

    @property
    def clean(self) -> bool:
        return self.result.clean and not (self.stores.findings or self.stores.unreadable
                                          or self.locks and self.locks.lines[:-1])


def check_all(cat: Catalog, cfg: Config, *, stores: bool = True, locks: bool = False) -> Checked:
    """The catalog scan, then (``stores``) each store's listing and read-backs, then
    (``locks``) the known files' locks as ``gov apply --dry-run`` sees them."""
    result = scan(cat, cfg)
    found = scan_stores(cat, cfg, result, locks=locks) if stores else StoreScan({}, [], [])
    return Checked(result, found, apply(cat, cfg, dry_run=True) if locks else None, stores)
