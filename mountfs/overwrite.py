"""One upload of a published file to one store, when its key may already hold an object.

What :meth:`mountfs.publish.Publisher._attempt` runs once the key is free of
other files' objects:

* the write is checked (omnifs/fallbacks.py decides how): ``if_absent`` when
  the catalog knows no object at the key, ``if_match`` the etag it recorded
  when overwriting; a store without conditional writes gets a HEAD compared
  with the catalog first;
* a refusal means the object changed behind our back; omnifs/conflicts.py
  says what that means: one of this catalog's own objects is written over, a
  vanished one is written as new, and someone else's version is first kept
  as ``NAME.conflict-PROVIDER-STAMP`` (a server-side copy with its own
  catalog entry), then ours goes to the key. A second refusal (a third
  writer) fails the upload loudly: the bytes stay staged, the file is
  uploaded again later and meets the same rule.

With ``[dr] keep_versions_for``, an upload that overwrites the last copy of
the file's previous version in place (``copies = 1``, or every replica in one
publish) first sets that version aside in the same store and queues a
``keep`` item: the daemon keeps it on the backup target like the versions it
keeps itself (omnifs/dr/versions.py). Where another replica still holds it,
the daemon keeps it when it overwrites that one.

Catalog reads and writes run on the mount's event loop (after
``catalog_writable``); store calls run in worker threads through
``Stores.call``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnifs.conflicts import expected, refusal_steps
from omnifs.dr.versions import kept_key, set_aside
from omnifs.fallbacks import WriteCheck, checked_write, write_check
from omnifs.layout import placed_meta, write_sidecar
from omnifs.providers import ObjectInfo, PreconditionFailed, Provider
from omnifs.work import KeepVersion, enqueue

from .catalog_wait import catalog_writable

if TYPE_CHECKING:
    from omnifs.catalog import Catalog, Replica

    from .stores import Stores


@dataclass
class Upload:
    """What one upload sends: the file's path, key, bytes (or staging file) and metadata."""

    ino: int
    path: str
    key: str
    source: bytes | Path
    size: int
    meta: dict[str, str]


def expectation(cat: Catalog, store: Provider, name: str, key: str, ino: int) -> WriteCheck:
    """The check of ``ino``'s upload to ``name``/``key``, from the catalog as it is now
    (before the key is freed of other files' objects: they stay there as copied)."""
    first, etag = expected(cat, name, key, ino)
    return write_check(store, first, etag)


def version_to_keep(cat: Catalog, ino: int, name: str, key: str, old: Replica | None,
                    attempted: Collection[str]) -> tuple[int, float] | None:
    """(version, when it was made) of the object an upload to ``name``/``key`` replaces,
    when that is the last copy of the version no other store still holds (the stores in
    ``attempted`` are being overwritten by the same publish); None: nothing to keep here."""
    if old is None or old.key != key or old.state != "synced":
        return None
    if any(r.provider != name and r.provider not in attempted and r.version == old.version
           and r.state in ("synced", "stale") for r in cat.replicas.of(ino)):
        return None  # the daemon keeps it when it overwrites that copy
    made = [t for v, _sha, _size, _mtime, t in cat.replicas.versions(ino) if v == old.version]
    return old.version, made[0] if made else time.time()


async def keep_replaced(cat: Catalog, stores: Stores, name: str, up: Upload,
                        version: tuple[int, float]) -> None:
    """Set the version at ``up.key`` aside in its store and queue its ``keep`` item."""
    kept = kept_key(up.ino, version[0])
    if not await stores.call(name, set_aside, stores[name], up.key, kept):
        return  # no object there: nothing to keep
    await catalog_writable(cat)
    enqueue(cat.work, KeepVersion(provider=name, key=kept, path="/" + up.path.lstrip("/"),
                                  made_ns=int(version[1] * 1e9), replaced_ns=time.time_ns()))


async def upload(cat: Catalog, stores: Stores, name: str, up: Upload, check: WriteCheck,
                 copies: int) -> ObjectInfo:
    """Upload ``up`` to ``name`` under ``check``; someone else's object is kept aside first."""
    store = stores[name]
    try:
        return await stores.call(name, _upload, store, up, check)
    except PreconditionFailed:
        check = await _changed_behind(cat, stores, name, up, copies)
    try:
        return await stores.call(name, _upload, store, up, check)
    except PreconditionFailed as e:
        e.transient = True  # a third writer: the bytes stay staged, retried by the same rule
        raise


async def _changed_behind(cat: Catalog, stores: Stores, name: str, up: Upload,
                          copies: int) -> WriteCheck:
    """The object at ``up.key`` is not the one the catalog recorded: omnifs/conflicts.py's
    steps, store calls in worker threads, catalog writes once the catalog is writable."""
    steps = refusal_steps(cat, stores[name], up.ino, up.key, up.path, copies)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value
        if step is None:
            await catalog_writable(cat)
            answer = None
        else:
            answer = await stores.call(name, step)


def _upload(provider: Provider, up: Upload, check: WriteCheck) -> ObjectInfo:
    """``up`` to its key under ``check``; a fallback key's object names its path
    (omnifs/layout.py)."""
    meta, sidecar = placed_meta(provider, up.key, up.path, up.meta)

    def write(**cond) -> ObjectInfo:
        if isinstance(up.source, bytes):
            return provider.write(up.key, io.BytesIO(up.source), up.size, meta, **cond)
        with open(up.source, "rb") as f:
            return provider.write(up.key, f, up.size, meta, **cond)

    info = checked_write(provider, up.key, check, write)
    write_sidecar(provider, up.key, sidecar)
    return info
