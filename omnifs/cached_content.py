"""Whole files in the block cache: keeping a local file's bytes, reading them back in order.

The block cache (omnifs/blockcache.py) holds blocks by ``(SHA-256 of the
content, block index)``. This module works on whole contents:

* :func:`keep_file` puts a local file whose SHA-256 the catalog records into
  the cache. The mount calls it for a file written through it once its last
  close has published it, so the bytes that were on local disk anyway serve
  the next read of that file, and the daemon's copies of it to its other
  stores, without a download (no round trip, no egress charge).
* :class:`CachedContent` reads a content's blocks in order as one stream: the
  daemon's replication source when every block is cached.

Both check the bytes: ``keep_file`` hashes the whole file before a single
block goes in (a file whose bytes are not the recorded version is never
cached under its hash); every block read is CRC-checked by the cache, and
the replication executor checks the stream's SHA-256 as the copy engine
does with a store's bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from typing import TYPE_CHECKING

from .blockcache import BlockCache

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger("omnifs.cache")


def open_cache(config: Config) -> BlockCache | None:
    """The config's block cache for a process that only borrows it (daemon, CLI).

    None if unusable.
    """
    try:
        return BlockCache.for_config(config)
    except Exception as e:  # noqa: BLE001 - without it, copies come from the stores
        log.warning("block cache %s not usable (%s): copies are read from the stores",
                    config.cache_dir, e)
        return None


class CacheMiss(Exception):
    """A block of the content is not (or no longer) in the cache."""


def block_count(size: int, block_size: int) -> int:
    return max(1, -(-size // block_size))


def holds(cache: BlockCache, content_id: str, size: int) -> bool:
    """Is every block of the content cached right now (no read, no LRU touch)?

    A cache that cannot answer (its index busy or damaged) holds nothing:
    the caller copies from a store instead.
    """
    try:
        return all(cache.contains(content_id, i)
                   for i in range(block_count(size, cache.block_size)))
    except Exception as e:  # noqa: BLE001 - only ever an optimisation
        log.info("block cache %s cannot be asked (%s): copying from a store", cache.directory, e)
        return False


def keep_file(cache: BlockCache, path: str | os.PathLike, content_id: str, size: int) -> int:
    """Put the blocks of the file at ``path`` under ``content_id``; how many it put.

    Returns -1, putting nothing, when the file is not ``size`` bytes whose
    SHA-256 is ``content_id``. Blocks already cached are left alone.
    """
    bs = cache.block_size
    missing = [i for i in range(block_count(size, bs)) if not cache.contains(content_id, i)]
    if not missing:
        return 0
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size != size:
            return -1
        if size <= bs:  # one block: read once, check, put
            data = f.read()
            if len(data) != size or hashlib.sha256(data).hexdigest() != content_id:
                return -1
            cache.put(content_id, 0, data)
            return 1
        # several: hash the whole file first (hashlib drops the GIL on big buffers), then
        # put from the page cache the first pass filled; nobody else writes this file
        h = hashlib.sha256()
        while chunk := f.read(bs):
            h.update(chunk)
        if h.hexdigest() != content_id:
            return -1
        for i in missing:
            cache.put(content_id, i, os.pread(f.fileno(), bs, i * bs))
    return len(missing)


class CachedContent(io.RawIOBase):
    """A cached content read from its first byte to its last; raises CacheMiss on a gap.

    Blocks are fetched one at a time as the reader reaches them (CRC-checked
    by the cache, not counted as the mount's hits or misses), so memory stays
    one block whatever the size.
    """

    def __init__(self, cache: BlockCache, content_id: str, size: int):
        super().__init__()
        self.cache = cache
        self.content_id = content_id
        self.size = size
        self._index = 0
        self._block = b""
        self._at = 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._pos >= self.size:
            return b""
        if self._at >= len(self._block):
            try:
                data = self.cache.get(self.content_id, self._index, count=False)
            except Exception as e:  # a cache that cannot answer has a gap
                raise CacheMiss(f"block {self._index} of {self.content_id}: {e}") from e
            if data is None:
                raise CacheMiss(f"block {self._index} of {self.content_id} left the cache")
            self._block, self._at = bytes(data), 0
            self._index += 1
        if n is None or n < 0:
            n = len(self._block)
        # a whole block is handed over without a copy (a full slice of bytes is itself)
        out = self._block[self._at:self._at + n]
        self._at += len(out)
        self._pos += len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)
