"""The bounded local disk cache of file blocks, keyed by content.

Why keyed by ``(content id, block index)``: the content id is the file's
SHA-256 (the catalog records it for every version), so an entry can never be
stale — a new version is a new key — and two files with identical content
share their blocks. Old versions' blocks simply age out under LRU.

An entry holds the bare block in its value file, its length and checksum in
its tag (:mod:`omnifs.blockfiles`: how blocks are written, read back or
mapped, and checked). A damaged entry is deleted, counted as ``corrupt``
and reported as a miss. The counters live in :mod:`omnifs.blockstats`.

How the size bound holds: diskcache culls lazily (at most ``cull_limit``
items per ``set``, only once the volume is already over ``size_limit``). We
give diskcache a target one block below the configured size and cull one
entry per insert, so the volume stays at or under the configured size in
steady state; whenever uneven block sizes (a file's short last block) leave
it above the configured size, an explicit ``cull()`` brings it back at once.
Staging files of writes never enter this cache (the mount keeps them in
their own directory), so eviction can never touch unsaved data; only once
a file's bytes are uploaded are they copied in as blocks
(mountfs/written.py). They share its limit, though: the mount lowers
``budget`` by the bytes its staging files hold (mountfs/space.py), so the
whole cache directory stays within ``[cache] size``. And every put keeps
the disk's free-space reserve (``free_space_ratio``): it evicts more, or
does not cache the block, rather than fill the disk.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import diskcache

from omnifs.providers.diskspace import is_disk_full, no_space, room

from .blockfiles import (
    DAMAGED,
    HEADER,
    BlockDisk,
    Chunks,
    Entry,
    aligned_buffer,
    decode_block,
    encode_block,
    read_entry,
    tag_of,
)
from .blockstats import CacheStats, Counters

__all__ = ["BlockCache", "CacheStats", "aligned_buffer", "decode_block", "encode_block"]

log = logging.getLogger("omnifs.cache")

_DEFAULT_BLOCK = 4 * 1024**2
#: reads whose LRU access time may wait to be written together
_TOUCH_BATCH = 32
#: SQLite's write-ahead log is part of what the cache uses on disk but not of
#: diskcache's ``volume()``: we cap it (checkpoint every 256 pages, truncate
#: to 1 MiB) and keep that much room free for it
_WAL_PAGES = 256
_SQLITE_SLACK = 1024**2 + 64 * 1024


class BlockCache:
    """Thread-safe; one per mount. ``get``/``put`` are blocking (call them in a worker thread)."""

    @classmethod
    def for_config(cls, config) -> Self:
        """The cache a config's ``[cache]`` table describes (``dir``, ``size``, ``block_size``,
        ``free_space_ratio``)."""
        return cls(config.cache_dir, config.cache_size, block_size=config.cache_block_size,
                   free_space_ratio=config.free_space_ratio)

    def __init__(self, directory: str | Path, size_limit: int, block_size: int = _DEFAULT_BLOCK,
                 free_space_ratio: float = 0.0):
        if size_limit <= 0:
            raise ValueError("cache size must be positive")
        self.directory = Path(directory)
        self.limit = size_limit
        self.block_size = block_size
        #: a put that would leave less than this share of the disk free evicts first
        self.free_space_ratio = free_space_ratio
        #: what the blocks may take now, below ``limit``: the mount lowers it by the bytes
        #: its staging files hold (mountfs/space.py); None when nobody shares the limit.
        #: Asked at every put, from the putting thread.
        self.budget: Callable[[], int] | None = None
        #: the volume after this process's last put or eviction (no query)
        self.last_volume = 0
        # one block of headroom below the limit: insert-then-cull never crosses it
        self._hard = size_limit - _SQLITE_SLACK
        target = self._hard - (block_size + HEADER.size)
        if target < size_limit // 2:
            target = size_limit // 2
            self._hard = max(self._hard, target)
        self._cache = diskcache.Cache(
            str(self.directory / "blocks"),
            disk=BlockDisk,
            size_limit=target,
            eviction_policy="least-recently-used",
            cull_limit=1,
            statistics=False,
            sqlite_wal_autocheckpoint=_WAL_PAGES,
            sqlite_journal_size_limit=_SQLITE_SLACK,
        )
        self._counters = Counters(self.directory, before_flush=self._flush_touches)
        self._touched: dict[int, float] = {}  # rowid -> access time not yet written (LRU)
        self._lock = threading.Lock()  # touches
        self._write_lock = threading.Lock()  # set + cull + eviction accounting
        self._target = target
        #: a put was refused for want of disk space (logged once per episode)
        self._full_logged = False
        self.last_volume = self._cache.volume()

    # -- keys ---------------------------------------------------------------
    def key(self, content_id: str, index: int) -> str:
        """The entry of block ``index``; another block size names other entries.

        Block ``i`` is a different byte range under another ``block_size``:
        a config change must turn old entries into misses (they age out), not
        serve them at the wrong offsets. The default size keeps the plain key
        that caches of earlier versions used.
        """
        if self.block_size == _DEFAULT_BLOCK:
            return f"{content_id}:{index}"
        return f"{content_id}:{index}/{self.block_size}"

    # -- the cache ------------------------------------------------------------
    def get(self, content_id: str, index: int, *, count: bool = True,
            mapped: bool = False) -> bytes | mmap.mmap | None:
        """The block, or None (a miss; damaged entries are deleted and count as misses).

        ``count=False`` leaves hits and misses to the caller (the read path
        counts a miss per store fetch, see mountfs/blocks.py); damage is
        always counted. ``mapped=True``: a read-only ``mmap`` of the value
        file when the entry has one (see omnifs/blockfiles.py), for callers
        that only slice it; the map lives as long as references to it do.
        """
        key = self.key(content_id, index)
        try:
            data = self._read(key, mapped)
        except OSError as e:  # the value file vanished or is unreadable
            log.warning("cache entry %s unreadable (%s); refetching", key, e)
            data = b""
        if data is None:
            if count:
                self._counters.count("misses")
            return None
        if data is DAMAGED:
            log.warning("cache entry %s is corrupt; dropped and refetched", key)
            self._cache.delete(key, retry=True)
            self._counters.count("corrupt")
            if count:
                self._counters.count("misses")
            return None
        if count:
            self._counters.count("hits")
        return data

    def _read(self, key: str, mapped: bool = False) -> Entry:
        """The checked block, None when absent, ``DAMAGED`` when it fails its check."""
        found = self._lookup(key)
        if found is None:
            return None
        value, tag = found
        return read_entry(value, tag, mapped)

    def _lookup(self, key: str) -> tuple[bytes | str, int | None] | None:
        """(inline value or value file path, tag) of an entry, or None; the LRU touch is deferred.

        Why not ``diskcache.Cache.get``: under LRU it opens the value file
        inside a write transaction (to update the access time), so parallel
        readers queue behind each other's file opens — after a dropped page
        cache each open is a disk read. Here the lookup is a plain read
        (never blocked in WAL mode), the file is opened outside any lock and
        the access times are written in batches (before every store and
        cull, and every ``_TOUCH_BATCH`` reads), so eviction order is the
        same as with ``get``.
        """
        inner = self._cache
        try:
            db_key, raw = inner._disk.put(key)
            rows = inner._sql(
                "SELECT rowid, tag, mode, filename, value FROM Cache WHERE key = ? AND raw = ?"
                " AND (expire_time IS NULL OR expire_time > ?)",
                (db_key, raw, time.time())).fetchall()
        except AttributeError:  # a diskcache without these internals: the slow, safe way
            return self._lookup_slow(key)
        if not rows:
            return None
        rowid, tag, mode, filename, value = rows[0]
        self._touch(rowid)
        if mode == diskcache.core.MODE_RAW:
            return bytes(value), tag
        if mode != diskcache.core.MODE_BINARY or not filename:
            return b"", None  # not something put() wrote: fails the check, dropped
        return os.path.join(inner.directory, filename), tag

    def _lookup_slow(self, key: str) -> tuple[bytes | str, int | None] | None:
        found = self._cache.get(key, default=None, read=True, tag=True, retry=True)
        value, tag = found
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray)):
            return bytes(value), tag
        try:
            return value.read(), tag
        finally:
            value.close()

    def _touch(self, rowid: int) -> None:
        with self._lock:
            self._touched[rowid] = time.time()
            due = len(self._touched) >= _TOUCH_BATCH
        if due:
            self._flush_touches()

    def _flush_touches(self) -> None:
        """Write the deferred LRU access times."""
        with self._lock:
            touched, self._touched = self._touched, {}
        if not touched:
            return
        try:
            with self._cache.transact(retry=True):
                for rowid, at in touched.items():
                    self._cache._sql("UPDATE Cache SET access_time = ? WHERE rowid = ?",
                                     (at, rowid))
        except Exception as e:  # noqa: BLE001 - an LRU hint; the cache stays correct without it
            log.debug("cannot record cache access times: %s", e)

    def prefetch(self, content_id: str, index: int) -> bool:
        """Ask the kernel to start reading a cached block from disk; False when not cached.

        Read-ahead over cached blocks: the disk works on the next blocks while
        the reader consumes this one (a warm sequential read would otherwise
        wait for each 4 MiB read in turn).
        """
        try:
            handle = self._cache.get(self.key(content_id, index), default=None, read=True,
                                     retry=True)
        except OSError:
            return False
        if handle is None:
            return False
        try:
            if hasattr(handle, "fileno"):
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            if hasattr(handle, "close"):
                handle.close()
        return True

    def contains(self, content_id: str, index: int) -> bool:
        """Cheap presence test (no read, no LRU touch, no counters): for read-ahead planning."""
        return self.key(content_id, index) in self._cache

    def put(self, content_id: str, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Cache a block; False when there was no room for it (the cache is only a cache).

        Room means: the blocks stay within ``limit`` and ``budget`` (older
        blocks are evicted, least recently used first), and the disk keeps
        ``free_space_ratio`` of itself free (more blocks are evicted; if that
        is not enough the block is simply not cached).
        """
        key = self.key(content_id, index)
        tag = tag_of(data)
        self._flush_touches()  # eviction below must see recent reads
        try:
            with self._write_lock:
                before = len(self._cache)
                existed = key in self._cache
                allowed = self._allowed()
                if len(data) > allowed or not self._make_room(len(data)):
                    self._count_evictions(before)
                    return False
                if self.last_volume + len(data) > allowed:  # room first: never above it
                    self._fit(allowed - len(data))
                # counted before it is written: the mount's writes see the room as taken
                self.last_volume += len(data)
                # read=True: diskcache pulls the value through .read() in 4 MiB
                # pieces. Handing it bytes instead makes it iterate a BytesIO,
                # i.e. write the block line by line (thousands of small writes for
                # binary data: ~3x slower here), and a bytearray would be pickled.
                self._cache.set(key, Chunks(data), read=True, tag=tag, retry=True)
                self._fit(allowed)
                after = len(self._cache)
        except Exception as e:
            if not is_disk_full(e):
                raise
            self._disk_full(e)
            return False
        self._full_logged = False
        evicted = before + (0 if existed else 1) - after
        if evicted > 0:
            self._counters.count("evictions", evicted)
        self._counters.count("stores")
        return True

    def shrink(self, target: int) -> int:
        """Evict least recently used blocks until the volume is at most ``target``; the volume."""
        with self._write_lock:
            before = len(self._cache)
            self._fit(max(target, 0))
            self._count_evictions(before)
            return self.last_volume

    def _allowed(self) -> int:
        return self._hard if self.budget is None else min(self._hard, self.budget())

    def _fit(self, limit: int) -> None:
        """Cull to ``limit`` (under the write lock); diskcache culls to its own size_limit."""
        volume = self._cache.volume()
        if volume > limit:
            cache = self._cache
            if limit < self._target:
                cache.reset("size_limit", max(limit, 0), update=False)  # this process only
            try:
                cache.cull(retry=True)
            finally:
                cache.reset("size_limit", self._target, update=False)
            volume = cache.volume()
        self.last_volume = volume

    def _make_room(self, nbytes: int) -> bool:
        """Keep the disk's free-space reserve: evict what a block of ``nbytes`` needs, or say no."""
        deficit = nbytes - room(self.directory, self.free_space_ratio)
        if deficit <= 0:
            return True
        self._fit(self._cache.volume() - deficit - self.block_size)
        if room(self.directory, self.free_space_ratio) >= nbytes:
            return True
        self._disk_full(no_space(self.directory, self.free_space_ratio))
        return False

    def _count_evictions(self, before: int) -> None:
        evicted = before - len(self._cache)
        if evicted > 0:
            self._counters.count("evictions", evicted)

    def _disk_full(self, e: BaseException) -> None:
        if not self._full_logged:
            self._full_logged = True
            log.warning("block cache %s: no room on its disk, blocks are not cached (%s)",
                        self.directory, e)

    def discard(self, content_id: str, index: int) -> None:
        self._cache.delete(self.key(content_id, index), retry=True)

    def volume(self) -> int:
        """Bytes on disk as diskcache accounts them (values plus its SQLite file)."""
        return self._cache.volume()

    def __len__(self) -> int:
        return len(self._cache)

    # -- counters -------------------------------------------------------------
    def note(self, name: str, n: int = 1) -> None:
        """Count an event the caller decided on (``hits`` or ``misses``)."""
        if name not in ("hits", "misses"):
            raise ValueError(f"unknown counter {name!r}")
        self._counters.count(name, n)

    def flush(self) -> None:
        """Persist the counters (and LRU access times) gathered since the last flush."""
        self._counters.flush()

    def stats(self) -> CacheStats:
        try:
            self.flush()
        except Exception as e:  # a full disk: the counters wait in memory; the sizes still count
            if not is_disk_full(e):
                raise
        counts = self._counters.totals()
        return CacheStats(directory=str(self.directory), limit=self.limit, size=self.volume(),
                          entries=len(self._cache), block_size=self.block_size, **counts)

    def clear(self, reset_counters: bool = True) -> int:
        """Drop every block (and the counters unless told otherwise); returns entries removed."""
        with self._write_lock:
            removed = self._cache.clear(retry=True)
        if reset_counters:
            self._counters.reset()
        return removed

    def close(self) -> None:
        self._counters.stop()
        self.flush()
        self._cache.close()
        self._counters.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
