"""Written files go into the block cache after their last close.

Why: the bytes of a file written through the mount sit in its staging file
when its last close has published them. Deleting them there and downloading
them again later is waste twice over: the next read of the file (builds,
``git``, a copy back out) and the daemon's copies of it to its other stores
would each fetch it from a store (a round trip and, on real clouds, an
egress charge). So the staging file is kept as cache blocks instead
(omnifs/cached_content.py), keyed by its SHA-256 like any read block.

How: at the last close (:meth:`Kept.take`), the staging file is renamed into
``<cache dir>/written/`` — from then on nothing writes it — and queued; one
background task (:meth:`Kept.run`) hashes it, puts its blocks and deletes
it. A file whose bytes do not hash to the version the catalog recorded is
dropped, never cached under that hash.

Bounds: a file larger than half the cache is not kept (it would push out
most of what is cached; a read of it still caches it); at most
``max_pending`` bytes wait at once (beyond that a file is simply deleted as
before). Files waiting here count towards ``[cache] size`` (``held``, their
bytes on disk), and when a write needs their room they are deleted at once
(:meth:`Kept.drop_queued`). Until its blocks are in the cache, a queued
file is the source of the file's bytes when it is read (:meth:`Kept.lend`,
mountfs/reader.py: ``cp big /mnt/x && sha256sum /mnt/x`` costs no download)
and when it is opened to change again (:meth:`Kept.open_queued`): not a
store, which may hold another writer's bytes by then. Readers' descriptors
of a file are closed when it leaves the queue, so none holds its disk space
past then. Unmount finishes the queue for at most
``SHUTDOWN_BUDGET`` seconds; what is left then, and anything a crash left in
``written/``, is deleted: it is only ever a cache.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from pathlib import Path

import trio

from omnifs.blockcache import BlockCache
from omnifs.cached_content import keep_file

from .blocks import LocalCopy

log = logging.getLogger("omnifs.mount")

#: seconds an unmount may spend caching files still queued
SHUTDOWN_BUDGET = 10.0


class Kept:
    def __init__(self, cache: BlockCache | None, directory: Path):
        self.cache = cache
        #: beside ``staging/`` on the same file system (files are renamed in)
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(self.dir):  # left by a crash: only ever a cache
            with contextlib.suppress(OSError):
                os.unlink(self.dir / name)
        self.max_file = cache.limit // 2 if cache is not None else 0
        self.max_pending = max(self.max_file, 256 * 1024**2)
        self.pending_bytes = 0
        #: bytes the queued files take on disk (a sparse file less than its size)
        self.held = 0
        self._queue: collections.deque[tuple[Path, str, int, int]] = collections.deque()
        #: the entry being cached now (taken off the queue, its file not yet deleted)
        self._keeping: tuple[Path, str, int, int] | None = None
        self._more = trio.Event()
        self._seq = 0
        #: queued file -> the copies of it lent to readers (closed when it leaves the queue)
        self._lent: dict[Path, list[LocalCopy]] = {}

    def take(self, staging_file: Path, content_id: str | None, size: int) -> bool:
        """Queue ``staging_file`` (bytes of ``content_id``) for the cache; False: not taken.

        A file not taken is still the caller's to delete.
        """
        if (self.cache is None or not content_id or size <= 0 or size > self.max_file
                or self.pending_bytes + size > self.max_pending):
            return False
        self._seq += 1
        dest = self.dir / f"{staging_file.name}.{self._seq}"
        try:
            os.rename(staging_file, dest)
            held = os.stat(dest).st_blocks * 512
        except OSError:
            return False
        self._queue.append((dest, content_id, size, held))
        self.pending_bytes += size
        self.held += held
        self._more.set()
        return True

    def open_queued(self, content_id: str | None) -> int | None:
        """A read-only descriptor of a file waiting here with the bytes of ``content_id``,
        or None (then its blocks are in the cache, or it was never kept)."""
        found = self._open(content_id)
        return None if found is None else found[1]

    def lend(self, content_id: str | None) -> LocalCopy | None:
        """As :meth:`open_queued`, for a reader: closed when the file leaves the queue
        (reads then go to the cache, or to a store if it was dropped), or by the reader."""
        found = self._open(content_id)
        if found is None:
            return None
        copy = LocalCopy(found[1])
        self._lent.setdefault(found[0], []).append(copy)
        return copy

    def _open(self, content_id: str | None) -> tuple[Path, int] | None:
        if not content_id:
            return None
        waiting = [*self._queue, *([self._keeping] if self._keeping else [])]
        for path, cid, _, _ in waiting:
            if cid == content_id:
                with contextlib.suppress(OSError):  # cached and deleted meanwhile
                    return path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return None

    def _left(self, path: Path) -> None:
        """``path`` left the queue: the copies readers hold are closed."""
        for copy in self._lent.pop(path, ()):
            copy.close()

    async def run(self) -> None:
        """Cache queued files one at a time, in a worker thread, for as long as the mount runs."""
        while True:
            await self._more.wait()
            self._more = trio.Event()
            while self._queue:
                await self._keep_one()

    async def finish(self, budget: float = SHUTDOWN_BUDGET) -> None:
        """At unmount: cache what is queued within ``budget`` seconds, delete the rest."""
        deadline = time.monotonic() + budget
        while self._queue and time.monotonic() < deadline:
            await self._keep_one()
        self.drop_queued()

    def drop_queued(self) -> int:
        """Delete the files still waiting (their room is needed, or the mount ends); bytes freed."""
        freed = 0
        while self._queue:
            path, _, size, held = self._queue.popleft()
            self.pending_bytes -= size
            self.held -= held
            freed += held
            with contextlib.suppress(OSError):
                os.unlink(path)
            self._left(path)
        return freed

    async def _keep_one(self) -> None:
        entry = self._keeping = self._queue.popleft()
        path, content_id, size, held = entry
        try:
            await trio.to_thread.run_sync(self._keep, path, content_id, size)
        finally:
            self._keeping = None
            self.pending_bytes -= size
            self.held -= held
            self._left(path)

    def _keep(self, path: Path, content_id: str, size: int) -> None:
        assert self.cache is not None  # take() queues nothing without a cache
        try:
            if keep_file(self.cache, path, content_id, size) < 0:
                log.info("written file %s no longer holds version %s: not cached", path.name,
                         content_id[:12])
        except Exception as e:  # noqa: BLE001 - a full or failing cache disk, a busy index:
            # the file just is not cached; this background task must never end the mount
            log.warning("could not keep written file %s in the cache: %s", path.name, e)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
