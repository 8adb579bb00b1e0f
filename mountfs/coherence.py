"""Several mounts of one namespace: what the others changed reaches this mount's caches.

Every namespace change any process makes is also a row of the catalog's
change log (omnifs/catalog/changes.py). :class:`Coherence` follows that log
on a catalog connection of its own, in worker threads (never on the event
loop), and for every change another process made:

1. moves the catalog's change count (``cat.changes.seen``): an open handle's
   cached inode (``ContentHandlers._read_inode``) is looked up again;
2. tells the kernel (``pyfuse3.invalidate_entry`` for a name that was
   created, removed or renamed; ``pyfuse3.invalidate_inode`` for attributes,
   and with the content's pages when the content changed). Both may block
   while a related request is in flight, so they run in a worker thread.

A change is seen within one poll of the feed (``POLL``, 50 ms on SQLite; on
PostgreSQL at its NOTIFY, and this mount's own NOTIFYs wake nothing) plus the
time to apply it: typically under 0.2 s. The kernel's own timeouts
(``ATTR_TIMEOUT``, 1 s) bound it even when the follower falls behind.

Close-to-open, like NFS: :meth:`Coherence.opened` runs in every ``open``.
When the catalog's size, mtime or ctime differs from what this mount last
told the kernel, the kernel's attributes are dropped before the open returns (the
pages go too, as ``keep_cache`` is off for a changed content hash). An open
of an inode another mount has replaced or removed answers ``ESTALE``: the
kernel then looks the path up again and opens what the name is now.

Two mounts closing the same file: each upload and commit runs under the
file's ``publish:INODE`` lease (``cat.leases``), taken once another live
mount is registered; the later close becomes the current version and the
earlier one stays in the history (``versions``), never mixed in a store.

Each mount renews a ``mount:ID`` lease (its heartbeat); recovery at start
leaves alone the orphans and staged files a live mount may still hold.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable

import pyfuse3
import trio

from omnifs.catalog import Catalog, CatalogError, Inode
from omnifs.catalog.changes import KEEP_SECONDS, Change, ChangeFeed

from .catalog_wait import catalog_writable

log = logging.getLogger("omnifs.mount")

#: seconds between two renewals of this mount's lease, and how long it outlives a dead mount
HEARTBEAT = 1.0
MOUNT_TTL = 10.0
#: a publish's lease: renewed every third of it while the upload runs
PUBLISH_TTL = 30.0
#: seconds between trims of the change log
TRIM_EVERY = 60.0
#: seconds one wait on the feed lasts (how long an unmount may wait for the follower)
WAIT = 0.25


class Coherence:
    """This mount's part in a shared namespace; see the module docstring."""

    def __init__(self, catalog: Catalog):
        self.cat = catalog
        self.origin = catalog.changes.origin
        #: the last change of the log this mount has applied
        self.applied = catalog.changes.last_seq()
        #: (size, mtime_ns, ctime_ns) of the attributes this mount last gave the kernel
        self.told: dict[int, tuple[int, int, int]] = {}
        #: changes by other processes applied, and the newest one's delay (for metrics)
        self.applied_count = 0
        self._next_beat = 0.0
        self._next_trim = time.monotonic() + TRIM_EVERY
        #: (monotonic time, newest seq then): where the log stood, for trimming by seq
        self._marks: collections.deque[tuple[float, int]] = collections.deque()
        #: where publish leases are renewed while their uploads run (:meth:`run`'s)
        self._nursery: trio.Nursery | None = None
        self._note = f"{socket.gethostname()} pid {os.getpid()}"

    @property
    def mount_key(self) -> str:
        return f"mount:{self.origin}"

    def register(self) -> int:
        """Take this mount's lease (before recovery); returns how many other mounts are live."""
        self.cat.leases.take(self.mount_key, self.origin, MOUNT_TTL, self._note)
        return self.peers()

    def peers(self) -> int:
        return sum(1 for lease in self.cat.leases.live("mount:") if lease.owner != self.origin)

    # -- following the log -------------------------------------------------------
    async def run(self) -> None:
        """Follow the change log until cancelled (the mount's nursery)."""
        # this mount's own changes come from its catalog connection: not followed
        feed = ChangeFeed(await trio.to_thread.run_sync(Catalog, self.cat.target),
                          lambda: getattr(self.cat.db, "backend_pid", 0))
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._follow(feed)
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._leave, feed)

    async def _follow(self, feed: ChangeFeed) -> None:
        while True:
            try:
                changes, gap = await trio.to_thread.run_sync(self._next, feed)
            except CatalogError as e:  # locked for long, full disk: the timeouts still hold
                log.warning("following the catalog's changes: %s; retrying", e)
                await trio.sleep(1.0)
                continue
            if not changes and not gap:
                continue
            # the handles' inodes first: a read between the two must not refill the
            # kernel's page cache from a cached old version
            self.cat.changes.seen += 1
            self.applied_count += len(changes)
            stale = list(self.told) if gap else []
            await trio.to_thread.run_sync(_invalidate, changes, stale)

    def _next(self, feed: ChangeFeed) -> tuple[list[Change], bool]:
        """(worker thread) The other processes' changes after the last applied, waiting up
        to WAIT seconds for one; the heartbeat and trimming ride along."""
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + HEARTBEAT
            feed.cat.leases.take(self.mount_key, self.origin, MOUNT_TTL, self._note)
        if now >= self._next_trim:
            self._next_trim = now + TRIM_EVERY
            self._marks.append((now, self.applied))
            while self._marks and self._marks[0][0] < now - KEEP_SECONDS:
                feed.cat.changes.trim(self._marks.popleft()[1])
            feed.cat.leases.prune()
        if not feed.wait(self.applied, WAIT):
            return [], False
        changes, self.applied, gap = feed.cat.changes.since(self.applied, self.origin)
        return changes, gap

    def _leave(self, feed: ChangeFeed) -> None:
        try:
            feed.cat.leases.release(self.mount_key, self.origin)
        finally:
            feed.close()

    # -- hooks of the handlers ----------------------------------------------------
    def told_kernel(self, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> None:
        self.told[ino] = (size, mtime_ns, ctime_ns)

    def forgotten(self, ino: int) -> None:
        self.told.pop(ino, None)

    def opened(self, cur: Inode) -> None:
        """Close-to-open: the kernel's attributes of ``cur`` go if they are not the catalog's
        (every change moves ctime; an open file's own changes may differ harmlessly).

        Safe inside the open handler: attributes only (no page is locked).
        """
        told = self.told.get(cur.id)
        if told is not None and told != (cur.size, cur.mtime_ns, cur.ctime_ns):
            del self.told[cur.id]
            _quiet(pyfuse3.invalidate_inode, cur.id, True)

    @contextlib.asynccontextmanager
    async def exclusive(self, ino: int) -> AsyncIterator[None]:
        """Hold ``ino``'s publish lease while the body uploads and commits a new version.

        Alone on the catalog (no other live mount) there is nobody to exclude.
        """
        if not self.peers():
            yield
            return
        key = f"publish:{ino}"
        await catalog_writable(self.cat)
        # mostly free: taken at once; while held, waiting reads (takes no write lock)
        while not self.cat.leases.take(key, self.origin, PUBLISH_TTL, self._note):
            while True:
                await trio.sleep(0.02)
                held = self.cat.leases.holder(key)
                if held is None or held.owner == self.origin:
                    break
            await catalog_writable(self.cat)
        # renewed from the follower's nursery: a nursery around the body would wrap the
        # body's errors (Unavailable, NoSpace) in an ExceptionGroup
        renewing = trio.CancelScope()
        if self._nursery is not None:
            self._nursery.start_soon(self._renew, key, renewing)
        try:
            yield
        finally:
            renewing.cancel()
            with trio.CancelScope(shield=True):
                await catalog_writable(self.cat)
                self.cat.leases.release(key, self.origin)

    async def _renew(self, key: str, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                await trio.sleep(PUBLISH_TTL / 3)
                await catalog_writable(self.cat)
                try:
                    self.cat.leases.take(key, self.origin, PUBLISH_TTL, self._note)
                except CatalogError as e:  # the next renewal tries again
                    log.warning("renewing %s: %s", key, e)


def _invalidate(changes: Iterable[Change], stale: Iterable[int]) -> None:
    """(worker thread) Drop what the kernel caches of ``changes``' names and inodes, and
    everything of the ``stale`` inodes (the log was trimmed past this mount)."""
    entries: dict[tuple[int, str], None] = {}
    inodes: dict[int, bool] = dict.fromkeys(stale, True)
    for c in changes:
        if c.parent is not None and c.name is not None:
            entries[(c.parent, c.name)] = None
        inodes[c.inode] = inodes.get(c.inode, False) or c.data
    for parent, name in entries:
        _quiet(pyfuse3.invalidate_entry, parent, os.fsencode(name))
    for ino, data in inodes.items():
        _quiet(pyfuse3.invalidate_inode, ino, not data)


def _quiet(call, *args) -> None:
    """A kernel that does not know the inode or name has nothing to drop (ENOENT)."""
    try:
        call(*args)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            log.info("cache invalidation %s%s: %s", call.__name__, args, e)
