"""One open file's reads: its last few blocks in memory and its read-ahead window.

Consecutive reads of one block are served from one in-memory copy as
``memoryview`` slices (the kernel asks for 128 KiB-1 MiB at a time, several
at once; without that, every request would re-read a 4 MiB cache entry);
a read whose bytes are all in memory is answered on the event loop without
a worker thread (:meth:`ReadHandle.try_read`). Cached blocks are read-only
maps of their cache files (no copy into fresh memory, see
omnifs/blockfiles.py); a block's checksum is checked once, when it comes off
the disk, never per request.

Memory is bounded by open handles x (``ReadHandle.KEEP`` + the read-ahead
window) blocks, plus at most ``WRITE_BEHIND`` bytes (mountfs/blocks.py) of
blocks waiting for the cache writers. A run served from the disk cache gets
twice the window: its blocks are maps of cache files, page cache rather than
memory of ours.

Each read goes through the planner (mountfs/readahead.py), which says when a
run starts, how far its window reaches and when it ends. A run gets one
ranged stream from the fastest replica (mountfs/streamer.py); cached blocks
in the window are read ahead by the engine's disk pool, several at once (one
4 MiB read at a time leaves the disk idle).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from . import readahead
from .streamer import Partial, Streamer

if TYPE_CHECKING:
    from .blocks import Block, FileRef, ReadPath

log = logging.getLogger("omnifs.read")


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
        self._blocks: dict[int, Block | Partial] = {}
        self._offered: dict[int, None] = {}  # blocks in _blocks read ahead from the cache, unused
        self._loading: dict[int, cf.Future] = {}  # blocks the disk pool is reading for us
        self._streamed: dict[int, None] = {}  # blocks in _blocks our stream fetched, unused
        #: blocks our stream fetched, ahead of or near the reader (for the hit count)
        self._fetched: set[int] = set()
        #: the reader's run and read-ahead window (replaced whole, under the lock)
        self.window = readahead.Window()
        self.closed = False
        self._streamer: Streamer | None = None

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes at ``offset`` (fewer only at end of file); blocking."""
        file = self.file
        if offset >= file.size or size <= 0:
            return b""
        end = min(offset + size, file.size)
        bs = self.path.block_size
        first, last = offset // bs, (end - 1) // bs
        self._plan_readahead(offset, end)
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
            if self.window.front is None:
                return None
            view = self._view(index, lo, hi)
            if view is None:
                return None
        self._plan_readahead(offset, end)
        return view

    def _view(self, index: int, lo: int, hi: int) -> memoryview | None:
        """Bytes ``[lo, hi)`` of block ``index`` if in memory (holding the lock)."""
        block = self._blocks.get(index)
        if block is None:
            return None
        if isinstance(block, Partial):
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
                if not isinstance(block, Partial):
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
            # read-ahead is a hint: a block it failed to load is fetched below instead
            with contextlib.suppress(Exception):
                loading.result(timeout=self.path.stall_timeout)
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
                and readahead.stream_reaches(self.window, st.next_index, index))

    def _trim(self) -> None:
        """Keep the ``KEEP`` most recent blocks read plus those read ahead of the reader."""
        last = self.window.last_block
        behind = sorted(i for i in self._blocks if i <= last)
        self._fetched = {i for i in self._fetched if i >= last - 2 * self.KEEP}
        for i in behind[:-self.KEEP] if len(behind) > self.KEEP else ():
            del self._blocks[i]
            self._offered.pop(i, None)
            self._streamed.pop(i, None)

    def offer(self, index: int, data: Block | Partial, *, cached: bool = True) -> bool:
        """A block read ahead of the reader; False (dropped) when not wanted or no room.

        ``cached``: it came from the disk cache (a hit once used); a block a
        stream fetched for us was counted as a miss already.
        """
        with self._lock:
            if self.closed or index in self._blocks:
                return False
            last = self.window.last_block
            if index <= last and not isinstance(data, Partial):
                return False
            ahead = sum(1 for i in self._blocks if i > last)
            if ahead >= max(1, self.path.readahead) + 1:
                return False
            self._blocks[index] = data
            (self._offered if cached else self._streamed)[index] = None
            return True

    def load_ahead(self, index: int) -> None:
        """Have the disk pool read cached block ``index`` into this handle ahead of the reader."""
        path = self.path
        cache = path.cache
        with self._lock:
            if (self.closed or index <= self.window.last_block or index in self._blocks
                    or index in self._loading or cache is None):
                return
            fut: cf.Future = cf.Future()
            self._loading[index] = fut

        def load() -> None:
            data = None
            try:
                data = cache.get(self.file.content_id, index, count=False, mapped=True)
            except Exception as e:  # noqa: BLE001 - read-ahead is a hint; the reader fetches it
                log.debug("read-ahead of cached block %s failed: %s", index, e)
            with self._lock:
                self._loading.pop(index, None)
                if data is not None and not self.closed and index not in self._blocks:
                    self._blocks[index] = data
                    self._offered[index] = None
            fut.set_result(data)

        try:
            path.disk_pool.submit(load)
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

    def fill(self, index: int, part: Partial, filled: int) -> None:
        """A stream put more bytes into ``part`` (block ``index``): wake readers waiting."""
        with self._lock:
            part.filled = filled
            self._arrived.notify_all()

    def settle(self, index: int, part: Partial, data: Block | None) -> None:
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

    def _plan_readahead(self, offset: int, end: int) -> None:
        """Carry out the planner's answer to a read of ``[offset, end)`` (mountfs/readahead.py)."""
        path = self.path
        start = None
        with self._lock:
            st = self._streamer
            stream = None if st is None else readahead.Stream(st.streaming, st.done,
                                                              st.next_index)
            plan = readahead.plan(self.window, offset, end, block_size=path.block_size,
                                  file_size=self.file.size, limit=path.readahead, stream=stream)
            self.window = plan.window
            if plan.stop_stream and self._streamer is not None:
                self._streamer.stop.set()
                self._streamer = None
                self._arrived.notify_all()
            if plan.claim_first and plan.stream_from is not None:
                fut = path.claim(self.file, plan.stream_from)
                if fut is not None:
                    self._streamer = path.start_streamer(self, plan.stream_from, fut)
            else:
                start = plan.stream_from
            if plan.moved:
                self._moved.notify_all()
        if start is not None:
            streamer = path.start_streamer(self, start)
            with self._lock:
                self._streamer = streamer

    def wait_until_wanted(self, index: int, stop: threading.Event, idle: float) -> bool:
        """Block until the reader is within the window of ``index``; False to give up."""
        deadline = time.monotonic() + idle
        with self._lock:
            while not readahead.wanted(self.window, index):
                if self.closed or stop.is_set() or self.window.blocks == 0:
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
            last = self.window.last_block
            unread = range(last + 1, last + self.path.readahead + 2)
        self.path.forget_ahead(self.file, unread)
        if self.file.local is not None:
            self.file.local.close()
