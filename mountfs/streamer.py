"""Sequential read-ahead: one long ranged GET per run of a handle, paced by its reader.

:class:`Streamer` reads straight into pooled block buffers (:class:`Partial`)
that the handle (mountfs/readhandle.py) serves from while they fill, and
hands each finished block to the block engine (mountfs/blocks.py), which
writes it to the disk cache behind the stream. How far ahead it may run is
the handle's window (mountfs/readahead.py).
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import threading
import time
from typing import TYPE_CHECKING

from omnifs.blockcache import aligned_buffer
from omnifs.providers import ReadStream
from omnifs.providers.errors import OmnifsError, Unavailable

from . import readahead
from .replicas import ProviderStats, _close_quietly

if TYPE_CHECKING:
    from .blockpool import BlockPool
    from .blocks import ReadPath
    from .readhandle import ReadHandle

#: bytes asked of a stream at a time (and the granularity readers see them arrive in)
_PIECE = 1024 * 1024


class Partial:
    """A block a stream is filling: reads of its first bytes need not wait for the rest."""

    __slots__ = ("buf", "filled")

    def __init__(self, size: int, pool: BlockPool):
        # page-aligned: the disk cache writes it with O_DIRECT
        self.buf = pool.take() if size == pool.size else aligned_buffer(size)
        self.filled = 0


class Streamer:
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
        self._stream: ReadStream | None = None

    def run(self) -> None:
        path, file = self.path, self.handle.file
        bs = path.block_size
        nblocks = (file.size + bs - 1) // bs
        self._stream = None
        self._buf = bytearray()
        self._provider = None
        self._ttfb = 0.0
        claimed: dict[int, cf.Future | None] = {}
        if self._preclaimed is not None:
            claimed[self.next_index] = self._preclaimed
        failures = 0
        try:
            while self.next_index < nblocks and not self.stop.is_set():
                index = self.next_index
                # the blocks we may fetch without waiting (up to the reader's window)
                for j in readahead.reserve(self.handle.window, index, nblocks):
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
                    # take it from the handle or the cache instead (unwoken, it would
                    # sit out the whole stall timeout: 2 s on a cold read whose middle
                    # blocks another process has just cached)
                    self.handle.load_ahead(index)
                    if self._stream is not None:
                        try:
                            self._take(self._stream, end - start)
                        except Exception:  # noqa: BLE001 - reopened at the next block instead
                            self._drop()
                    self.next_index += 1
                    self.handle.wake()
                    continue
                data = None
                err: BaseException | None = None
                #: the stream being read when it failed (open_stream counts an open's failures)
                reading: ProviderStats | None = None
                t0 = time.monotonic()
                try:
                    if self._stream is None:
                        replica, self._stream, first, self._ttfb = path.reader.open_stream(
                            file.replicas, start, file.size)
                        self._provider = path.reader.stats.get(replica.name)
                        self._buf = bytearray(first)
                    reading = self._provider
                    assert reading is not None  # set with the stream
                    t0 = time.monotonic()
                    data = self._take(self._stream, end - start, index)
                    reading.record_transfer(self._ttfb, len(data), time.monotonic() - t0)
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

    def _take(self, stream: ReadStream, n: int, index: int | None = None) -> bytes | memoryview:
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
                piece = stream.read(_PIECE)
                if not piece:
                    raise Unavailable(f"stream ended {n - len(self._buf)} bytes early")
                self._buf += piece
            del self._buf[:n]
            return b""
        part = Partial(n, self.path.pool)
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
                got = _read_into(stream, view[pos:min(n, pos + _PIECE)])
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
