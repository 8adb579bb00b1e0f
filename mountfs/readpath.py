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

from dataclasses import dataclass
from typing import BinaryIO

from omnifs.catalog import Catalog, Inode
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
        reps = {r.provider: r for r in self.cat.replicas.of(inode.id)
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
