"""The read path: disk cache first, then the fastest replica, with read-ahead.

The mount's seam is :class:`ReadPath` (one per mount) and the
:class:`ReadHandle` it opens per FUSE file handle::

    handle = read_path.open(FileRef(content_id=sha256, size=size, replicas=[...]))
    data = await trio.to_thread.run_sync(handle.read, offset, length)
    handle.close()

Blocking by design (called in a worker thread), like the providers.

* Blocks of ``block_size`` bytes are the unit of caching and fetching; block
  ``i`` of a file is ``[i*bs, min((i+1)*bs, size))``.
* Concurrent readers of the same block (two handles, or a reader and the
  read-ahead) share one fetch through a per-block in-flight map.
* Each handle keeps only its current block in memory (the kernel asks for
  128 KiB–1 MiB at a time; without that, every request would re-read a 4 MiB
  cache entry). Memory is bounded by handles × one block plus the blocks
  being fetched.
* Read-ahead: a handle whose reads follow each other gets a window of the
  next blocks fetched in parallel into the disk cache, doubling from 1 up to
  ``readahead`` blocks as the sequential run continues; a jump resets it to
  none, so random access (sqlite, mmap faults) costs no extra fetches.
* Counters: a miss is a block fetched from a store (on demand or ahead, one
  per shared fetch); a hit is a block a reader took from the disk cache that
  read-ahead had not just fetched for it. So a cold read is all misses and a
  warm one all hits.

Without a disk cache (``cache=None``) every block comes from a store and
read-ahead is off (there would be nowhere bounded to keep its blocks).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .blockcache import BlockCache
from .replicas import SNAPSHOT_NAME, Replica, ReplicaReader

log = logging.getLogger("omnifs.read")

#: at most this many read-ahead blocks remembered as "fetched ahead, not yet read"
_AHEAD_MEMORY = 4096
#: inodes whose last-open content hash is remembered for keep_cache
_SEEN_MEMORY = 100_000
#: seconds between snapshots of the provider measurements for `omnifs status`
_SNAPSHOT_EVERY = 5.0


@dataclass
class FileRef:
    """One version of a file as the catalog knows it."""

    #: the content's SHA-256 (or any id that changes whenever the bytes do)
    content_id: str
    size: int
    #: healthy replicas holding this version, in placement order
    replicas: Sequence[Replica] = field(default_factory=list)


class ReadPath:
    """One per mount; thread-safe."""

    def __init__(
        self,
        cache: BlockCache | None,
        reader: ReplicaReader,
        *,
        block_size: int = 4 * 1024**2,
        readahead: int = 8,
    ):
        self.cache = cache
        self.reader = reader
        self.block_size = cache.block_size if cache is not None else block_size
        self.readahead = readahead if cache is not None else 0
        self._lock = threading.Lock()
        self._inflight: dict[str, cf.Future] = {}
        self._ahead: dict[str, None] = {}  # insertion-ordered set of prefetched, unread blocks
        self._prefetch_pool = cf.ThreadPoolExecutor(
            max_workers=max(1, min(self.readahead, 16)), thread_name_prefix="omnifs-readahead")
        #: blocks fetched from stores (on demand or ahead), for tests and bench
        self.fetches = 0
        self._snapshot_path = (cache.directory / SNAPSHOT_NAME) if cache is not None else None
        self._snapshot_at = 0.0

    def open(self, file: FileRef) -> ReadHandle:
        return ReadHandle(self, file)

    # -- blocks ---------------------------------------------------------------
    def block_range(self, file: FileRef, index: int) -> tuple[int, int]:
        start = index * self.block_size
        return start, min(start + self.block_size, file.size)

    def get_block(self, file: FileRef, index: int) -> bytes:
        """Block ``index``: from the cache, from a fetch already running, or fetched now."""
        key = f"{file.content_id}:{index}"
        if self.cache is not None:
            with self._lock:
                ahead = self._ahead.pop(key, 0) is None
            data = self.cache.get(file.content_id, index, count=False)
            if data is not None:
                if not ahead:
                    self.cache.note("hits")
                return data
        return self._shared_fetch(file, index, key)

    def _shared_fetch(self, file: FileRef, index: int, key: str) -> bytes:
        with self._lock:
            fut = self._inflight.get(key)
            owner = fut is None
            if owner:
                fut = self._inflight[key] = cf.Future()
        if not owner:
            return fut.result()
        try:
            data = None
            if self.cache is not None and self.cache.contains(file.content_id, index):
                # another fetch finished between our miss and now
                data = self.cache.get(file.content_id, index, count=False)
            if data is None:
                start, end = self.block_range(file, index)
                data = self.reader.fetch(file.replicas, start, end)
                with self._lock:
                    self.fetches += 1
                    due = time.monotonic() - self._snapshot_at >= _SNAPSHOT_EVERY
                    if due:
                        self._snapshot_at = time.monotonic()
                if due:
                    self.save_stats()
                if self.cache is not None:
                    self.cache.note("misses")
                    self.cache.put(file.content_id, index, data)
            fut.set_result(data)
            return data
        except BaseException as e:
            fut.set_exception(e)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def prefetch(self, file: FileRef, index: int) -> None:
        """Start fetching block ``index`` into the cache unless it is there or on its way."""
        if self.cache is None:
            return
        key = f"{file.content_id}:{index}"
        with self._lock:
            if key in self._inflight or key in self._ahead:
                return
        if self.cache.contains(file.content_id, index):
            return
        with self._lock:
            self._ahead[key] = None
            while len(self._ahead) > _AHEAD_MEMORY:
                self._ahead.pop(next(iter(self._ahead)))
        self._prefetch_pool.submit(self._prefetch_one, file, index, key)

    def _prefetch_one(self, file: FileRef, index: int, key: str) -> None:
        with self._lock:
            if key in self._inflight or key not in self._ahead:
                return  # already being fetched, or the reader got there first
        try:
            self._shared_fetch(file, index, key)
        except Exception as e:  # noqa: BLE001 - read-ahead is a hint; the reader will retry and report
            log.debug("read-ahead of %s failed: %s", key, e)

    def forget_ahead(self, file: FileRef, indices: range) -> None:
        """Blocks read ahead for a handle that closed before reading them."""
        with self._lock:
            for index in indices:
                self._ahead.pop(f"{file.content_id}:{index}", None)

    def save_stats(self, path: Path | None = None) -> None:
        """Leave the provider measurements where `omnifs status` can read them."""
        path = path or self._snapshot_path
        if path is None:
            return
        try:
            self.reader.stats.save(path)
        except OSError as e:
            log.debug("cannot save read stats to %s: %s", path, e)

    def close(self) -> None:
        self._prefetch_pool.shutdown(wait=True, cancel_futures=True)
        self.reader.close()
        self.save_stats()
        if self.cache is not None:
            self.cache.flush()


class ReadHandle:
    """One open file: its current block and its sequential-access detector."""

    def __init__(self, path: ReadPath, file: FileRef):
        self.path = path
        self.file = file
        self._lock = threading.Lock()
        self._block_index = -1
        self._block: bytes = b""
        self._next_offset: int | None = None
        self._window = 0
        self._ahead_upto = -1  # highest block index read-ahead was asked for
        self._last_block = -1

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at end of file)."""
        file = self.file
        if offset >= file.size or size <= 0:
            return b""
        end = min(offset + size, file.size)
        bs = self.path.block_size
        first, last = offset // bs, (end - 1) // bs
        self._plan_readahead(offset, end, last)
        parts = []
        for index in range(first, last + 1):
            block = self._get(index)
            lo = max(offset - index * bs, 0)
            hi = min(end - index * bs, len(block))
            parts.append(block[lo:hi] if (lo, hi) != (0, len(block)) else block)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _get(self, index: int) -> bytes:
        with self._lock:
            if index == self._block_index:
                return self._block
        block = self.path.get_block(self.file, index)
        with self._lock:
            self._block_index, self._block = index, block
        return block

    def _plan_readahead(self, offset: int, end: int, last: int) -> None:
        limit = self.path.readahead
        if limit <= 0:
            return
        bs = self.path.block_size
        with self._lock:
            sequential = self._next_offset is not None and abs(offset - self._next_offset) <= bs
            self._next_offset = end
            moved = last > self._last_block
            self._last_block = last
            if not sequential:
                self._window = 0
                self._ahead_upto = max(self._ahead_upto, last)
                return
            if moved or self._window == 0:
                self._window = min(limit, max(1, self._window * 2))
            nblocks = (self.file.size + bs - 1) // bs
            want_upto = min(last + self._window, nblocks - 1)
            todo = range(max(self._ahead_upto, last) + 1, want_upto + 1)
            self._ahead_upto = max(self._ahead_upto, want_upto)
        for index in todo:
            self.path.prefetch(self.file, index)

    def close(self) -> None:
        with self._lock:
            self._block = b""
            self._block_index = -1
            unread = range(self._last_block + 1, self._ahead_upto + 1)
        self.path.forget_ahead(self.file, unread)


