"""Forget backups past retention and delete the content no kept backup needs.

Safe by construction: the content still needed is read from the manifests
of every kept backup (and every version kept by ``keep_versions_for``); if
one of them cannot be read, nothing is deleted. While a backup is running
(a lock object younger than :data:`LOCK_AGE`) the data is left alone: its
new content has no manifest yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from omnifs.errors import OmnifsError

from . import crypto, retention
from .config import Retention
from .restore import load_manifest
from .target import CATALOG_SUFFIX, MANIFEST_SUFFIX, Target
from .versions import kept_versions

#: a lock older than this was left by a backup that died
LOCK_AGE = 6 * 3600.0


@dataclass
class Pruned:
    kept: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    objects_deleted: int = 0
    bytes_deleted: int = 0
    #: why the data was left alone, if it was
    note: str = ""


def prune(target: Target, policy: Retention, *, dry_run: bool = False,
          now: float | None = None) -> Pruned:
    now = time.time() if now is None else now
    backups = target.backups()
    keep = retention.keep([b.at for b in backups], policy)
    out = Pruned([b.id for i, b in enumerate(backups) if i in keep],
                 [b.id for i, b in enumerate(backups) if i not in keep])
    needed: set[str] = set()
    for bid in out.kept:
        try:
            manifest = load_manifest(target, bid)
        except OmnifsError as e:
            raise OmnifsError(f"prune refused, nothing deleted: backup {bid} cannot be read "
                              f"({str(e).splitlines()[0]})") from None
        needed.update(crypto.object_id(target.key, e.sha256) for e in manifest.files
                      if e.sha256)
    needed.update(crypto.object_id(target.key, v.sha256)
                  for v in kept_versions(target, now, expire=not dry_run) if v.sha256)
    if not dry_run:
        for bid in out.forgotten:
            target.delete_doc(f"backups/{bid}{MANIFEST_SUFFIX}")
            target.delete_doc(f"backups/{bid}{CATALOG_SUFFIX}")
    if target.active_locks(LOCK_AGE, now):
        out.note = "a backup is running: content left alone (run prune again later)"
        return out
    for oid, size, _ in list(target.data_listing()):
        if oid in needed:
            continue
        if not dry_run:
            target.delete_content(oid)
        out.objects_deleted += 1
        out.bytes_deleted += size
    return out
