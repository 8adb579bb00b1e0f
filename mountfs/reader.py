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
* Each handle keeps its last few blocks in memory (the kernel asks for
  128 KiB–1 MiB at a time, several at once; without that, every request
  would re-read a 4 MiB cache entry) and serves reads as ``memoryview``
  slices of them; a read whose bytes are all in memory is answered on the
  event loop without a worker thread (:meth:`ReadHandle.try_read`). Cached
  blocks are read-only maps of their cache files (no copy into fresh
  memory, see omnifs/blockcache.py). A block's checksum is checked once,
  when it comes off the disk, never per request.
  Memory is bounded by open handles × (``ReadHandle.KEEP`` + the read-ahead
  window) blocks, plus at most ``WRITE_BEHIND`` bytes (256 MiB) of blocks
  waiting for the cache writers. (A run served from the disk cache gets
  twice the window: its blocks are maps of cache files, page cache rather
  than memory of ours.) Stream blocks are reused buffers (mountfs/blockpool.py).
* Warm read-ahead: cached blocks in the window are read by a small pool of
  threads, several at once (one 4 MiB read at a time leaves the disk idle).
* Cold read-ahead: one stream fills a pooled block buffer that readers are
  served from as its bytes arrive; the block goes to the disk cache behind
  the stream, in the writer threads, which may fall ``WRITE_BEHIND`` behind.
* Read-ahead: reads near the furthest byte read so far (the kernel's reads
  arrive out of order) make a run; a run gets one ranged stream from the
  fastest replica (see :class:`_Streamer`), kept at most a window ahead of
  the reader that doubles from 1 to ``readahead`` blocks. Two reads in a row far
  from the run end it, so random access (sqlite, mmap faults) costs no extra
  fetches. A first read at offset 0 starts a run at once (`cat`, `cp`).
* Counters: a miss is a block fetched from a store (on demand or ahead, one
  per shared fetch); a hit is a block a reader took from the disk cache that
  read-ahead had not just fetched for it. So a cold read is all misses and a
  warm one all hits.

Without a disk cache (``cache=None``) every block comes from a store and
read-ahead is off (there would be nowhere bounded to keep its blocks).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.blockcache import BlockCache, aligned_buffer
from providers.errors import NoSpace, OmnifsError, Unavailable

from .blockpool import BlockPool
from .replicas import SNAPSHOT_NAME, ProviderStats, Replica, ReplicaReader, _close_quietly
from .staging_fill import fill_staging

log = logging.getLogger("omnifs.read")

#: at most this many read-ahead blocks remembered as "fetched ahead, not yet read"
_AHEAD_MEMORY = 4096
#: inodes whose last-open content hash is remembered for keep_cache
_SEEN_MEMORY = 100_000
#: seconds between snapshots of the provider measurements for `omnifs status`
_SNAPSHOT_EVERY = 5.0
#: bytes asked of a stream at a time (and the granularity readers see them arrive in)
_PIECE = 1024 * 1024
#: bytes of fetched blocks that may wait in memory for the cache writers (see ReadPath.__init__)
WRITE_BEHIND = 256 * 1024**2
#: seconds a block no replica could give answers that error at once. The kernel asks
#: again for a page whose read failed, straight away, and a reader whose stores hang
#: would otherwise wait out every store's timeout once per retry (four times over, 85 s,
#: for one `cat` with every store stopped)
FAILED_FOR = 3.0
#: at most this many such failures remembered
_FAILED_MEMORY = 1024


