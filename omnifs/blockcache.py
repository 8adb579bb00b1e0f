"""The bounded local disk cache of file blocks, keyed by content.

Why keyed by ``(content id, block index)``: the content id is the file's
SHA-256 (the catalog records it for every version), so an entry can never be
stale — a new version is a new key — and two files with identical content
share their blocks. Old versions' blocks simply age out under LRU.

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

Why the read path maps blocks (``get(..., mapped=True)``) instead: a
``pread`` copies each block into fresh anonymous memory, which the kernel
must fault in and zero page by page (the largest single cost of a warm read
here, above the copy itself); a read-only map of the value file serves the
FUSE replies straight from the page cache the disk read filled. Caveat: a
map is only as stable as its file. diskcache never rewrites a value file in
place (a new value is a new file; eviction unlinks, and an unlinked file
stays mapped), so only someone truncating files inside the cache directory
under a running mount could make a mapped read fault. The size is checked
against the tag before mapping and the CRC once after, like a ``pread``. CRC-32 catches truncation and accidental damage; it is not a
defence against someone forging cache files, which needs write access to the
cache directory anyway. A bad entry is deleted, counted as ``corrupt`` and
reported as a miss. Entries written by older versions (a 16-byte header of
magic, length and CRC-32 before the block, no tag) are still read.

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

Counters (hits, misses, evictions, corrupt, stores) are kept in memory and
flushed to a small separate diskcache (no eviction) at most once a second
and on ``close``/``stats``, so ``omnifs cache stats`` in another process
sees them and they survive remounts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import diskcache

from omnifs.providers.diskspace import is_disk_full, no_space, room
from omnifs.providers.sparse import data_runs

from . import crc32c

log = logging.getLogger("omnifs.cache")

_MAGIC = b"OFB1"
_HEADER = struct.Struct(">4sQI")  # magic, block length, crc32
_COUNTERS = ("hits", "misses", "evictions", "corrupt", "stores")
_FLUSH_EVERY = 1.0
_DEFAULT_BLOCK = 4 * 1024**2
#: tag bit of entries checked with CRC-32C (omnifs/crc32c.py, ~20 GB/s here) rather than
#: zlib's CRC-32 (~3.5 GB/s, a quarter of a warm read's time and of a cold read's cache write)
_CRC32C = 1 << 62
#: reads whose LRU access time may wait to be written together
_TOUCH_BATCH = 32
#: SQLite's write-ahead log is part of what the cache uses on disk but not of
#: diskcache's ``volume()``: we cap it (checkpoint every 256 pages, truncate
#: to 1 MiB) and keep that much room free for it
_WAL_PAGES = 256
_SQLITE_SLACK = 1024**2 + 64 * 1024


@dataclass
class CacheStats:
    directory: str
    limit: int
    size: int
    entries: int
    block_size: int
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    corrupt: int = 0
    stores: int = 0

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hit_ratio"] = self.hit_ratio
        return d


def encode_block(data: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, len(data), zlib.crc32(data)) + data


def decode_block(raw: bytes) -> bytes | None:
    """The block inside ``raw``, or None when the entry is damaged in any way."""
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < _HEADER.size:
        return None
    magic, length, crc = _HEADER.unpack_from(raw)
    if magic != _MAGIC or len(raw) - _HEADER.size != length:
        return None
    data = memoryview(raw)[_HEADER.size:]
    if zlib.crc32(data) != crc:
        return None
    return bytes(data) if isinstance(raw, bytearray) else raw[_HEADER.size:]


class _Chunks:
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
    with O_DIRECT (see :class:`_BlockDisk`).
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


class _BlockDisk(diskcache.Disk):
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
        if not (read and isinstance(value, _Chunks)):
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
                        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                if done < end:
                    if direct:  # an unaligned tail: the last thing written, without O_DIRECT
                        tail = done, end
                        break
                    _pwrite_all(fd, view, done, end)
            if tail is not None:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
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
            try:
                os.makedirs(full_dir, exist_ok=True)
            except OSError:
                pass
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


def _pwrite_all(fd: int, view: memoryview, start: int, end: int) -> None:
    while start < end:
        start += os.pwrite(fd, view[start:end], start)


#: what ``BlockCache._read`` answers for an entry that fails its check
_DAMAGED = object()


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
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except (OSError, AttributeError):
        pass
    return mmap.mmap(fd, length, prot=mmap.PROT_READ)


def _read_file(f, length: int | None) -> bytes:
    """All of an open value file with one ``pread`` (a loop only if the kernel reads short)."""
    fd = f.fileno()
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except (OSError, AttributeError):
        pass
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


def _tag(data) -> int:
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
        target = self._hard - (block_size + _HEADER.size)
        if target < size_limit // 2:
            target = size_limit // 2
            self._hard = max(self._hard, target)
        self._cache = diskcache.Cache(
            str(self.directory / "blocks"),
            disk=_BlockDisk,
            size_limit=target,
            eviction_policy="least-recently-used",
            cull_limit=1,
            statistics=False,
            sqlite_wal_autocheckpoint=_WAL_PAGES,
            sqlite_journal_size_limit=_SQLITE_SLACK,
        )
        self._counters_store = diskcache.Cache(str(self.directory / "stats"), eviction_policy="none")
        self._pending = dict.fromkeys(_COUNTERS, 0)
        self._touched: dict[int, float] = {}  # rowid -> access time not yet written (LRU)
        self._lock = threading.Lock()  # counters, touches
        self._write_lock = threading.Lock()  # set + cull + eviction accounting
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None
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
        file when the entry has one (see the module docstring), for callers
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
                self._count("misses")
            return None
        if data is _DAMAGED:
            log.warning("cache entry %s is corrupt; dropped and refetched", key)
            self._cache.delete(key, retry=True)
            self._count("corrupt")
            if count:
                self._count("misses")
            return None
        if count:
            self._count("hits")
        return data

    def _read(self, key: str, mapped: bool = False) -> bytes | mmap.mmap | object | None:
        """The checked block, None when absent, ``_DAMAGED`` when it fails its check.

        The whole value file is read with one ``pread`` after WILLNEED (the
        kernel then issues the entire file at once instead of growing its
        read-ahead from small requests: ~1.5x faster cold here), or mapped.
        """
        found = self._lookup(key)
        if found is None:
            return None
        value, tag = found
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
            return _DAMAGED if data is None else data
        length, crc = _tag_length(tag), tag & 0xFFFFFFFF
        if len(raw) != length or _checksum(raw, tag & _CRC32C) != crc:
            return _DAMAGED
        return raw

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
                " AND (expire_time IS NULL OR expire_time > ?)", (db_key, raw, time.time())).fetchall()
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
                    self._cache._sql("UPDATE Cache SET access_time = ? WHERE rowid = ?", (at, rowid))
        except Exception as e:  # noqa: BLE001 - an LRU hint; the cache stays correct without it
            log.debug("cannot record cache access times: %s", e)

    def prefetch(self, content_id: str, index: int) -> bool:
        """Ask the kernel to start reading a cached block from disk; False when not cached.

        Read-ahead over cached blocks: the disk works on the next blocks while
        the reader consumes this one (a warm sequential read would otherwise
        wait for each 4 MiB read in turn).
        """
        try:
            handle = self._cache.get(self.key(content_id, index), default=None, read=True, retry=True)
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
        tag = _tag(data)
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
                self._cache.set(key, _Chunks(data), read=True, tag=tag, retry=True)
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
            self._count("evictions", evicted)
        self._count("stores")
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
            self._count("evictions", evicted)

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
        self._count(name, n)

    def _count(self, name: str, n: int = 1) -> None:
        # never written here: the mount counts hits on its event-loop thread
        # (reads served from memory), which must not wait for SQLite; a timer
        # thread writes them within a second
        with self._lock:
            self._pending[name] += n
            timer = None
            if self._timer is None:
                timer = self._timer = threading.Timer(_FLUSH_EVERY, self._timed_flush)
                timer.daemon = True
        if timer is not None:
            timer.start()

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception as e:  # noqa: BLE001 - a closed cache at unmount; counters are best effort
            log.debug("counter flush failed: %s", e)

    def flush(self) -> None:
        """Persist the counters (and LRU access times) gathered since the last flush."""
        self._flush_touches()
        with self._lock:
            pending, self._pending = self._pending, dict.fromkeys(_COUNTERS, 0)
            self._last_flush = time.monotonic()
        for name, n in pending.items():
            if n:
                self._counters_store.incr(name, n, retry=True)

    def stats(self) -> CacheStats:
        try:
            self.flush()
        except Exception as e:  # a full disk: the counters wait in memory; the sizes still count
            if not is_disk_full(e):
                raise
        counts = {name: int(self._counters_store.get(name, 0, retry=True)) for name in _COUNTERS}
        return CacheStats(directory=str(self.directory), limit=self.limit, size=self.volume(),
                          entries=len(self._cache), block_size=self.block_size, **counts)

    def clear(self, reset_counters: bool = True) -> int:
        """Drop every block (and the counters unless told otherwise); returns entries removed."""
        with self._write_lock:
            removed = self._cache.clear(retry=True)
        if reset_counters:
            with self._lock:
                self._pending = dict.fromkeys(_COUNTERS, 0)
            self._counters_store.clear(retry=True)
        return removed

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()
        self._cache.close()
        self._counters_store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
