"""``omnifs import``: build the catalog from what the stores already hold.

Why: a bucket filled by another tool (or a catalog lost with its disk) must
show up in the mount. Every object becomes a file at its key's path; its
SHA-256 and mtime come from omnifs's user metadata when present
(``META_SHA256``/``META_MTIME``), else the store's last-modified time.

The same key in several stores: replicas with the same SHA-256 (or, with no
hash anywhere, the same size) are all ``synced``; when they differ, the
newest mtime is the current content and the others are ``stale`` and get
queued ``replicate`` work, as do providers missing from the first ``copies``.
Objects under the reserved ``.omnifs/`` prefix and keys ending in ``/``
(directory markers) are not files, except the fallback keys of paths too
long for a store (``.omnifs/long/``, see omnifs/layout.py), which become
files at the path their metadata or sidecar names. Files already in the catalog are left as
they are, so an import can be re-run to pick up new objects.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from providers import ObjectInfo, Provider
from providers.errors import Conflict

from .catalog import Catalog
from .config import Config
from .layout import long_objects, visible_objects

log = logging.getLogger("omnifs.import")


@dataclass
class ImportResult:
    files: int = 0
    dirs: int = 0
    skipped: int = 0
    stale: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


def import_stores(catalog: Catalog, providers: dict[str, Provider], config: Config,
                  progress: Callable[[str], None] | None = None) -> ImportResult:
    """List every provider and record what they hold; mark the catalog as imported."""
    seen: dict[str, dict[str, ObjectInfo]] = {}
    for name, p in providers.items():
        for info in visible_objects(p):
            seen.setdefault(info.key, {})[name] = info
        for info, path in long_objects(p):  # paths too long for the store's keys
            seen.setdefault(path, {})[name] = info
        if progress:
            progress(f"listed {name}: {sum(1 for v in seen.values() if name in v)} objects")
    result = ImportResult()
    order = list(providers)
    copies = min(config.copies, len(order)) or 1
    uid, gid = os.getuid(), os.getgid()
    with catalog.transaction():
        for key in sorted(seen):
            by_provider = seen[key]
            if key.endswith("/"):
                try:
                    catalog.ensure_dirs(key, uid, gid)
                    result.dirs += 1
                except Conflict:
                    result.skipped += 1
                continue
            parent_path, _, name = key.rpartition("/")
            try:
                parent = catalog.ensure_dirs(parent_path, uid, gid)
            except Conflict as e:
                result.skipped += 1
                result.errors.append(str(e))
                continue
            if catalog.lookup(parent, name) is not None:
                result.skipped += 1
                continue
            current = _current(by_provider)
            cur = by_provider[current]
            mtime = cur.mtime or time.time()
            try:
                inode = catalog.create(parent, name, stat.S_IFREG | 0o644, uid, gid,
                                       size=cur.size, mtime_ns=int(mtime * 1e9),
                                       sha256=cur.sha256, version=1)
            except Conflict:
                result.skipped += 1
                continue
            catalog.add_version(inode.id, 1, cur.sha256, cur.size, int(mtime * 1e9))
            homes = [n for n in order if n in by_provider][:copies]
            homes += [n for n in order if n not in homes][:copies - len(homes)]
            for pname, info in by_provider.items():
                same = _same(info, cur)
                catalog.set_replica(inode.id, pname, info.key, 1 if same else 0,
                                    "synced" if same else "stale", info.etag)
                if not same:
                    result.stale += 1
            for pname in homes:
                info = by_provider.get(pname)
                if info is None or not _same(info, cur):
                    catalog.enqueue("replicate", {"inode": inode.id, "provider": pname},
                                    dedup=f"replicate:{inode.id}:{pname}")
                    result.queued += 1
            result.files += 1
        catalog.set_meta("imported", str(time.time()))
    return result


def _current(by_provider: dict[str, ObjectInfo]) -> str:
    """The provider whose copy is the current content: newest mtime, config order on ties."""
    best, best_t = None, None
    for name, info in by_provider.items():
        t = info.mtime or 0.0
        if best is None or t > best_t:  # type: ignore[operator]
            best, best_t = name, t
    assert best is not None
    return best


def _same(a: ObjectInfo, b: ObjectInfo) -> bool:
    if a.sha256 and b.sha256:
        return a.sha256 == b.sha256
    return a.size == b.size and (a.sha256 is None) == (b.sha256 is None)