def _failure_key(file: FileRef, index: int) -> tuple:
    return file.content_id, index, tuple((r.name, r.key) for r in file.replicas)


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
        #: (block, replicas) -> (when, error) of the last fetch every replica failed (see
        #: FAILED_FOR); the same block at other keys (objects moved after a rename) is tried
        self._failed: dict[tuple, tuple[float, OmnifsError]] = {}
        self._ahead: dict[str, None] = {}  # insertion-ordered set of prefetched, unread blocks
        self._prefetch_pool = cf.ThreadPoolExecutor(
            max_workers=max(1, min(self.readahead, 16)), thread_name_prefix="omnifs-readahead")
        #: reads cached blocks ahead of sequential readers, several at once (one
        #: 4 MiB pread at a time leaves the disk idle between requests: ~0.8 GB/s
        #: here against ~1.3 GB/s with four in flight; mapping and checking 1 GiB of
        #: cached blocks after a dropped page cache: 1.07 s with 4, 0.86 s with 8)
        self._disk_pool = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="omnifs-diskread")
        #: write fetched blocks into the disk cache behind the stream. The cache write
        #: (O_DIRECT, checksum, index: ~0.26 s per 256 MiB on the test disk) is slower
        #: than a fast stream, and a stream that waits for it is a reader that waits:
        #: with 16 blocks allowed to wait a cold 256 MiB read took 0.64-0.69 s, with
        #: 64 (and reused buffers, below) 0.41-0.50 s. One writer at a time holds the
        #: index; the second prepares its block meanwhile.
        self._writer = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="omnifs-cachewrite")
        self._write_slots_n = max(4, WRITE_BEHIND // self.block_size)
        self._write_slots = threading.Semaphore(self._write_slots_n)
        #: buffers for the blocks streams fill: enough for every block that may wait
        #: for the writers, plus the window of each of a few streams (at most 256:
        #: small blocks cost few faults, and a long pool is a long search)
        self.pool = BlockPool(self.block_size,
                              min(256, self._write_slots_n + 2 * max(readahead, 1) + 4))
        self._streamers: set[_Streamer] = set()
        #: blocks fetched from stores (on demand or ahead), for tests and bench
        self.fetches = 0
        #: a reader waiting this long for a block read-ahead is streaming fetches it itself
        self.stall_timeout = 2.0
        self._snapshot_path = (cache.directory / SNAPSHOT_NAME) if cache is not None else None
        self._snapshot_at = 0.0

    def open(self, file: FileRef) -> ReadHandle:
        return ReadHandle(self, file)

    # -- blocks ---------------------------------------------------------------
    def block_range(self, file: FileRef, index: int) -> tuple[int, int]:
        start = index * self.block_size
        return start, min(start + self.block_size, file.size)

    def get_block(self, file: FileRef, index: int, *,
                  fetched_for_us: Callable[[], bool] | None = None) -> Block:
        """Block ``index``: from the cache, from a fetch already running, or fetched now.

        ``fetched_for_us()``: did the caller's own stream bring this block (a
        miss already)? Finding it in the cache is then no hit. Asked after the
        cache answered, so a stream finishing meanwhile is seen.
        """
        key = f"{file.content_id}:{index}"
        if self.cache is not None:
            with self._lock:
                ahead = self._ahead.pop(key, 0) is None
            data = self.cache.get(file.content_id, index, count=False, mapped=True)
            if data is not None:
                if not ahead and not (fetched_for_us is not None and fetched_for_us()):
                    self.cache.note("hits")
                return data
        return self._shared_fetch(file, index, key)

    def _shared_fetch(self, file: FileRef, index: int, key: str, tries: int = 3) -> Block:
        with self._lock:
            fut = self._inflight.get(key)
            owner = fut is None
            if owner:
                fut = self._inflight[key] = cf.Future()
            else:
                # joining read-ahead's fetch: the block is being used, no longer "ahead, unread"
                self._ahead.pop(key, None)
        if not owner:
            try:
                return fut.result(timeout=self.stall_timeout)
            except cf.TimeoutError:
                log.info("read-ahead of %s stalled; fetching it directly", key)
                return self._direct_fetch(file, index)
            except Exception as e:  # noqa: BLE001 - the other fetch's error; ours may succeed
                log.debug("shared fetch of %s failed (%s)", key, e)
                if tries > 1:
                    # join (or become) the next fetch of it rather than adding one
                    return self._shared_fetch(file, index, key, tries - 1)
                return self._direct_fetch(file, index)
        try:
            data = None
            if self.cache is not None and self.cache.contains(file.content_id, index):
                # another fetch finished between our miss and now
                data = self.cache.get(file.content_id, index, count=False, mapped=True)
            if data is None:
                data = self._direct_fetch(file, index)
            fut.set_result(data)
            return data
        except BaseException as e:
            fut.set_exception(e)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def _direct_fetch(self, file: FileRef, index: int) -> bytes:
        """One block from the fastest replica (hedged, failed over), into the cache."""
        failed = self._failed.get(_failure_key(file, index))
        if failed is not None and time.monotonic() - failed[0] < FAILED_FOR:
            raise type(failed[1])(str(failed[1]))
        start, end = self.block_range(file, index)
        try:
            data = self.reader.fetch(file.replicas, start, end)
        except OmnifsError as e:
            self.note_failed(file, index, e)
            raise
        self._fetched()
        self._stored(file, index, data)
        return data

    def note_failed(self, file: FileRef, index: int, err: OmnifsError) -> None:
        """No replica could give block ``index``: fetches of it fail at once for a while."""
        with self._lock:
            self._failed[_failure_key(file, index)] = (time.monotonic(), err)
            while len(self._failed) > _FAILED_MEMORY:
                self._failed.pop(next(iter(self._failed)))

    def _fetched(self) -> None:
        """Count a block that came from a store (a miss), when it arrives."""
        with self._lock:
            self.fetches += 1
            due = time.monotonic() - self._snapshot_at >= _SNAPSHOT_EVERY
            if due:
                self._snapshot_at = time.monotonic()
        if due:
            self.save_stats()
        if self.cache is not None:
            self.cache.note("misses")

    def _stored(self, file: FileRef, index: int, data: bytes) -> None:
        if self.cache is not None:
            self.cache.put(file.content_id, index, data)

    def start_streamer(self, handle: ReadHandle, first: int, claimed: cf.Future | None = None
                       ) -> _Streamer | None:
        if self.cache is None:
            return None
        streamer = _Streamer(self, handle, first, claimed)
        with self._lock:
            self._streamers = {st for st in self._streamers if not st.done}
            self._streamers.add(streamer)
        self._prefetch_pool.submit(streamer.run)
        return streamer

    def claim(self, file: FileRef, index: int) -> cf.Future | None:
        """Become the fetcher of a block for read-ahead; None when cached or already on its way."""
        key = f"{file.content_id}:{index}"
        with self._lock:
            if key in self._inflight:
                return None
        if self.cache is not None and self.cache.contains(file.content_id, index):
            return None
        with self._lock:
            if key in self._inflight:
                return None
            fut = self._inflight[key] = cf.Future()
            self._ahead[key] = None
            while len(self._ahead) > _AHEAD_MEMORY:
                self._ahead.pop(next(iter(self._ahead)))
        return fut

    def release(self, file: FileRef, index: int, fut: cf.Future, data: bytes | None,
                err: BaseException | None = None) -> None:
        """Finish a claimed block: store and hand it to waiters, or fail it (waiters refetch)."""
        key = f"{file.content_id}:{index}"
        if data is None:
            with self._lock:
                self._inflight.pop(key, None)
                self._ahead.pop(key, None)
            fut.set_exception(err or Unavailable("read-ahead stopped"))
            return
        self._fetched()
        fut.set_result(data)  # waiters first
        # the disk cache write goes to the writer thread so the stream keeps
        # flowing; the block stays "in flight" (resolved) until it is stored,
        # and at most a few blocks wait in memory for the writer
        self._write_slots.acquire()

        def store() -> None:
            try:
                self._stored(file, index, data)
            except Exception as e:  # noqa: BLE001 - a block not cached is refetched later
                log.warning("cannot cache block %s: %s", key, e)
            finally:
                with self._lock:
                    self._inflight.pop(key, None)
                self._write_slots.release()

        self._writer.submit(store)

    def forget_ahead(self, file: FileRef, indices: range) -> None:
        """Blocks read ahead for a handle that closed before reading them."""
        with self._lock:
            for index in indices:
                self._ahead.pop(f"{file.content_id}:{index}", None)

    def drain(self) -> None:
        """Wait until every fetched block is in the disk cache (tests, benchmarks)."""
        for _ in range(self._write_slots_n):  # every slot back: no write queued or running
            self._write_slots.acquire()
        for _ in range(self._write_slots_n):
            self._write_slots.release()

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
        with self._lock:
            streamers, self._streamers = self._streamers, set()
        for streamer in streamers:
            streamer.stop.set()
        self._prefetch_pool.shutdown(wait=True, cancel_futures=True)
        self._disk_pool.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True)
        self.pool.close()
        self.reader.close()
        self.save_stats()
        if self.cache is not None:
            self.cache.flush()