class CachedStoreReader:
    """The mount's reader (drop-in for ``mountfs.readpath.StoreReader``): cache, fastest replica.

    Same three calls the mount makes: ``read(handle, inode, off, size)``,
    ``drop(handle)`` and ``fetch_whole(inode, fd)`` (the last one, copying a
    whole file into a staging file before a write, stays the simple
    streaming copy). Files the catalog knows no SHA-256 for are read
    through the same replica logic but not cached: without a content hash an
    entry could go stale.
    """

    def __init__(self, catalog, stores, config, *, limiter_tokens: int = 32):
        import trio

        from .readpath import StoreReader

        self._simple = StoreReader(catalog, stores)
        self.cat = catalog
        self.stores = stores
        cache = BlockCache(config.cache_dir, config.cache_size, block_size=config.cache_block_size)
        self.replicas = ReplicaReader()  # the process-wide REGISTRY: `omnifs status` shows it
        self.path = ReadPath(cache, self.replicas, readahead=config.cache_readahead)
        self.uncached = ReadPath(None, self.replicas, block_size=config.cache_block_size)
        self._limiter = trio.CapacityLimiter(limiter_tokens)
        #: per FUSE handle: (content version it was opened for, its ReadHandle)
        self._open: dict[int, tuple[tuple, ReadHandle]] = {}
        #: inode -> content hash at its last open, oldest first (for keep_cache)
        self._seen: dict[int, str | None] = {}

    def _file_ref(self, inode) -> FileRef:
        reps = [Replica(self.stores[name], key) for name, key in self._simple.sources(inode)]
        content = inode.sha256 or f"uncached:{inode.id}:{inode.version}"
        return FileRef(content, inode.size, reps)

    def _handle_for(self, handle, inode) -> ReadHandle:
        version = (inode.version, inode.sha256, inode.size)
        known = self._open.get(id(handle))
        if known is not None and known[0] == version:
            return known[1]
        if known is not None:
            known[1].close()
        ref = self._file_ref(inode)
        rh = (self.path if inode.sha256 else self.uncached).open(ref)
        self._open[id(handle)] = (version, rh)
        return rh

    async def read(self, handle, inode, off: int, size: int) -> bytes:
        import trio

        if off >= inode.size or size <= 0:
            return b""
        rh = self._handle_for(handle, inode)
        if not rh.file.replicas:
            from providers.errors import NotFound

            raise NotFound("no replica holds the current version", key=str(inode.id))
        return await trio.to_thread.run_sync(rh.read, off, size, limiter=self._limiter)

    async def drop(self, handle) -> None:
        known = self._open.pop(id(handle), None)
        if known is not None:
            known[1].close()
        await self._simple.drop(handle)

    async def fetch_whole(self, inode, dest_fd: int) -> None:
        await self._simple.fetch_whole(inode, dest_fd)

    def close(self) -> None:
        """At unmount: stop read-ahead, save the measurements, flush the counters."""
        self.uncached.close()  # shares the ReplicaReader; closing twice is harmless
        self.path.close()
        if self.path.cache is not None:
            self.path.cache.close()

    def keep_cache(self, inode) -> bool:
        """May the kernel keep its cached pages of ``inode`` on this open?

        Yes when the content hash is the one it had at the previous open (the
        pages are of the same bytes); no on first sight or after a change.
        """
        sha = inode.sha256
        prev = self._seen.pop(inode.id, None)
        self._seen[inode.id] = sha
        if len(self._seen) > _SEEN_MEMORY:
            self._seen.pop(next(iter(self._seen)))
        return sha is not None and prev == sha
