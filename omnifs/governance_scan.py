"""Existing violations of the governance rules, and their remediation as queued work.

:func:`scan` walks the catalog's files and asks the rule engine
(``omnifs.policy.governance``) about the stores each one's synced copies are
in: a forbidden region or store, too few copies or regions, a store without
encryption where a rule asks for it. :func:`fix` queues what repairs them
for the daemon (or ``omnifs replicate --now``): a ``replicate`` to an allowed
store and, for a copy where it must not be, a ``drop`` that deletes it only
once the new copy is verified (omnifs/drop_copy.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .catalog import ROOT_INODE, Catalog
from .config import Config
from .policy.governance import CLASS_XATTR, Governance, StoreView, Violation
from .policy.placement import infer_region
from .work import DropCopy, Replicate, enqueue

#: violations a copy's move fixes (the others need more copies)
MISPLACED = ("region", "provider", "encryption")


@dataclass
class Finding:
    ino: int
    path: str
    cls: str | None
    holders: list[str]
    violations: list[Violation]


@dataclass
class Scan:
    time: float
    files: int = 0
    #: rule label -> files it covers
    covered: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def store_views(cfg: Config) -> dict[str, StoreView]:
    return {n: StoreView(n, infer_region(t), bool(t.get("encryption")))
            for n, t in cfg.provider_tables.items()}


def scan(cat: Catalog, cfg: Config, now: float | None = None) -> Scan:
    gov: Governance = cfg.governance.engine
    stores = store_views(cfg)
    out = Scan(time=now if now is not None else time.time())
    for label in (r.label for r in gov.rules):
        out.covered.setdefault(label, 0)
    for ino, rel in cat.ns.files_under(ROOT_INODE):
        inode = cat.ns.get(ino)
        if inode is None:
            continue
        path = "/" + rel.strip("/")
        out.files += 1
        xattr = cat.ns.get_xattr(ino, CLASS_XATTR)
        cls = gov.class_of(path, xattr)
        rules = gov.rules_for(path, cls)
        for r in rules:
            out.covered[r.label] += 1
        if not rules:
            continue
        holders = sorted(r.provider for r in cat.replicas.of(ino)
                         if r.state == "synced" and r.version == inode.version)
        views = [stores.get(h, StoreView(h)) for h in holders]
        found = gov.violations(path, views, cls)
        if found:
            out.findings.append(Finding(ino, path, cls, holders, found))
    return out


def add_wanted_copies(cat: Catalog, cfg: Config) -> int:
    """The daemon's round: queue the copies min_copies and distinct_regions rules want."""
    gov = cfg.governance.engine
    if not any(r.min_copies or r.distinct_regions for r in gov.rules):
        return 0
    queued, _ = fix(cat, cfg, scan(cat, cfg), copies_only=True)
    return len(queued)


def refusal(cat: Catalog, cfg: Config, ino: int, provider: str) -> tuple[str, str, str] | None:
    """Why the rules forbid a copy of ``ino`` on ``provider``: (path, rule, detail), or None.

    The daemon asks before it replicates (a copy queued before a rule was added never runs).
    """
    gov = cfg.governance.engine
    rel = cat.ns.path_of(ino)
    if not gov.rules or rel is None:
        return None
    path = "/" + rel.strip("/")
    cls = gov.class_of(path, cat.ns.get_xattr(ino, CLASS_XATTR))
    store = store_views(cfg).get(provider, StoreView(provider))
    for rule in gov.rules_for(path, cls):
        why = gov.store_refusal(rule, store)
        if why is not None:
            return path, rule.label, why[1]
    return None


def transfer_refusals(cfg: Config, store: str, keys: list[str]) -> list[str]:
    """The objects the rules forbid on ``store`` (keys relative to its root, which are the
    namespace's paths): one line each, naming the object and the rule."""
    gov = cfg.governance.engine
    if not gov.rules:
        return []
    view = store_views(cfg).get(store, StoreView(store))
    out = []
    for key in keys:
        path = "/" + key.strip("/")
        for rule in gov.rules_for(path, gov.class_of(path)):
            why = gov.store_refusal(rule, view)
            if why is not None:
                out.append(f"{path}: {rule.label}: {why[1]}")
                break
    return out


@dataclass
class Remedy:
    path: str
    action: str


def fix(cat: Catalog, cfg: Config, result: Scan, *,
        copies_only: bool = False) -> tuple[list[Remedy], list[Remedy]]:
    """Queue the remediation of every finding: (queued, impossible), one line each.

    ``copies_only``: only the copies min_copies and distinct_regions want (what the
    daemon does by itself each reconcile round); misplaced copies wait for ``--fix``.
    """
    gov = cfg.governance.engine
    stores = store_views(cfg)
    candidates = list(stores.values())
    queued: list[Remedy] = []
    impossible: list[Remedy] = []
    for f in result.findings:
        bad = [] if copies_only else sorted({v.store for v in f.violations
                                             if v.kind in MISPLACED and v.store})
        good = [h for h in f.holders if h not in bad]
        allowed = [s.name for s in gov.allowed_stores(f.path, candidates, f.cls)]
        views = [stores[h] for h in good if h in stores]
        add = gov.extra_homes(f.path, views, candidates, f.cls)
        if bad and not good and not add:
            add = [n for n in allowed if n not in f.holders][:1]
        if bad and not (good or add):
            impossible.append(Remedy(f.path, "no allowed store to move it to"))
            continue
        for target in add:
            enqueue(cat.work, Replicate(inode=f.ino, provider=target))
            queued.append(Remedy(f.path, f"copy to {target}"))
        keep = (add or good)[0] if (add or good) else None
        for store in bad:
            assert keep is not None
            enqueue(cat.work, DropCopy(inode=f.ino, provider=store, after=keep))
            queued.append(Remedy(f.path, f"delete from {store} once {keep} is verified"))
        wants = [v for v in f.violations if v.kind in ("copies", "regions")]
        if wants and not add:
            impossible.append(Remedy(f.path, "; ".join(v.detail for v in wants)
                                     + ": no further allowed store"))
    return queued, impossible
