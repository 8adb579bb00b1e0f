"""Copying bytes onto local disk without filling in the holes.

Why: a sparse file (a VM image, a database, a download preallocated at its
final size, anything written at a high offset) holds few bytes but reads back
as many zeros. Copied naively, every copy of it on local disk costs its whole
size: the staging file of a write, the block cache copy of a written file,
each ``file://`` store. Every copy omnifs makes onto local disk goes through
here, so a hole stays a hole:

* from a local file, only its data extents are read (``SEEK_DATA`` /
  ``SEEK_HOLE``; a filesystem without them reports one extent, the whole file);
* whatever the source, runs of zero pages are not written but skipped
  (like ``cp --sparse=always``), and the destination gets its size at the
  end with ``ftruncate``.

Caveat: skipping a range leaves whatever the destination held there, so a
:class:`SparseWriter` writes only into a new or truncated file (zeros, or a
hole, everywhere it does not write). Zero runs are detected per page
(``PAGE`` bytes, aligned to file offsets), the unit a filesystem can leave
unallocated.

Lives in ``providers`` because the ``file://`` store is its lowest user; the
mount's staging and the block cache import it from here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator

#: the granularity of holes: a filesystem allocates (and can leave out) whole pages
PAGE = 4096
#: bytes read or written per call when copying
CHUNK = 1 << 20
_ZERO_PAGE = bytes(PAGE)
#: what ``find`` looks for first: short enough to be cheap, long enough to be rare in data
_ZERO_PROBE = bytes(256)


def data_runs(data: bytes | bytearray | memoryview, base: int = 0) -> Iterator[tuple[int, int]]:
    """``(start, end)`` index ranges of ``data`` to write: all but its whole zero pages.

    ``base`` is the file offset of ``data[0]``: pages are aligned to file
    offsets, so a skipped page is one the filesystem can leave unallocated.
    """
    i = 0
    for z, e in _zero_runs(data, base):
        if z > i:
            yield i, z
        i = e
    if i < len(data):
        yield i, len(data)


def _zero_runs(data: bytes | bytearray | memoryview, base: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the runs of whole, aligned zero pages in ``data``, in order.

    bytes are searched with ``find`` (C speed over data without zeros); other
    buffers (the block cache's aligned blocks) are compared page by page,
    a page copied to bytes only when its first byte is zero: ~10 us per MiB of
    data, ~80 us per MiB of zeros here.
    """
    n = len(data)
    if isinstance(data, (bytes, bytearray)):
        i = 0
        while True:
            k = data.find(_ZERO_PROBE, i)
            if k < 0:
                return
            a = k + (-(base + k)) % PAGE
            if a + PAGE > n:
                return
            j = a
            while j + PAGE <= n and data[j:j + PAGE] == _ZERO_PAGE:
                j += PAGE
            if j > a:
                yield a, j
                i = j
            else:  # the zeros found at k end before a + PAGE: no aligned page among them
                i = a + 1
    view = memoryview(data).cast("B")
    a = (-base) % PAGE
    start = None
    while a + PAGE <= n:
        # memoryview == memoryview compares item by item (~2 ms per zero MiB): bytes are memcmp
        if view[a] == 0 and view[a:a + PAGE].tobytes() == _ZERO_PAGE:
            if start is None:
                start = a
        elif start is not None:
            yield start, a
            start = None
        a += PAGE
    if start is not None:
        yield start, a


def data_extents(fd: int, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, end)`` byte ranges of ``fd`` that may hold data; holes are left out.

    A filesystem without ``SEEK_DATA`` (or a non-regular file) gives the
    whole range as one extent, which is always correct, only not sparse.
    """
    if end is None:
        end = os.fstat(fd).st_size
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # nothing but a hole up to the end
                return
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ESPIPE):
                yield pos, end
                return
            raise
        if data >= end:
            return
        try:
            hole = os.lseek(fd, data, os.SEEK_HOLE)
        except OSError:
            hole = end
        hole = min(hole, end)
        yield data, hole
        pos = hole


class SparseWriter:
    """Writes a stream of bytes into ``fd`` from ``offset`` on, skipping zero pages.

    ``fd`` must be a new or truncated file (see the module docstring). Call
    :meth:`finish` at the end: it gives the file its size, which a trailing
    run of zeros would otherwise not have set. ``before_write(n)`` is called
    before ``n`` bytes are written (a free-space check may raise there).
    """

    def __init__(self, fd: int, offset: int = 0,
                 before_write: Callable[[int], None] | None = None):
        self.fd = fd
        self.pos = offset
        self.before_write = before_write

    def seek(self, offset: int) -> None:
        """Continue at ``offset`` (the bytes in between are a hole)."""
        self.pos = offset

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        for s, e in data_runs(data, self.pos):
            if self.before_write is not None:
                self.before_write(e - s)
            _pwrite_all(self.fd, view[s:e], self.pos + s)
        self.pos += len(view)
        return len(view)

    def finish(self, size: int | None = None) -> None:
        """Give the file its final size (``size``, or where the writing ended)."""
        size = self.pos if size is None else size
        if os.fstat(self.fd).st_size != size:
            os.ftruncate(self.fd, size)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _regular_fd(stream) -> int | None:
    """The descriptor of a stream that is a plain local file (extents can be asked), else None."""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def copy_fd(src_fd: int, dst_fd: int, start: int = 0, end: int | None = None,
            dst_offset: int = 0, before_write: Callable[[int], None] | None = None) -> int:
    """Copy ``[start, end)`` of a local file into a new one, holes and zero pages left out.

    The destination's size becomes ``dst_offset + end - start``; returns
    the number of bytes copied (the source's length), as a read would count them.
    """
    if end is None:
        end = os.fstat(src_fd).st_size
    out = SparseWriter(dst_fd, dst_offset, before_write)
    for s, e in data_extents(src_fd, start, end):
        out.seek(dst_offset + s - start)
        while out.pos < dst_offset + e - start:
            chunk = os.pread(src_fd, min(CHUNK, dst_offset + e - start - out.pos),
                             out.pos - dst_offset + start)
            if not chunk:  # the file shrank under us: it ends here
                out.finish()
                return out.pos - dst_offset
            out.write(chunk)
    out.finish(dst_offset + end - start)
    return end - start


def copy_stream(stream, dst_fd: int, size: int | None = None,
                before_write: Callable[[int], None] | None = None) -> int:
    """Copy ``size`` bytes (None: to the end) of ``stream`` into a new file; bytes copied.

    A stream that is a plain local file is read by extents from its
    current position (its holes are never read); any other is read in
    chunks whose zero pages are skipped.
    """
    src = _regular_fd(stream)
    if src is not None:
        start = stream.tell()
        length = os.fstat(src).st_size - start
        if size is not None:
            length = min(length, size)
        copied = copy_fd(src, dst_fd, start, start + length, before_write=before_write)
        stream.seek(start + copied)
        return copied
    out = SparseWriter(dst_fd, before_write=before_write)
    left = size
    while left is None or left > 0:
        chunk = stream.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            break
        out.write(chunk)
        if left is not None:
            left -= len(chunk)
    out.finish()
    return out.pos
