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

Catalog reads and writes run on the mount's event loop (after
``catalog_writable``); store calls run in worker threads through
``Stores.call``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omnifs.conflicts import aside_for, copy_aside, expected, head_or_none, ours, record_aside
from omnifs.fallbacks import WriteCheck, checked_write, write_check
from omnifs.layout import placed_meta, write_sidecar
from omnifs.providers import ObjectInfo, PreconditionFailed, Provider

from .catalog_wait import catalog_writable

if TYPE_CHECKING:
    from omnifs.catalog import Catalog

    from .stores import Stores

log = logging.getLogger("omnifs.mount")


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


async def upload(cat: Catalog, stores: Stores, name: str, up: Upload, check: WriteCheck,
                 copies: int) -> ObjectInfo:
    """Upload ``up`` to ``name`` under ``check``; someone else's object is kept aside first."""
    store = stores[name]
    try:
        return await stores.call(name, _upload, store, up, check)
    except PreconditionFailed:
        check = await _changed_behind(cat, stores, name, up, copies)
    return await stores.call(name, _upload, store, up, check)


async def _changed_behind(cat: Catalog, stores: Stores, name: str, up: Upload,
                          copies: int) -> WriteCheck:
    """The object at ``up.key`` is not the one the catalog recorded: keep it if it is
    someone else's, and say what the next write expects there."""
    store = stores[name]
    theirs = await stores.call(name, head_or_none, store, up.key)
    if theirs is None:
        return write_check(store, True, None)
    if not ours(cat, theirs):
        aside = aside_for(cat, up.ino, name, theirs)
        if aside is None:
            raise PreconditionFailed("changed outside omnifs, and its conflict file's name is "
                                     "taken: it stays staged", provider=name, key=up.key)
        copied = await stores.call(name, copy_aside, store, up.key, aside, theirs)
        await catalog_writable(cat)
        if not record_aside(cat, up.ino, name, aside, theirs, copied.etag, copies):
            raise PreconditionFailed("changed outside omnifs while being kept aside: it stays "
                                     "staged", provider=name, key=up.key)
        log.warning("%s: /%s was changed outside omnifs; their version is kept as /%s, ours "
                    "replaces it", name, up.path, aside.key)
    return write_check(store, False, theirs.etag)


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
