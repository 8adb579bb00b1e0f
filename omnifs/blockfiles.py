"""A cached block on disk: its value file, its tag, and reading it back checked.

One entry of the block cache (:mod:`omnifs.blockcache`) is one diskcache
row whose value file holds the bare block.

Why a checksum in every entry: a cache file on local disk can be truncated
by a crash or damaged by the disk; a damaged block must be refetched, never
served. The block's length and checksum live in the entry's diskcache *tag*
(``length << 32 | crc``), so the value file holds the bare block: a warm read
is one ``os.pread`` of the whole file straight into the bytes object that is
served (no header to strip, no copy), checked once as it comes off the disk
(CRC-32C in hardware, ~20 GB/s here, without the GIL; tag bit 62 says so.
Entries without it, from earlier versions or a machine without the library,
carry zlib's CRC-32 and are checked with it). The callers keep the
checked block in memory and serve many FUSE reads from it, never re-checking
per request.

Why the read path maps blocks (``read_entry(..., mapped=True)``) instead: a
``pread`` copies each block into fresh anonymous memory, which the kernel
must fault in and zero page by page (the largest single cost of a warm read
here, above the copy itself); a read-only map of the value file serves the
FUSE replies straight from the page cache the disk read filled. Caveat: a
map is only as stable as its file. diskcache never rewrites a value file in
place (a new value is a new file; eviction unlinks, and an unlinked file
stays mapped), so only someone truncating files inside the cache directory
under a running mount could make a mapped read fault. The size is checked
against the tag before mapping and the CRC once after, like a ``pread``.
CRC-32 catches truncation and accidental damage; it is not a defence
against someone forging cache files, which needs write access to the cache
directory anyway. Entries written by older versions (a 16-byte header of
magic, length and CRC-32 before the block, no tag) are still read.

Why value files are written with O_DIRECT from page-aligned buffers
(:func:`aligned_buffer`, :class:`BlockDisk`): see :class:`BlockDisk`. Their
zero pages stay holes, so a block of a sparse file costs its data on disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import fcntl
import mmap
import os
import struct
import zlib
from typing import Literal

import diskcache

from omnifs.providers.sparse import data_runs

from . import crc32c

_MAGIC = b"OFB1"
#: the header of entries written by older versions: magic, block length, crc32
HEADER = struct.Struct(">4sQI")
#: tag bit of entries checked with CRC-32C (omnifs/crc32c.py, ~20 GB/s here) rather than
#: zlib's CRC-32 (~3.5 GB/s, a quarter of a warm read's time and of a cold read's cache write)
_CRC32C = 1 << 62


def encode_block(data: bytes) -> bytes:
    return HEADER.pack(_MAGIC, len(data), zlib.crc32(data)) + data


def decode_block(raw: bytes | mmap.mmap) -> bytes | None:
    """The block inside ``raw``, or None when the entry is damaged in any way."""
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < HEADER.size:
        return None
    magic, length, crc = HEADER.unpack_from(raw)
    if magic != _MAGIC or len(raw) - HEADER.size != length:
        return None
    data = memoryview(raw)[HEADER.size:]
    if zlib.crc32(data) != crc:
        return None
    return bytes(data) if isinstance(raw, bytearray) else raw[HEADER.size:]


class Chunks:
    """A block as the file-like object diskcache's ``set(read=True)`` copies from (no copy here)."""

    def __init__(self, data: bytes | bytearray | memoryview):
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def read(self, n: int = -1) -> memoryview:
        end = len(self._view) if n < 0 else self._pos + n
        piece = self._view[self._pos:end]
        self._pos += len(piece)
        return piece


#: O_DIRECT wants the buffer, the length and the file offset aligned; a page is always enough
_ALIGN = 4096


