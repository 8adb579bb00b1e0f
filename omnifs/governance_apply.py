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
class Applied:
    lines: list[str] = field(default_factory=list)
    locked: int = 0
    kept: int = 0
    failed: int = 0


def apply(cat: Catalog, cfg: Config, *, dry_run: bool = False) -> Applied:
    gov = cfg.governance.engine
    out = Applied()
    opened: dict[str, Provider] = {}
    refused: set[str] = set()
    try:
        for ino, rel in cat.ns.files_under(ROOT_INODE):
            inode = cat.ns.get(ino)
            if inode is None:
                continue
            path = "/" + rel.strip("/")
            cls = gov.class_of(path, cat.ns.get_xattr(ino, CLASS_XATTR))
            rules = gov.rules_for(path, cls)
            keep_s = max((r.retention_s or 0 for r in rules), default=0)
            hold = any(r.legal_hold for r in rules)
            if not keep_s and not hold:
                continue
            until = datetime.fromtimestamp(inode.birth_ns / 1e9 + keep_s, UTC)
            for rep in cat.replicas.of(ino):
                if rep.state != "synced" or rep.provider not in cfg.providers:
                    continue
                if rep.provider in refused:
                    out.failed += 1
                    continue
                p = opened.get(rep.provider)
                if p is None:
                    p = opened[rep.provider] = open_provider(cfg.providers[rep.provider])
                why = unsupported(p)
                if why is not None:
                    refused.add(rep.provider)
                    out.failed += 1
                    out.lines.append(f"{rep.provider}: cannot lock: {why}")
                    continue
                try:
                    todo = []
                    if keep_s:
                        now = get_retention(p, rep.key)
                        if now is None or now < until:
                            todo.append(f"until {until:%Y-%m-%d %H:%M:%S} UTC")
                            if not dry_run:
                                set_retention(p, rep.key, until)
                    if hold and not get_legal_hold(p, rep.key):
                        todo.append("under legal hold")
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
                out.lines.append(f"{path} on {rep.provider}: "
                                 f"{'would lock' if dry_run else 'locked'} {' and '.join(todo)}")
    finally:
        for p in opened.values():
            p.close()
    out.lines.append(f"{out.locked} object(s) {'to lock' if dry_run else 'locked'}, "
                     f"{out.kept} already locked long enough, {out.failed} not lockable")
    return out
