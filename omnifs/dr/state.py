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
