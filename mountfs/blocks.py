"""The block engine: disk cache first, then the fastest replica, one fetch per block.

:class:`ReadPath` (one per mount, thread-safe) opens a
:class:`~mountfs.readhandle.ReadHandle` per FUSE file handle::

    handle = read_path.open(FileRef(content_id=sha256, size=size, replicas=[...]))
    data = await trio.to_thread.run_sync(handle.read, offset, length)
    handle.close()

Blocking by design (called in a worker thread), like the providers.

* Blocks of ``block_size`` bytes are the unit of caching and fetching; block
  ``i`` of a file is ``[i*bs, min((i+1)*bs, size))``.
* Concurrent readers of the same block (two handles, or a reader and the
  read-ahead) share one fetch through a per-block in-flight map. Read-ahead
  *claims* a block there before fetching it (:meth:`ReadPath.claim`) and
  *releases* it with the bytes or an error (:meth:`ReadPath.release`).
* Fetched blocks go to the disk cache behind the stream, in writer threads,
  which may fall ``WRITE_BEHIND`` bytes behind; stream blocks are reused
  buffers (mountfs/blockpool.py).
* Counters: a miss is a block fetched from a store (on demand or ahead, one
  per shared fetch); a hit is a block a reader took from the disk cache that
  read-ahead had not just fetched for it. So a cold read is all misses and a
  warm one all hits.
* A block no replica could give fails at once for ``FAILED_FOR`` seconds.
* A version just written through the mount and still waiting for the cache
  (mountfs/written.py) has a :class:`LocalCopy`: the blocks the cache lacks
  are read from it, with no stream and no store request (nor a miss counted).

The per-handle window is mountfs/readhandle.py, its planner
mountfs/readahead.py, the sequential stream mountfs/streamer.py. Without a
disk cache (``cache=None``) every block comes from a store and read-ahead is
off (there would be nowhere bounded to keep its blocks).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.blockcache import BlockCache
from omnifs.providers.errors import OmnifsError, Unavailable

from .blockpool import BlockPool
from .readhandle import ReadHandle
from .replicas import SNAPSHOT_NAME, Replica, ReplicaReader
from .streamer import Streamer

log = logging.getLogger("omnifs.read")

#: at most this many read-ahead blocks remembered as "fetched ahead, not yet read"
_AHEAD_MEMORY = 4096
#: seconds between snapshots of the provider measurements for `omnifs status`
_SNAPSHOT_EVERY = 5.0
#: bytes of fetched blocks that may wait in memory for the cache writers (see ReadPath.__init__)
WRITE_BEHIND = 256 * 1024**2
#: seconds a block no replica could give answers that error at once. The kernel asks
#: again for a page whose read failed, straight away, and a reader whose stores hang
#: would otherwise wait out every store's timeout once per retry (four times over, 85 s,
#: for one `cat` with every store stopped)
FAILED_FOR = 3.0
#: at most this many such failures remembered
_FAILED_MEMORY = 1024


#: a block in memory: a read-only map of its disk cache file, bytes from a store, or
#: a buffer filled by a stream
Block = bytes | bytearray | memoryview | mmap.mmap


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
    #: a local file holding exactly these bytes, read instead of a store (mountfs/written.py:
    #: closed when the file leaves its queue or the handle it was lent to closes)
    local: LocalCopy | None = None


class LocalCopy:
    """A descriptor of a local file with a version's bytes, read by several threads.

    Why not a bare descriptor: the handle that owns it is closed on the event
    loop while a worker may still be reading it, and a descriptor number closed
    under a reader can be reused at once for another file, whose bytes that
    reader would then return. So the last of the reads in progress closes it,
    and a read after :meth:`close` gets None (the caller asks a store).
    """

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()
        self._readers = 0
        self._closed = False

    def pread(self, size: int, offset: int) -> bytes | None:
        """``size`` bytes at ``offset``; None when closed or they are not all there."""
        with self._lock:
            if self._closed:
                return None
            self._readers += 1
        data = b""
        try:
            data = os.pread(self._fd, size, offset)
        except OSError as e:
            log.info("cannot read the just-written copy (%s); reading a store", e)
        finally:
            with self._lock:
                self._readers -= 1
                last = self._closed and not self._readers
            if last:
                os.close(self._fd)
        return data if len(data) == size else None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            last = not self._readers
        if last:
            os.close(self._fd)


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
        self.disk_pool = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="omnifs-diskread")
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
        self._streamers: set[Streamer] = set()
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
            joined = self._inflight.get(key)
            if joined is None:
                fut = self._inflight[key] = cf.Future()
            else:
                # joining read-ahead's fetch: the block is being used, no longer "ahead, unread"
                self._ahead.pop(key, None)
        if joined is not None:
            try:
                return joined.result(timeout=self.stall_timeout)
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
        """One block from the file's local copy, else from the fastest replica (hedged,
        failed over) into the cache."""
        start, end = self.block_range(file, index)
        if file.local is not None:
            data = file.local.pread(end - start, start)
            if data is not None:
                return data  # the written file's queue puts it in the cache
        failed = self._failed.get(_failure_key(file, index))
        if failed is not None and time.monotonic() - failed[0] < FAILED_FOR:
            raise type(failed[1])(str(failed[1]))
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

    def _stored(self, file: FileRef, index: int, data: bytes | bytearray | memoryview) -> None:
        if self.cache is not None:
            self.cache.put(file.content_id, index, data)

    def start_streamer(self, handle: ReadHandle, first: int, claimed: cf.Future | None = None
                       ) -> Streamer | None:
        if self.cache is None or handle.file.local is not None:
            return None  # a local copy is read on demand: no store stream
        streamer = Streamer(self, handle, first, claimed)
        with self._lock:
            self._streamers = {st for st in self._streamers if not st.done}
            self._streamers.add(streamer)
        self._prefetch_pool.submit(streamer.run)
        return streamer

    def claim(self, file: FileRef, index: int) -> cf.Future | None:
        """Become the fetcher of a block for read-ahead; None when cached or already on its way
        (or read from a local copy)."""
        if file.local is not None:
            return None
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

    def release(self, file: FileRef, index: int, fut: cf.Future,
                data: bytes | bytearray | memoryview | None,
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
        self.reader.close()  # first: a prefetch waiting on a hung store gives up
        self._prefetch_pool.shutdown(wait=True, cancel_futures=True)
        self.disk_pool.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True)
        self.pool.close()
        self.save_stats()
        if self.cache is not None:
            self.cache.flush()
