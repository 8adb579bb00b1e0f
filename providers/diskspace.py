"""Free space on the local disks omnifs writes: a reserve it leaves alone, a spare file for deletes.

Why a reserve: the mount's staging files, the block cache and ``file://``
stores all fill the same kind of disk, often the host's own. Like JuiceFS's
``--free-space-ratio``, omnifs stops writing data (ENOSPC to a writer, an
eviction in the cache, a refused object in a ``file://`` store) once the free
space of a disk would drop below ``ratio`` of its size, so the host, the
catalog and the user's own programs still have room. ``[cache]
free_space_ratio`` in the config (default 10 %) sets it for the cache's disk
and every ``file://`` store's; the catalog, usually on the same disk, may
write into it.

Why a spare file: a disk can still fill up behind omnifs's back (another
program, or ``free_space_ratio = 0``). Then SQLite cannot record even a
delete ("database or disk is full"), and the user could not free space
through the mount or clear the cache. A :class:`SpareFile` holds a few MiB
allocated beside the catalog (and the cache, when that is another disk)
while there is room, and gives them back just before a delete or a cache
command would need them, when the disk is that full.

Lives in ``providers`` because the ``file://`` store is its lowest user; the
mount, the block cache and the CLI import it from here.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os

log = logging.getLogger("omnifs.disk")

DEFAULT_FREE_SPACE_RATIO = 0.10
#: what a spare file holds: room for the catalog (or the cache index) to record deletes
SPARE_BYTES = 8 * 1024 * 1024


def room(path: str | os.PathLike, ratio: float) -> int:
    """Bytes that may still be written on ``path``'s disk before its free space is under ``ratio``.

    Negative when the disk is already inside the reserve. Free space is what
    an unprivileged user may use (``f_bavail``), the stricter measure.
    """
    v = os.statvfs(path)
    return v.f_bavail * v.f_frsize - int(ratio * v.f_blocks * v.f_frsize)


def free_bytes(path: str | os.PathLike) -> int:
    v = os.statvfs(path)
    return v.f_bavail * v.f_frsize


def no_space(path: str | os.PathLike, ratio: float) -> OSError:
    """The error a write that would go into the reserve gets (ENOSPC, one line)."""
    pct = f" (keeping {ratio:.0%} of the disk free)" if ratio > 0 else ""
    return OSError(errno.ENOSPC, f"no space left on the disk of {path}{pct}")


def check_room(path: str | os.PathLike, ratio: float, nbytes: int) -> None:
    """Raise ENOSPC when writing ``nbytes`` more on ``path``'s disk would go into the reserve."""
    if room(path, ratio) < nbytes:
        raise no_space(path, ratio)


def same_disk(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, or SQLite's "database or disk is full" (SQLITE_FULL)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    import sqlite3

    return (isinstance(exc, sqlite3.OperationalError)
            and (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                 or "database or disk is full" in str(exc)))


def spare_files(catalog_path: str | os.PathLike, cache_dir: str | os.PathLike) -> list[SpareFile]:
    """The spare files of a config: beside the catalog, and in the cache when on another disk.

    The mount keeps them; the CLI's cache commands and the daemon release them too.
    """
    catalog_path = os.fspath(catalog_path)
    spares = [SpareFile(catalog_path + ".spare")]
    if not same_disk(os.path.dirname(catalog_path) or ".", cache_dir):
        spares.append(SpareFile(os.path.join(os.fspath(cache_dir), "spare")))
    return spares


class SpareFile:
    """A few MiB kept allocated at ``path`` while its disk has room; released when it is full."""

    def __init__(self, path: str | os.PathLike, size: int = SPARE_BYTES):
        self.path = os.fspath(path)
        self.size = size

    def ensure(self) -> bool:
        """Allocate the spare file if it is missing and the disk has room for it twice over."""
        try:
            if os.path.getsize(self.path) >= self.size:
                return True
        except OSError:
            pass
        try:
            if free_bytes(os.path.dirname(self.path) or ".") < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as e:
            log.debug("spare file %s not made: %s", self.path, e)
            self._drop()
            return False
        return True

    def release_if_low(self) -> bool:
        """Give the spare room back when the disk has less than it free; True if released."""
        try:
            if not os.path.exists(self.path) or free_bytes(os.path.dirname(self.path) or ".") \
                    >= self.size:
                return False
        except OSError:
            return False
        self._drop()
        log.warning("the disk of %s is full: released %d MiB kept for deletes; free some space",
                    self.path, self.size >> 20)
        return True

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
