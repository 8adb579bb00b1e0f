"""A file's current bytes into a new staging file, before a write changes them.

Why not one download from a store: opening a file to append or to change it
in place (``>>``, ``O_RDWR``, a truncate that keeps a head) needs all of its
current bytes in the staging file first. Those are often on local disk
already, in the block cache (the file was just written through this mount,
mountfs/written.py, or read). So each block comes from the cache when it is
there (or from the just-written file still waiting to be cached), and only
runs of blocks that are not come from a store: one stream
per run from the fastest replica, ranked, hedged and failed over like a read
(mountfs/replicas.py). An append to a cached file costs no request.

Holes stay holes: stretches of zeros are not written (the file is sized with
``ftruncate``), so a sparse file is as sparse in staging as its bytes allow.

The bytes are checked against the catalog's SHA-256 before the staging file
is used: a new version is never built on bytes that are not the old one.
The hash is handed back, so an append continues it and the upload at close
need not read the file again to hash it.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from omnifs.blockcache import BlockCache
from omnifs.providers.errors import IntegrityError, NotFound, OmnifsError, Unavailable

from .replicas import ReplicaReader, _close_quietly

if TYPE_CHECKING:
    from .blocks import FileRef

log = logging.getLogger("omnifs.read")

#: holes shorter than this are written as zeros (fewer, larger writes)
HOLE = 64 * 1024
#: bytes asked of a store's stream at a time
_PIECE = 1024 * 1024
_ZEROS = bytes(HOLE)


def fill_staging(fd: int, ref: FileRef, cache: BlockCache | None, reader: ReplicaReader,
                 block_size: int, sha256: str | None,
                 before_write: Callable[[int], None] | None = None,
                 written: int | None = None) -> hashlib._Hash:
    """Write the bytes of ``ref`` into ``fd``; their SHA-256.

    Blocking. ``cache``: where blocks of ``ref.content_id`` may be (None when the
    content has no hash to key them by). Raises ``NotFound`` when no store holds
    the bytes the cache lacks, ``Unavailable`` when none can be reached, and
    ``IntegrityError`` when the bytes are not those of ``sha256``.
    ``before_write(n)`` is called before ``n`` bytes of data are written (holes
    cost nothing): the mount's check for room on its disk, which may raise.
    ``written``: a descriptor of a local file with these bytes (mountfs/written.py),
    read where the cache lacks a block.
    """
    os.ftruncate(fd, 0)
    h = hashlib.sha256()
    size = ref.size
    pos = 0
    while pos < size:
        index = pos // block_size
        length = min(block_size, size - pos)
        block = _cached(cache, ref.content_id, index, length)
        if block is None and written is not None:
            block = os.pread(written, length, pos)
            if len(block) != length:
                block = None  # not these bytes after all: fetched instead
        if block is not None:
            try:
                with memoryview(block) as view:
                    h.update(view)
                    _write_data(fd, view, pos, before_write)
            finally:
                if isinstance(block, mmap.mmap):
                    block.close()
            pos += length
            continue
        end = index + 1  # a run of blocks the cache lacks: one stream for all of it
        while end * block_size < size and not _contains(cache, ref.content_id, end):
            end += 1
        _stream_into(fd, ref, reader, pos, min(end * block_size, size), h, before_write)
        pos = min(end * block_size, size)
    os.ftruncate(fd, size)  # a hole at the end is a hole too
    if sha256 is not None and h.hexdigest() != sha256:
        raise IntegrityError(f"its bytes do not match the catalog's SHA-256 {sha256[:12]}...")
    return h


def _cached(cache: BlockCache | None, content_id: str, index: int, length: int):
    """The cached block, or None: absent, or a cache that cannot answer (a store can)."""
    if cache is None:
        return None
    try:
        block = cache.get(content_id, index, count=False, mapped=True)
    except Exception as e:  # noqa: BLE001 - the cache is only ever a shortcut
        log.info("block cache cannot give %s:%s (%s); reading a store", content_id, index, e)
        return None
    if block is not None and len(block) != length:
        return None  # not this content's block after all: fetch it instead
    return block


def _contains(cache: BlockCache | None, content_id: str, index: int) -> bool:
    try:
        return cache is not None and cache.contains(content_id, index)
    except Exception:  # noqa: BLE001 - as in _cached: then the store has it
        return False


def _stream_into(fd: int, ref: FileRef, reader: ReplicaReader, start: int, end: int,
                 h: hashlib._Hash, before_write: Callable[[int], None] | None) -> None:
    """Bytes ``[start, end)`` from the fastest replica into ``fd``.

    Reopened elsewhere on failure.
    """
    if not ref.replicas:
        raise NotFound("no store holds its current version")
    pos = start
    failures = 0
    while pos < end:
        replica, stream, piece, ttfb = reader.open_stream(ref.replicas, pos, end)
        stats, opened_at, t_start = reader.stats.get(replica.name), pos, time.monotonic()
        try:
            while True:
                piece = piece[:end - pos]
                h.update(piece)
                _write_data(fd, memoryview(piece), pos, before_write)  # a local disk's error
                pos += len(piece)
                if pos >= end:
                    break
                t0 = time.monotonic()
                try:
                    piece = stream.read(min(_PIECE, end - pos))
                    if not piece:
                        raise Unavailable(f"stream ended {end - pos} bytes early",
                                          provider=replica.name, key=replica.key)
                except Exception as e:  # noqa: BLE001 - this replica's stream; another may do
                    err = e if isinstance(e, OmnifsError) else Unavailable(
                        f"unexpected {type(e).__name__}: {e}", provider=replica.name,
                        key=replica.key)
                    reader.failed(replica.name, err, time.monotonic() - t0)
                    failures += 1
                    if failures > 2 * len(ref.replicas):
                        raise err from None
                    break  # reopened at ``pos`` on the replica ranked best now
        finally:
            _close_quietly(stream)
            # throughput for the ranking and `omnifs status`, like a read-ahead stream's
            stats.record_transfer(ttfb, pos - opened_at, time.monotonic() - t_start)


def _write_data(fd: int, view: memoryview, offset: int,
                before_write: Callable[[int], None] | None = None) -> None:
    """``view`` at ``offset``, leaving out stretches of zeros (holes) of ``HOLE`` bytes or more."""
    n = len(view)
    i = 0
    while i < n:
        while i < n and _zero(view[i:i + HOLE]):  # a hole: not written
            i += HOLE
        start = i
        while i < n and not _zero(view[i:i + HOLE]):  # data, up to the next hole
            i += HOLE
        i = min(i, n)
        if before_write is not None and i > start:
            before_write(i - start)
        done = start
        while done < i:
            done += os.pwrite(fd, view[done:i], offset + done)


def _zero(piece: memoryview) -> bool:
    """All zeros? A piece with a byte at either end is data without a compare."""
    if piece[0] or piece[-1]:
        return False
    return bytes(piece) == _ZEROS[:len(piece)]