def aligned_buffer(size: int) -> memoryview:
    """A writable, zeroed, page-aligned buffer of ``size`` bytes (a view into a bytearray).

    Blocks a stream fills are allocated here so the cache can write them
    with O_DIRECT (see :class:`BlockDisk`).
    """
    raw = bytearray(size + _ALIGN)
    address = ctypes.addressof(ctypes.c_char.from_buffer(raw))
    start = -address % _ALIGN
    return memoryview(raw)[start:start + size]


def _is_aligned(view: memoryview) -> bool:
    try:
        first = ctypes.c_char.from_buffer(view)  # writable buffers only
    except (TypeError, ValueError):
        return False
    return ctypes.addressof(first) % _ALIGN == 0


class BlockDisk(diskcache.Disk):
    """diskcache's Disk, but a block's value file is written with O_DIRECT when it can be.

    Why: a buffered write copies the block into page cache pages the kernel
    must first allocate (and, on this VM, have the host back): measured
    here at 0.35-3 GB/s and up to 0.7 s of CPU per 256 MiB, against
    ~1.5 GB/s and ~0.03 s with O_DIRECT straight from the block's buffer.
    On a cold read that CPU is taken from the stream and the FUSE replies.
    Blocks not in an aligned buffer, the unaligned tail of a file's last
    block, and filesystems without O_DIRECT (tmpfs) are written buffered.
    """

    #: set once O_DIRECT was refused by this cache's filesystem
    direct_refused = False

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not (read and isinstance(value, Chunks)):
            return super().store(value, read, key=key)
        filename, full_path = self.filename(key, value)
        view = value.read()
        # the size diskcache counts towards the limit is what the block takes on disk
        used = self._write_view(full_path, view)
        return used, diskcache.core.MODE_BINARY, filename, None

    def _write_view(self, full_path: str, view: memoryview) -> int:
        """Write a block's value file, its zero pages left as a hole; the bytes it allocated.

        A block of a sparse file (mostly zeros) then costs its data on disk,
        and an all-zero block nothing but its inode (providers/sparse.py).
        """
        direct = (not self.direct_refused and len(view) >= _ALIGN and hasattr(os, "O_DIRECT")
                  and _is_aligned(view))
        fd = self._create(full_path, direct)
        ok = False
        used = 0
        try:
            tail = None
            for start, end in data_runs(view):
                used += -(-(end - start) // _ALIGN) * _ALIGN
                done = start
                if direct:
                    head = end - end % _ALIGN  # runs start on a page; only the last may end off one
                    try:
                        while done < head:
                            done += os.pwrite(fd, view[done:head], done)
                    except OSError as e:
                        if e.errno != errno.EINVAL:
                            raise
                        self.direct_refused, direct = True, False
                        done -= done % _ALIGN
                        _buffered(fd)
                if done < end:
                    if direct:  # an unaligned tail: the last thing written, without O_DIRECT
                        tail = done, end
                        break
                    _pwrite_all(fd, view, done, end)
            if tail is not None:
                _buffered(fd)
                _pwrite_all(fd, view, *tail)
            if os.fstat(fd).st_size != len(view):  # ends in zero pages: they stay a hole
                os.ftruncate(fd, len(view))
            ok = True
        finally:
            os.close(fd)
            if not ok:  # no row will point at it: do not leave it behind
                with contextlib.suppress(OSError):
                    os.remove(full_path)
        return used

    def _create(self, full_path: str, direct: bool) -> int:
        """A new value file (its directory made if missing, as diskcache does; 10 tries)."""
        full_dir = os.path.dirname(full_path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for count in range(1, 11):
            with contextlib.suppress(OSError):
                os.makedirs(full_dir, exist_ok=True)
            try:
                if direct:
                    try:
                        return os.open(full_path, flags | os.O_DIRECT, 0o600)
                    except OSError as e:
                        if e.errno != errno.EINVAL:
                            raise
                        self.direct_refused = True
                return os.open(full_path, flags, 0o600)
            except FileNotFoundError:
                # another cache process removed the directory in between
                if count == 10:
                    raise
        raise AssertionError("unreachable")


def _buffered(fd: int) -> None:
    """Turn O_DIRECT off on ``fd``: what follows is written through the page cache."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)


def _pwrite_all(fd: int, view: memoryview, start: int, end: int) -> None:
    while start < end:
        start += os.pwrite(fd, view[start:end], start)


class Damaged(enum.Enum):
    """What :func:`read_entry` answers for an entry that fails its check (one value)."""

    DAMAGED = "damaged"


DAMAGED = Damaged.DAMAGED
#: a read entry: its checked block, None when absent, DAMAGED when it fails its check
Entry = bytes | mmap.mmap | Literal[Damaged.DAMAGED] | None


def _map_file(f, length: int) -> mmap.mmap | bytes:
    """A read-only map of an open value file of ``length`` bytes (b"" when its size differs).

    WILLNEED first: the kernel reads the whole file at once, and the
    checksum that follows faults the pages in as they arrive. A block with
    holes (zero pages, see providers/sparse.py) is read instead: on tmpfs a
    read fault in a hole allocates a page, and on a full tmpfs that is a
    SIGBUS that would end the mount (``pread`` of a hole allocates nothing).
    """
    fd = f.fileno()
    st = os.fstat(fd)
    if st.st_size != length or length == 0:
        return b""  # truncated or grown behind our back: fails the check, dropped
    if st.st_blocks * 512 < length:
        return _read_file(f, length)
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    return mmap.mmap(fd, length, prot=mmap.PROT_READ)


def _read_file(f, length: int | None) -> bytes:
    """All of an open value file with one ``pread`` (a loop only if the kernel reads short)."""
    fd = f.fileno()
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    if length is None:
        length = os.fstat(fd).st_size
    data = os.pread(fd, length + 1, 0)  # +1: a file grown behind our back fails the length check
    if len(data) >= length:
        return data
    parts = [data]
    got = len(data)
    while True:
        more = os.pread(fd, length + 1 - got, got)
        if not more:
            return b"".join(parts)
        parts.append(more)
        got += len(more)
        if got > length:
            return b"".join(parts)


def tag_of(data) -> int:
    """An entry's tag: its length and checksum, CRC-32C when the hardware one is there."""
    if crc32c.value is not None:
        return len(data) << 32 | _CRC32C | crc32c.value(data)
    return len(data) << 32 | zlib.crc32(data)


def _checksum(data, use_crc32c: int) -> int | None:
    """The checksum an entry's tag says it carries (None: CRC-32C but no library to check it)."""
    if not use_crc32c:
        return zlib.crc32(data)
    return crc32c.value(data) if crc32c.value is not None else None


def _tag_length(tag: int) -> int:
    return (tag & ~_CRC32C) >> 32


def read_entry(value: bytes | str, tag: int | None, mapped: bool = False) -> Entry:
    """An entry's checked block: ``value`` is its inline bytes or its value file's path.

    None when the value file is gone (evicted meanwhile: a plain miss),
    ``DAMAGED`` when the block fails its check. The whole value file is read
    with one ``pread`` after WILLNEED (the kernel then issues the entire file
    at once instead of growing its read-ahead from small requests: ~1.5x
    faster cold here), or mapped when ``mapped`` and the entry has a tag.
    """
    raw: bytes | mmap.mmap
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        try:
            f = open(value, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return None  # evicted between the lookup and the open: a plain miss
        try:
            if mapped and tag is not None:
                raw = _map_file(f, _tag_length(tag))
            else:
                raw = _read_file(f, None if tag is None else _tag_length(tag))
        finally:
            f.close()  # a map keeps its own reference to the file
    if tag is None:  # an entry with the header of older versions
        data = decode_block(raw)
        return DAMAGED if data is None else data
    length, crc = _tag_length(tag), tag & 0xFFFFFFFF
    if len(raw) != length or _checksum(raw, tag & _CRC32C) != crc:
        return DAMAGED
    return raw
