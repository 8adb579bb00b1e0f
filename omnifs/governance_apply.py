"""``omnifs gov apply``: the retention rules as the stores' own locks (providers/retention.py).

For each file a ``retention`` rule covers, each store holding a synced copy
gets a lock until the file's creation plus the longest retention that
applies (a lock already longer is left alone), and a legal hold when a
``legal_hold`` rule covers it. Stores that cannot hold a lock
are named once each, with the reason; they count as failures (exit 1), since
the rule is then only enforced by omnifs itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from .catalog import ROOT_INODE, Catalog
from .config import Config
from .policy.governance import CLASS_XATTR
from .providers import OmnifsError, Provider, open_provider
from .providers.retention import (
    get_legal_hold,
    get_retention,
    set_legal_hold,
    set_retention,
    unsupported,
)


@dataclass
class LockGap:
    """A copy whose store-side lock is shorter than its rule wants (or missing)."""

    path: str
    store: str
    rule: str
    #: what is (dry run: would be) set, e.g. "until 2033-12-06 10:00:00 UTC"
    detail: str


@dataclass
class Applied:
    lines: list[str] = field(default_factory=list)
    locked: int = 0
    kept: int = 0
    failed: int = 0
    #: the copies locked (dry run: to lock), per rule
    gaps: list[LockGap] = field(default_factory=list)
    #: store -> why it holds no lock, for the stores holding a protected copy
    unlockable: dict[str, str] = field(default_factory=dict)
    #: rule label -> the stores holding its files where only omnifs enforces it
    omnifs_only: dict[str, set[str]] = field(default_factory=dict)


def apply(cat: Catalog, cfg: Config, *, dry_run: bool = False) -> Applied:
    gov = cfg.governance.engine
    out = Applied()
    opened: dict[str, Provider] = {}
    try:
        for ino, rel in cat.ns.files_under(ROOT_INODE):
            inode = cat.ns.get(ino)
            if inode is None:
                continue
            path = "/" + rel.strip("/")
            cls = gov.class_of(path, cat.ns.get_xattr(ino, CLASS_XATTR))
            rules = [r for r in gov.rules_for(path, cls) if r.protects]
            if not rules:
                continue
            keeper = max(rules, key=lambda r: r.retention_s or 0)
            until_s = keeper.retained_until(inode.birth_ns)
            until = datetime.fromtimestamp(until_s, UTC) if until_s is not None else None
            holder = next((r for r in rules if r.legal_hold), None)
            for rep in cat.replicas.of(ino):
                if rep.state != "synced" or rep.provider not in cfg.providers:
                    continue
                if rep.provider in out.unlockable:
                    out.failed += 1
                    _omnifs_only(out, rules, rep.provider)
                    continue
                p = opened.get(rep.provider)
                if p is None:
                    p = opened[rep.provider] = open_provider(cfg.providers[rep.provider])
                why = unsupported(p)
                if why is not None:
                    out.unlockable[rep.provider] = why
                    out.failed += 1
                    _omnifs_only(out, rules, rep.provider)
                    out.lines.append(f"{rep.provider}: cannot lock: {why}")
                    continue
                try:
                    todo = []
                    if until is not None:
                        now = get_retention(p, rep.key)
                        if now is None or now < until:
                            todo.append((keeper, f"until {until:%Y-%m-%d %H:%M:%S} UTC"))
                            if not dry_run:
                                set_retention(p, rep.key, until)
                    if holder is not None and not get_legal_hold(p, rep.key):
                        todo.append((holder, "under legal hold"))
                        if not dry_run:
                            set_legal_hold(p, rep.key)
                except OmnifsError as e:
                    out.failed += 1
                    out.lines.append(f"{path} on {rep.provider}: {e}")
                    continue
                if not todo:
                    out.kept += 1
                    continue
                out.locked += 1
                out.gaps.extend(LockGap(path, rep.provider, r.label, what) for r, what in todo)
                out.lines.append(f"{path} on {rep.provider}: "
                                 f"{'would lock' if dry_run else 'locked'} "
                                 f"{' and '.join(what for _, what in todo)}")
    finally:
        for p in opened.values():
            p.close()
    out.lines.append(f"{out.locked} object(s) {'to lock' if dry_run else 'locked'}, "
                     f"{out.kept} already locked long enough, {out.failed} not lockable")
    return out


def _omnifs_only(out: Applied, rules, store: str) -> None:
    for r in rules:
        out.omnifs_only.setdefault(r.label, set()).add(store)
