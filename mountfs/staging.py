"""Staging files: where writes land before close/fsync publishes them.

One file per inode, ``cache_dir/staging/<inode>``, holding the whole current
content while the file is being modified. Never evicted: a staging file
disappears only after its bytes are on ``write_quorum`` stores (or the inode
is gone). ``inodes.staged = 1`` in the catalog marks a staging file whose
bytes are not yet published, so a remount after a crash uploads it.

While a file is written sequentially from offset 0 its SHA-256 is computed
incrementally, so close does not have to read a large file twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import trio


@dataclass(eq=False)
class OpenFile:
    """In-memory state of an inode that is open or has unpublished bytes."""

    ino: int
    #: staging file descriptor, None while the file is only read
    fd: int | None = None
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    #: bytes in staging differ from the published version
    dirty: bool = False
    #: catalog already says staged = 1
    marked: bool = False
    opens: int = 0
    #: SHA-256 of bytes [0, hashed) when the file has been written in order
    hasher: hashlib._Hash | None = None
    hashed: int = 0
    #: SHA-256 its last publish recorded: the staging file's bytes while not dirty
    published: str | None = None
    lock: trio.Lock = field(default_factory=trio.Lock)

    def note_write(self, off: int, data: bytes | memoryview) -> None:
        """Keep the running hash valid, or drop it when the write is out of order."""
        if self.hasher is None:
            return
        if off == self.hashed:
            self.hasher.update(data)
            self.hashed += len(data)
        elif off < self.hashed or off > self.hashed:
            self.hasher = None

    def note_truncate(self, size: int) -> None:
        if self.hasher is not None and size < self.hashed:
            self.hasher = None

    def sha256_if_known(self) -> str | None:
        if self.hasher is not None and self.hashed == self.size:
            return self.hasher.hexdigest()
        return None


class StagingArea:
    """The staging directory and the files in it, and the bytes they hold on disk.

    ``held`` (allocated blocks, so a sparse file counts its data) is what the
    staging files take from ``[cache] size`` (mountfs/space.py); callers
    :meth:`note` a file after changing it.
    """

    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir) / "staging"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._held: dict[int, int] = {}
        self.held = 0

    def note(self, ino: int, fd: int) -> None:
        """Count what ``ino``'s staging file (open as ``fd``) takes on disk now."""
        now = os.fstat(fd).st_blocks * 512
        self.held += now - self._held.get(ino, 0)
        self._held[ino] = now

    @property
    def files(self) -> int:
        """Staging files counted in ``held``: written files not yet uploaded or handed over."""
        return len(self._held)

    def forget(self, ino: int) -> None:
        """``ino``'s staging file is gone (deleted, or handed to the block cache)."""
        self.held -= self._held.pop(ino, 0)

    def path(self, ino: int) -> Path:
        return self.dir / str(ino)

    def exists(self, ino: int) -> bool:
        return self.path(ino).exists()

    def open(self, ino: int, *, truncate: bool = False) -> int:
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        return os.open(self.path(ino), flags, 0o600)

    def sync(self, ino: int, fd: int | None = None) -> None:
        """Make ``ino``'s staging file durable: its bytes (through ``fd`` when open) and its
        name in the directory, so a crash or power loss after this keeps both."""
        if fd is not None:
            os.fsync(fd)
        else:
            own = os.open(self.path(ino), os.O_RDONLY)
            try:
                os.fsync(own)
            finally:
                os.close(own)
        d = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(d)
        finally:
            os.close(d)

    def remove(self, ino: int) -> None:
        self.forget(ino)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(ino))

    def inodes(self) -> list[int]:
        """Inodes that have a staging file (remount recovery)."""
        out = []
        for name in os.listdir(self.dir):
            if name.isdigit():
                out.append(int(name))
        return out


def held_on_disk(cache_dir: Path | str) -> int:
    """Bytes the staging files and the written files waiting for the cache take on disk.

    For ``omnifs cache stats``, from outside the mount: they count towards
    ``[cache] size`` like the blocks (mountfs/space.py).
    """
    total = 0
    for sub in ("staging", "written"):
        try:
            with os.scandir(Path(cache_dir) / sub) as it:
                for e in it:
                    try:
                        total += e.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def hash_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
