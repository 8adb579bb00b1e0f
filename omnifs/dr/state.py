"""What the catalog remembers of disaster recovery: the last backup and drill of each target.

Kept as catalog meta rows (``dr.backup.<name>``, ``dr.drill.<name>``, JSON),
read by ``omnifs status`` and the daemon's schedule and recovery point.
"""

from __future__ import annotations

import json
from contextlib import suppress

from omnifs.catalog import Catalog
from omnifs.providers import open_provider

from . import crypto
from .config import BackupSpec
from .target import Target

BACKUP_PREFIX = "dr.backup."
DRILL_PREFIX = "dr.drill."


def open_target(spec: BackupSpec) -> Target:
    """The store of ``spec`` opened, with its key loaded (ConfigError when the file is missing)."""
    key = crypto.load_key(spec.key_file) if spec.key_file is not None else None
    return Target(open_provider(spec.settings), spec.root, key)


def record(cat: Catalog, prefix: str, name: str, facts: dict) -> None:
    with cat.transaction():
        cat.set_meta(prefix + name, json.dumps(facts, sort_keys=True))


def recorded(cat: Catalog, prefix: str) -> dict[str, dict]:
    """name -> facts of every record under ``prefix``."""
    out = {}
    for key, value in cat.meta_items(prefix).items():
        with suppress(ValueError, TypeError):
            out[key[len(prefix):]] = json.loads(value)
    return out


def recovery_point(cat: Catalog, names: list[str], now: float, copies: int = 1) -> dict:
    """How much would be lost now: the oldest acknowledged change not yet both in a backup
    and on ``copies`` replicas.

    ``exposed`` is the seconds since that change (0 when there is none; the
    whole age of the tree's oldest change when there is no backup yet).
    """
    backups = recorded(cat, BACKUP_PREFIX)
    last = max((b.get("at", 0.0) for n, b in backups.items() if n in names), default=None)
    found = [t for t in (cat.replicas.oldest_change_since(last if last is not None else 0.0),
                         cat.replicas.oldest_short_version(copies)) if t is not None]
    oldest = min(found) if found else None
    return {"last_backup": last, "oldest_unsaved_change": oldest,
            "exposed": 0.0 if oldest is None else max(0.0, now - oldest)}


def status(cat: Catalog, dr, now: float, copies: int = 1) -> dict | None:
    """What ``omnifs status`` shows of disaster recovery (None: nothing configured)."""
    if not dr.backups:
        return None
    out = recovery_point(cat, [b.name for b in dr.backups], now, copies)
    drills = recorded(cat, DRILL_PREFIX)
    last = max(drills.values(), key=lambda d: d.get("at", 0.0), default=None)
    out.update({"rpo": dr.rpo, "rto": dr.rto, "last_drill": last,
                "rpo_exceeded": dr.rpo is not None and out["exposed"] > dr.rpo})
    return out


def status_lines(info: dict, now: float) -> list[str]:
    """``omnifs status``'s lines about disaster recovery."""
    from .when import fmt

    last = info["last_backup"]
    rpo = f" (target {info['rpo']:g} s{', EXCEEDED' if info['rpo_exceeded'] else ''})" \
        if info["rpo"] is not None else ""
    lines = [f"dr: recovery point now: {info['exposed']:.0f} s of changes not yet backed up "
             f"and replicated{rpo}; "
             + (f"last backup {fmt(last)}" if last else "no backup yet")]
    d = info["last_drill"]
    if d is None:
        lines.append("dr: last drill: none yet (omnifs dr drill)")
    else:
        verdict = "passed" if d.get("ok") else "FAILED"
        target = f" (target {info['rto']:g} s)" if info["rto"] is not None else ""
        lines.append(f"dr: last drill {fmt(d['at'])}: {verdict}, measured RTO "
                     f"{d.get('rto', 0):.1f} s{target}")
    return lines
