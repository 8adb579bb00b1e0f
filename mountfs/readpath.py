"""Reading bytes that are not in a staging file: straight from a replica.

The seam the read-path issue replaces (disk cache, fastest replica, hedging,
read-ahead): :class:`StoreReader` is asked for ``(handle, inode, off, size)``
and answers bytes. This simple version streams from the first synced
replica holding the current version in health order (healthy, degraded,
down; lost ones never: :meth:`Stores.read_order`), keeping one open
ranged stream per handle so a sequential reader costs one GET, not one per
``read()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from omnifs.catalog import Catalog, Inode
from providers.diskspace import is_disk_full
from providers.errors import NotFound, OmnifsError, Unavailable

from .stores import Stores


@dataclass(eq=False)
class ReadStream:
    provider: str
    key: str
    version: int
    stream: BinaryIO
    pos: int


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts = []
    want = size
    while want > 0:
        chunk = stream.read(want)
        if not chunk:
            break
        parts.append(chunk)
        want -= len(chunk)
    return b"".join(parts)


def _close(stream: BinaryIO) -> None:
    try:
        stream.close()
    except Exception:  # noqa: BLE001, S110 - closing an abandoned stream is best effort
        pass


class StoreReader:
    def __init__(self, catalog: Catalog, stores: Stores):
        self.cat = catalog
        self.stores = stores

    def sources(self, inode: Inode) -> list[tuple[str, str]]:
        """(provider, key) of replicas holding the current version, best first for a read.

        Health order (:meth:`Stores.read_order`), config order among equals;
        a lost provider's replica is left out.
        """
        reps = {r.provider: r for r in self.cat.replicas(inode.id)
                if r.state == "synced" and r.version == inode.version}
        names = [n for n in self.stores.order if n in reps]
        return [(n, reps[n].key) for n in self.stores.read_order(names)]

    async def read(self, handle, inode: Inode, off: int, size: int) -> bytes:
        if off >= inode.size or size <= 0:
            return b""
        rs: ReadStream | None = handle.stream
        if rs is not None and rs.pos == off and rs.version == inode.version:
            try:
                data = await self.stores.call(rs.provider, _read_exact, rs.stream, size)
                rs.pos += len(data)
                return data
            except OmnifsError:
                pass
            except OSError:
                pass
        await self.drop(handle)
        errors: list[Exception] = []
        for name, key in self.sources(inode):
            p = self.stores[name]
            try:
                stream = await self.stores.call(name, p.open_read, key, off, None)
                data = await self.stores.call(name, _read_exact, stream, size)
            except (OmnifsError, OSError) as e:
                errors.append(e)
                continue
            handle.stream = ReadStream(name, key, inode.version, stream, off + len(data))
            return data
        if errors:
            first = errors[0]
            raise first if isinstance(first, OmnifsError) else Unavailable(str(first))
        raise NotFound("no replica holds the current version", key=str(inode.id))

    async def drop(self, handle) -> None:
        rs: ReadStream | None = handle.stream
        handle.stream = None
        if rs is not None:
            await self.stores.call(rs.provider, _close, rs.stream)

    async def fetch_whole(self, inode: Inode, dest_fd: int,
                          before_write: Callable[[int], None] | None = None) -> None:
        """Copy the current content into ``dest_fd`` (to start a staging file).

        ``before_write(n)`` is asked before each chunk is written (the mount's
        room on local disk); its ENOSPC ends the copy, no other replica is tried.
        """
        errors: list[Exception] = []
        sources = self.sources(inode)
        for attempt in range(2):
            for name, key in sources:
                p = self.stores[name]
                try:
                    await self.stores.call(name, _copy_into, p, key, dest_fd, before_write)
                    return
                except OSError as e:
                    if is_disk_full(e):
                        raise
                    errors.append(e)
                except OmnifsError as e:
                    errors.append(e)
            # a queued move (after a rename) may have moved the objects meanwhile: their
            # new keys, once
            if attempt or not errors or self.sources(inode) == sources:
                break
            sources = self.sources(inode)
        if errors:
            first = errors[0]
            raise first if isinstance(first, OmnifsError) else Unavailable(str(first))
        raise NotFound("no replica holds the current version", key=str(inode.id))


def _copy_into(provider, key: str, fd: int, before_write=None) -> None:
    """The object's bytes into a staging file, its zero pages left as holes."""
    import os

    from providers.sparse import copy_stream

    os.ftruncate(fd, 0)
    with provider.open_read(key, 0, None) as f:
        copy_stream(f, fd, before_write=before_write)