#: a block in memory: a read-only map of its disk cache file, bytes from a store, or
#: a buffer filled by a stream
Block = bytes | bytearray | memoryview | mmap.mmap


class _Partial:
    """A block a stream is filling: reads of its first bytes need not wait for the rest."""

    __slots__ = ("buf", "filled")

    def __init__(self, size: int, pool: BlockPool):
        # page-aligned: the disk cache writes it with O_DIRECT
        self.buf = pool.take() if size == pool.size else aligned_buffer(size)
        self.filled = 0


class ReadHandle:
    """One open file: its last few blocks and its sequential-access detector.

    Consecutive reads of one block are served from the one in-memory copy as
    ``memoryview`` slices (no copy; pyfuse3 hands any buffer to the kernel).
    When every byte a read wants is already in memory, :meth:`try_read`
    answers without a worker thread (the mount calls it on the trio thread).
    """

    #: blocks kept in memory per handle: the kernel may have a few reads of one file in flight
    KEEP = 3

    def __init__(self, path: ReadPath, file: FileRef):
        self.path = path
        self.file = file
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._arrived = threading.Condition(self._lock)  # a stream filled more of a block
        self._blocks: dict[int, Block | _Partial] = {}
        self._offered: dict[int, None] = {}  # blocks in _blocks read ahead from the cache, unused
        self._loading: dict[int, cf.Future] = {}  # blocks the disk pool is reading for us
        self._streamed: dict[int, None] = {}  # blocks in _blocks our stream fetched, unused
        #: blocks our stream fetched, ahead of or near the reader (for the hit count)
        self._fetched: set[int] = set()
        self._next_offset: int | None = None
        self.window = 0
        self.last_block = -1
        self.closed = False
        self._far = 0  # reads in a row far from the frontier
        self._streamer: _Streamer | None = None

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes at ``offset`` (fewer only at end of file); blocking."""
        file = self.file
        if offset >= file.size or size <= 0:
            return b""
        end = min(offset + size, file.size)
        bs = self.path.block_size
        first, last = offset // bs, (end - 1) // bs
        self._plan_readahead(offset, end, last)
        parts = []
        for index in range(first, last + 1):
            lo = max(offset - index * bs, 0)
            hi = min(end - index * bs, bs)
            parts.append(self._get(index, lo, hi))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def try_read(self, offset: int, size: int) -> memoryview | None:
        """The bytes at once when they are all in memory already, else None (then :meth:`read`).

        Never blocks: no disk, no store, no catalog. Only within one block and
        only once a run is known (the first read plans read-ahead, which may
        touch the cache's index).
        """
        file = self.file
        if offset >= file.size or size <= 0:
            return None
        end = min(offset + size, file.size)
        bs = self.path.block_size
        index = offset // bs
        if (end - 1) // bs != index:
            return None
        lo, hi = offset - index * bs, end - index * bs
        with self._lock:
            if self._next_offset is None:
                return None
            view = self._view(index, lo, hi)
            if view is None:
                return None
        self._plan_readahead(offset, end, index)
        return view

    def _view(self, index: int, lo: int, hi: int) -> memoryview | None:
        """Bytes ``[lo, hi)`` of block ``index`` if in memory (holding the lock)."""
        block = self._blocks.get(index)
        if block is None:
            return None
        if isinstance(block, _Partial):
            if block.filled < hi:
                return None
            block = block.buf
        if index in self._offered:
            del self._offered[index]
            if self.path.cache is not None:
                self.path.cache.note("hits")  # read from the cache ahead of us, counted when used
        elif index in self._streamed:
            # fetched for us by our stream (a miss, counted): no longer "ahead, unread"
            del self._streamed[index]
            self.path.forget_ahead(self.file, range(index, index + 1))
        return memoryview(block)[lo:min(hi, len(block))]

    def _get(self, index: int, lo: int, hi: int) -> memoryview:
        with self._lock:
            while True:
                view = self._view(index, lo, hi)
                if view is not None:
                    return view
                block = self._blocks.get(index)
                if self.closed:
                    break
                if not isinstance(block, _Partial):
                    if not self._stream_coming(index):
                        break
                    # our stream gets there in a moment: a request of our own for
                    # this block would cost a second GET (on some stores a copy of
                    # the whole object) and slow the stream it competes with
                    if not self._arrived.wait(self.path.stall_timeout):
                        log.info("stream did not reach block %s; fetching it directly", index)
                        break
                    continue
                # a stream of ours is filling this block: wait for its bytes, or
                # for it to fail (then the block is gone and we fetch it), or to
                # make no progress for stall_timeout (then we fetch it ourselves)
                before = block.filled
                if not self._arrived.wait(self.path.stall_timeout) and block.filled == before:
                    log.info("stream of block %s stalled; fetching it directly", index)
                    break
            loading = self._loading.get(index)
        if loading is not None:
            try:
                loading.result(timeout=self.path.stall_timeout)
            except Exception:  # noqa: BLE001, S110 - read-ahead is a hint; fetched below instead
                pass
            with self._lock:
                view = self._view(index, lo, hi)
                if view is not None:
                    return view
        def ours() -> bool:
            with self._lock:
                return index in self._fetched

        block = self.path.get_block(self.file, index, fetched_for_us=ours)
        with self._lock:
            self._blocks[index] = block
            self._offered.pop(index, None)
            self._streamed.pop(index, None)
            self._trim()
        return memoryview(block)[lo:min(hi, len(block))]

    def _stream_coming(self, index: int) -> bool:
        """Is our store stream about to fill block ``index`` (holding the lock)?

        Only a stream already open, a few blocks short of ``index`` at most:
        a reader far ahead (random access) or one the stream no longer
        serves fetches for itself.
        """
        st = self._streamer
        return (st is not None and st.streaming and index not in self._loading
                and st.next_index <= index <= st.next_index + max(self.window, 1) + 1)

    def _trim(self) -> None:
        """Keep the ``KEEP`` most recent blocks read plus those read ahead of the reader."""
        behind = sorted(i for i in self._blocks if i <= self.last_block)
        self._fetched = {i for i in self._fetched if i >= self.last_block - 2 * self.KEEP}
        for i in behind[:-self.KEEP] if len(behind) > self.KEEP else ():
            del self._blocks[i]
            self._offered.pop(i, None)
            self._streamed.pop(i, None)

    def offer(self, index: int, data: Block | _Partial, *, cached: bool = True) -> bool:
        """A block read ahead of the reader; False (dropped) when not wanted or no room.

        ``cached``: it came from the disk cache (a hit once used); a block a
        stream fetched for us was counted as a miss already.
        """
        with self._lock:
            if self.closed or index in self._blocks:
                return False
            if index <= self.last_block and not isinstance(data, _Partial):
                return False
            ahead = sum(1 for i in self._blocks if i > self.last_block)
            if ahead >= max(1, self.path.readahead) + 1:
                return False
            self._blocks[index] = data
            (self._offered if cached else self._streamed)[index] = None
            return True

    def load_ahead(self, index: int) -> None:
        """Have the disk pool read cached block ``index`` into this handle ahead of the reader."""
        path = self.path
        with self._lock:
            if (self.closed or index <= self.last_block or index in self._blocks
                    or index in self._loading or path.cache is None):
                return
            fut: cf.Future = cf.Future()
            self._loading[index] = fut

        def load() -> None:
            data = None
            try:
                data = path.cache.get(self.file.content_id, index, count=False, mapped=True)
            except Exception as e:  # noqa: BLE001 - read-ahead is a hint; the reader fetches it
                log.debug("read-ahead of cached block %s failed: %s", index, e)
            with self._lock:
                self._loading.pop(index, None)
                if data is not None and not self.closed and index not in self._blocks:
                    self._blocks[index] = data
                    self._offered[index] = None
            fut.set_result(data)

        try:
            path._disk_pool.submit(load)
        except RuntimeError:  # shutting down
            with self._lock:
                self._loading.pop(index, None)
            fut.set_result(None)

    def wake(self) -> None:
        """Readers waiting for our stream look again (it ended or stopped)."""
        with self._lock:
            self._arrived.notify_all()

    def note_fetched(self, index: int) -> None:
        """Our stream brought block ``index`` from a store (whether or not we hold it)."""
        with self._lock:
            self._fetched.add(index)

    def fill(self, index: int, part: _Partial, filled: int) -> None:
        """A stream put more bytes into ``part`` (block ``index``): wake readers waiting for them."""
        with self._lock:
            part.filled = filled
            self._arrived.notify_all()

    def settle(self, index: int, part: _Partial, data: Block | None) -> None:
        """The stream finished ``part``: the whole block, or None (failed: readers fetch it)."""
        with self._lock:
            if self._blocks.get(index) is part:
                if data is None:
                    del self._blocks[index]
                    self._streamed.pop(index, None)
                else:
                    self._blocks[index] = data
                    part.filled = len(data)
                self._trim()
            self._arrived.notify_all()

    def _plan_readahead(self, offset: int, end: int, last: int) -> None:
        """Sequential or not, judged against the frontier (the furthest byte read so far).

        The kernel has several reads of one file in flight and they arrive out
        of order (here: 10, 14..18, 11..13 MiB, and up to 9 MiB past the
        frontier), so "starts where the last one ended" would call a plain
        `cat` random. A read near the frontier counts as sequential; two far
        from it in a row mean random access.
        """
        limit = self.path.readahead
        if limit <= 0:
            return
        if self._streamer is None or not self._streamer.streaming:
            # served from the disk cache: blocks read ahead are maps of cache files
            # (page cache, no memory of ours), and the disk wants many reads in
            # flight. Twice the window: a warm 1 GiB read took 1.26-1.45 s, 0.98-1.04 s
            limit *= 2
        bs = self.path.block_size
        start = None
        with self._lock:
            front = self._next_offset
            slack_back = (2 * max(self.window, 1) + 2) * bs
            # ahead: the kernel's read-ahead of a FUSE file runs up to ~9 MiB past
            # the furthest read here (two such reads in a row stopped the stream
            # mid-`cat`, and every block after that was its own GET)
            slack_ahead = (4 if self.window else 2) * bs
            near = front is not None and front - slack_back <= offset <= front + slack_ahead
            if near:
                self._far = 0
            else:
                self._far += 1
            if front is None and offset < bs and self.path.cache is not None:
                # a read from the very start: most likely `cat`, `cp` or the like.
                # Stream from block 0 at once (one request instead of two); a
                # random reader that starts here costs one block of read-ahead.
                # Within block 0, not only at offset 0: the kernel sends its first
                # reads of a file together and they arrive in any order (a `cat`
                # whose 1 MiB read came first made a GET of block 0 and a stream
                # from block 1, two first bytes instead of one).
                self._next_offset = end
                self.last_block = last
                self.window = 1
                fut = self.path.claim(self.file, 0)
                if fut is not None:
                    self._streamer = self.path.start_streamer(self, 0, fut)
                return
            if front is None or (not near and self._far >= 2):
                # first read, or random access: no read-ahead until a run starts again
                self._next_offset = end
                self.last_block = last
                self.window = 0
                if self._streamer is not None:
                    self._streamer.stop.set()
                    self._streamer = None
                    self._arrived.notify_all()
                self._moved.notify_all()
                return
            if not near:
                return  # one stray read does not end a run
            self._next_offset = max(front, end)
            moved = last > self.last_block
            self.last_block = max(self.last_block, last)
            if moved or self.window == 0:
                self.window = min(limit, max(1, self.window * 2))
            nblocks = (self.file.size + bs - 1) // bs
            st = self._streamer
            # a stream that went all the way to the end of the file handled every block
            # after it (fetched, cached or left to a fetch in flight): no new one
            if ((st is None or (st.done and st.next_index < nblocks))
                    and self.last_block + 1 < nblocks):
                start = self.last_block + 1
            self._moved.notify_all()
        if start is not None:
            streamer = self.path.start_streamer(self, start)
            with self._lock:
                self._streamer = streamer

    def wait_until_wanted(self, index: int, stop: threading.Event, idle: float) -> bool:
        """Block until the reader is within the window of ``index``; False to give up."""
        deadline = time.monotonic() + idle
        with self._lock:
            while index > self.last_block + self.window:
                if self.closed or stop.is_set() or self.window == 0:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False  # the reader went quiet: free the thread and the connection
                self._moved.wait(min(left, 0.5))
            return not (self.closed or stop.is_set())

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._blocks.clear()
            self._arrived.notify_all()
            if self._streamer is not None:
                self._streamer.stop.set()
            self._moved.notify_all()
            unread = range(self.last_block + 1, self.last_block + self.path.readahead + 2)
        self.path.forget_ahead(self.file, unread)


class _Streamer:
    """Sequential read-ahead for one handle: one long ranged GET, paced by the reader.

    Why one stream and not a GET per block: per-request cost dominates on
    some stores (moto re-reads the whole object for every ranged GET), and a
    single stream is what a plain ``GET`` gets. The stream stays at most
    ``window`` blocks ahead of the reader, holding one block in memory; each
    block goes into the disk cache and to any reader already waiting for it.
    A failing stream is reopened on the next replica from the same block; a
    stalling one is detected by the waiting reader (``stall_timeout``), which
    then fetches the block itself and stops this streamer.
    """

    IDLE = 10.0

    def __init__(self, path: ReadPath, handle: ReadHandle, first: int,
                 claimed: cf.Future | None = None):
        self.path = path
        self.handle = handle
        self.next_index = first
        self._preclaimed = claimed
        self.stop = threading.Event()
        self.done = False
        self._stream = None

    def run(self) -> None:
        path, file = self.path, self.handle.file
        bs = path.block_size
        nblocks = (file.size + bs - 1) // bs
        self._stream = None
        self._buf = bytearray()
        self._provider = None
        self._ttfb = 0.0
        claimed: dict[int, cf.Future] = {}
        if self._preclaimed is not None:
            claimed[self.next_index] = self._preclaimed
        failures = 0
        try:
            while self.next_index < nblocks and not self.stop.is_set():
                index = self.next_index
                # reserve the blocks we may fetch without waiting (up to the reader's
                # window), so that reads the kernel sends ahead of us wait for this
                # stream instead of each starting a request; never more, or readers
                # of another handle would wait on blocks this one is not fetching
                h = self.handle
                for j in range(index, min(nblocks, h.last_block + h.window + 1)):
                    if j not in claimed:
                        claimed[j] = path.claim(file, j)
                if not self.handle.wait_until_wanted(index, self.stop, self.IDLE):
                    break
                fut = claimed.pop(index) if index in claimed else path.claim(file, index)
                start, end = path.block_range(file, index)
                if fut is None:
                    # cached (read it into the handle ahead of the reader: the disk
                    # and the checksum work while the kernel takes the previous
                    # block) or fetched by someone else: no new request either way.
                    # Also mid-stream: a reader already waiting for this block
                    # counted on the stream bringing it, and is woken below to
                    # take it from the handle or the cache instead (it used to sit
                    # out the whole stall timeout: 2 s on a cold read whose middle
                    # blocks another process had just cached)
                    self.handle.load_ahead(index)
                    if self._stream is not None:
                        try:
                            self._take(end - start)
                        except Exception:  # noqa: BLE001 - reopened at the next block instead
                            self._drop()
                    self.next_index += 1
                    self.handle.wake()
                    continue
                data = None
                err: BaseException | None = None
                #: the stream being read when it failed (an open's failures are counted by open_stream)
                reading: ProviderStats | None = None
                t0 = time.monotonic()
                try:
                    if self._stream is None:
                        replica, self._stream, first, self._ttfb = path.reader.open_stream(
                            file.replicas, start, file.size)
                        self._provider = path.reader.stats.get(replica.name)
                        self._buf = bytearray(first)
                    reading = self._provider
                    t0 = time.monotonic()
                    data = self._take(end - start, index)
                    self._provider.record_transfer(self._ttfb, len(data), time.monotonic() - t0)
                except Exception as e:  # noqa: BLE001 - read-ahead is a hint; waiters refetch
                    err = e
                    if reading is not None and not self.stop.is_set():
                        path.reader.failed(reading.name, e, time.monotonic() - t0)
                    self._drop()
                if data is not None:
                    self.handle.note_fetched(index)
                opened = reading is not None
                if not opened and isinstance(err, OmnifsError):
                    # no replica would even start the stream (they were all tried): say so
                    # before waiters retry, and stop; readers fetch for themselves
                    path.note_failed(file, index, err)
                path.release(file, index, fut, data, err)
                if data is None:
                    failures += 1
                    if not opened or failures > 2 * len(file.replicas) or self.stop.is_set():
                        break
                    continue  # reopen on the (re-ranked) next replica, same block
                self.next_index += 1
        finally:
            for index, fut in claimed.items():
                if fut is not None:
                    path.release(file, index, fut, None)
            self._drop()
            self.done = True
            self.handle.wake()  # readers waiting for this stream fetch for themselves now

    def _take(self, n: int, index: int | None = None) -> Block:
        """The next ``n`` bytes of the stream; with ``index``, handed to the reader as they come.

        The stream reads straight into one preallocated block buffer (no
        intermediate bytes per piece: with S3 that is a quarter of the CPU,
        see providers/s3wire.py), which the handle serves from while it
        fills: a read of the block's first MiB does not wait for the other
        three.
        """
        if index is None:  # skipping a block someone else fetched
            while len(self._buf) < n:
                if self.stop.is_set():
                    raise Unavailable("read-ahead stopped")
                piece = self._stream.read(_PIECE)
                if not piece:
                    raise Unavailable(f"stream ended {n - len(self._buf)} bytes early")
                self._buf += piece
            del self._buf[:n]
            return b""
        part = _Partial(n, self.path.pool)
        view = memoryview(part.buf)
        handle = self.handle
        shown = handle.offer(index, part, cached=False)
        pos = min(len(self._buf), n)
        view[:pos] = self._buf[:pos]
        del self._buf[:pos]
        try:
            while pos < n:
                if shown and pos:
                    handle.fill(index, part, pos)
                if self.stop.is_set():
                    raise Unavailable("read-ahead stopped")
                got = _read_into(self._stream, view[pos:min(n, pos + _PIECE)])
                if not got:
                    raise Unavailable(f"stream ended {n - pos} bytes early")
                pos += got
        except BaseException:
            if shown:
                handle.settle(index, part, None)
            raise
        if shown:
            handle.settle(index, part, part.buf)
        return part.buf

    @property
    def streaming(self) -> bool:
        """A store stream is open and being read (not stopped, not finished)."""
        return self._stream is not None and not self.done and not self.stop.is_set()

    def _drop(self) -> None:
        _close_quietly(self._stream)
        self._stream, self._buf, self._provider = None, bytearray(), None


def _read_into(stream, view: memoryview) -> int:
    """``stream.readinto(view)``; read-and-copy for a stream without it."""
    try:
        return stream.readinto(view)
    except (AttributeError, NotImplementedError, io.UnsupportedOperation):
        piece = stream.read(len(view))
        view[:len(piece)] = piece
        return len(piece)


#: test and benchmark seam: ``name=seconds[,name=seconds]`` adds that latency to every
#: read request the mount sends to those providers (providers/faulty.py), so the
#: fastest-replica logic can be measured through a real mount. Never set in production.
TEST_LATENCY_ENV = "OMNIFS_TEST_READ_LATENCY"


def _slowed_providers(stores, spec: str) -> dict:
    if not spec.strip():
        return {}
    from providers.faulty import FaultyProvider

    out = {}
    for item in spec.split(","):
        name, _, secs = item.partition("=")
        name = name.strip()
        try:
            latency = float(secs)
        except ValueError:
            log.warning("%s: ignoring %r (want name=seconds)", TEST_LATENCY_ENV, item)
            continue
        if name in stores.order:
            log.warning("%s: reads from %s delayed by %.3f s (test seam)", TEST_LATENCY_ENV,
                        name, latency)
            out[name] = FaultyProvider(stores[name], latency=latency, name=name)
    return out


class CachedStoreReader:
    """The mount's reader (drop-in for ``mountfs.readpath.StoreReader``): cache, fastest replica.

    Same three calls the mount makes: ``read(handle, inode, off, size)``,
    ``drop(handle)`` and ``fetch_whole(inode, fd)`` (copying a whole file
    into a staging file before a write: mountfs/staging_fill.py). Files the
    catalog knows no SHA-256 for are read through the same replica logic but
    not cached: without a content hash an entry could go stale.

    When no store gives a file's bytes, the error names the file (one log
    line per file, mountfs/fuse_errors.py) and is EIO at the FUSE boundary:
    ``NotFound`` when the stores answer that they do not have it (or no
    replica of the current version is left), ``Unavailable`` when they
    cannot be reached.
    """

    def __init__(self, catalog, stores, config, *, limiter_tokens: int = 32):
        import trio

        from .readpath import StoreReader

        self._simple = StoreReader(catalog, stores)
        self.cat = catalog
        self.stores = stores
        cache = BlockCache.for_config(config)
        # the process-wide REGISTRY (`omnifs status` shows it); read failures reach the
        # mount's health through ``stores``
        self.replicas = ReplicaReader(health=stores)
        self.path = ReadPath(cache, self.replicas, readahead=config.cache_readahead)
        self.uncached = ReadPath(None, self.replicas, block_size=config.cache_block_size)
        self._limiter = trio.CapacityLimiter(limiter_tokens)
        #: per FUSE handle: (content version it was opened for, its ReadHandle)
        self._open: dict[int, tuple[tuple, ReadHandle]] = {}
        #: inode -> content hash at its last open, oldest first (for keep_cache)
        self._seen: dict[int, str | None] = {}
        self._slowed = _slowed_providers(stores, os.environ.get(TEST_LATENCY_ENV, ""))
        # round trips measured now, in the background, so that the first read
        # already goes to the fastest replica instead of the first in placement order
        self.replicas.probe([self._provider(name) for name in stores.order])
        # the first cold read pays no page faults for its buffers
        threading.Thread(target=self.path.pool.warm, args=(WRITE_BEHIND,), name="omnifs-poolwarm",
                         daemon=True).start()

    def _provider(self, name: str):
        """The provider reads go to; behind injected latency when the test seam asks for it."""
        p = self._slowed.get(name)
        return p if p is not None else self.stores[name]

    def _file_ref(self, inode) -> FileRef:
        reps = [Replica(self._provider(name), key) for name, key in self._simple.sources(inode)]
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

    async def read(self, handle, inode, off: int, size: int) -> bytes | memoryview:
        import trio

        if off >= inode.size or size <= 0:
            return b""
        rh = self._handle_for(handle, inode)
        view = rh.try_read(off, size)
        if view is not None:
            return view  # in memory already: no worker thread
        try:
            return await trio.to_thread.run_sync(rh.read, off, size, limiter=self._limiter)
        except OmnifsError as e:
            # a queued move (after a rename) may have moved the objects since their keys
            # were read: with the keys the catalog has now, once
            if {(r.name, r.key) for r in rh.file.replicas} == set(self._simple.sources(inode)):
                raise self._unreadable(inode, e) from None
        await self.drop(handle)
        rh = self._handle_for(handle, inode)
        try:
            return await trio.to_thread.run_sync(rh.read, off, size, limiter=self._limiter)
        except OmnifsError as e:
            raise self._unreadable(inode, e) from None

    async def drop(self, handle) -> None:
        import trio

        known = self._open.pop(id(handle), None)
        if known is not None:
            # in a worker: letting go of a handle's blocks unmaps its cached ones,
            # 80 ms on the event loop after a warm 1 GiB read, no FUSE request served
            await trio.to_thread.run_sync(known[1].close, limiter=self._limiter)
        await self._simple.drop(handle)

    async def fetch_whole(self, inode, dest_fd: int,
                          before_write: Callable[[int], None] | None = None) -> hashlib._Hash:
        """The current content into ``dest_fd`` (a new staging file); the SHA-256 of it.

        Cached blocks from the cache, the rest from the fastest replica (see
        mountfs/staging_fill.py); checked against the catalog's hash.
        ``before_write(n)`` is asked before each ``n`` bytes of data are written
        (the mount's room on local disk); its ENOSPC ends the copy.
        """
        import trio

        cache = self.path.cache if inode.sha256 else None
        for attempt in (0, 1):
            ref = self._file_ref(inode)
            try:
                return await trio.to_thread.run_sync(
                    fill_staging, dest_fd, ref, cache, self.replicas, self.path.block_size,
                    inode.sha256, before_write, limiter=self._limiter)
            except NoSpace:
                raise
            except OmnifsError as e:
                # a queued move (after a rename) may have moved the objects since their keys
                # were read: with the keys the catalog has now, once
                moved = [(r.name, r.key) for r in ref.replicas] != self._simple.sources(inode)
                if attempt or not moved:
                    raise self._unreadable(inode, e) from None
        raise AssertionError("unreachable")

    def _unreadable(self, inode, err: OmnifsError) -> OmnifsError:
        """``err`` (no store gave the bytes) as the same kind of error, naming the file."""
        path = self.cat.ns.path_of(inode.id)
        where = f"/{path}" if path is not None else f"inode {inode.id} (unlinked)"
        return type(err)(str(err), key=where)

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
