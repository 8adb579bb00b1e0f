"""The mount's access counters: reads and writes counted in memory, flushed to the catalog.

What counts (per file, i.e. per inode; hard links share their counts):

- a **read** is one open handle that read: counted at its first read call
  that returned bytes, or at its open when the kernel may serve it from its
  own page cache (``keep_cache``: the mount then sees no read call at all, so
  such an open counts as a read even if nothing is read). Reads served from
  the mount's block cache count like any other: they are reads of the file,
  not requests to a store (those are the stores' own counters);
- **bytes read** are the bytes the mount returned to read calls, summed per
  call; bytes the kernel answered from its page cache are not seen;
- a **write** is one handle whose release follows a change of content (it
  wrote, created the file, or opened it with ``O_TRUNC``).

Only the mount counts. The daemon's workers, ``omnifs replicate`` and
``omnifs migrate`` read and write stored objects, not user files: that is
not access and is never counted.

Cost on the read path: one dict lookup and a few integer additions per FUSE
read, on the mount's event loop thread (the only thread that counts, so no
lock); no SQLite. Every ``interval`` seconds (``[cost] access_stats_interval``,
10 by default), at each UTC midnight and at unmount, the pending counts are
swapped out and written in one transaction by a worker thread on a catalog
connection of its own (:meth:`omnifs.catalog.access.AccessStats.record`), so
the event loop never waits on SQLite for them. A flush that fails (catalog
locked for longer than its busy timeout, disk full) keeps its counts for the
next one. Once per UTC day the flush also folds old day rows into month rows
(:meth:`~omnifs.catalog.access.AccessStats.fold`).

On a crash (kill -9, power loss) the counts of at most the last flush
interval are lost, plus those of flushes that failed since the last one that
succeeded; nothing else (a flush is one transaction: all of it or none).
A batch counts on the UTC day its interval began; a flush runs at each
midnight, so at most the moments between midnight and that flush count on
the day before.

``[cost] access_stats = false`` turns counting off (:class:`NoAccessLog`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import trio

from omnifs.catalog.access import Counts, day_of

if TYPE_CHECKING:
    from omnifs.catalog import Catalog
    from omnifs.config import Config

log = logging.getLogger("omnifs.mount")

#: seconds between flushes of the counts to the catalog (``[cost] access_stats_interval``)
FLUSH_INTERVAL = 10.0
_DAY = 86400.0


class Counted(Protocol):
    """What the counters need of a FUSE file handle (mountfs/handler_base.py's Handle)."""

    ino: int
    #: the handle's read was counted already
    read_counted: bool


class AccessLog:
    """Counts of reads and writes per inode, flushed to the catalog; see the module docstring.

    The counting methods are called from one thread only (the mount's event
    loop); :meth:`run` and :meth:`close` are trio tasks on that same loop.
    """

    enabled = True

    def __init__(self, catalog_path: str | Path, *, interval: float = FLUSH_INTERVAL,
                 clock: Callable[[], float] = time.time):
        self._path = catalog_path
        self.interval = interval
        self._clock = clock
        #: inode -> [reads, bytes_read, writes, last_read, last_write]
        self._pending: dict[int, list] = {}
        #: the UTC day the pending counts count on (the day their interval began)
        self._day = day_of(clock())
        #: the last day old rows were folded
        self._folded: int | None = None
        self._db: Catalog | None = None
        self._flushing = trio.Lock()
        #: flushes that wrote to the catalog (tests)
        self.flushes = 0
        #: since the mount started: files read (once per open), bytes read, files changed
        self.reads_total = 0
        self.read_bytes_total = 0
        self.writes_total = 0

    # -- counting (the hot path) -----------------------------------------------------
    def read(self, handle: Counted, nbytes: int) -> None:
        """A read call of ``handle`` returned ``nbytes`` bytes."""
        if not nbytes:
            return
        e = self._pending.get(handle.ino)
        if e is None:
            e = self._pending[handle.ino] = [0, 0, 0, None, None]
        if not handle.read_counted:
            handle.read_counted = True
            e[0] += 1
            self.reads_total += 1
        e[1] += nbytes
        self.read_bytes_total += nbytes
        e[3] = self._clock()

    def opened_cached(self, handle: Counted) -> None:
        """``handle`` was opened for reading with ``keep_cache``: the kernel may serve it
        from its page cache without one read call, so the open counts as its read."""
        if handle.read_counted:
            return
        handle.read_counted = True
        self.reads_total += 1
        e = self._pending.get(handle.ino)
        if e is None:
            e = self._pending[handle.ino] = [0, 0, 0, None, None]
        e[0] += 1
        e[3] = self._clock()

    def wrote(self, ino: int) -> None:
        """A handle of ``ino`` that changed its content was released."""
        e = self._pending.get(ino)
        if e is None:
            e = self._pending[ino] = [0, 0, 0, None, None]
        e[2] += 1
        self.writes_total += 1
        e[4] = self._clock()

    # -- flushing ----------------------------------------------------------------------
    def pending(self) -> int:
        """Files with counts not yet flushed."""
        return len(self._pending)

    def take(self) -> list[Counts]:
        """The pending counts as catalog rows; counting starts over (on today's day)."""
        batch, self._pending = self._pending, {}
        day, self._day = self._day, day_of(self._clock())
        return [(ino, day, r, b, w, lr, lw) for ino, (r, b, w, lr, lw) in batch.items()]

    def _restore(self, batch: list[Counts]) -> None:
        """Put a batch that could not be written back into the pending counts."""
        for ino, _day, reads, nbytes, writes, last_read, last_write in batch:
            e = self._pending.get(ino)
            if e is None:
                e = self._pending[ino] = [0, 0, 0, None, None]
            e[0] += reads
            e[1] += nbytes
            e[2] += writes
            e[3] = _newest(e[3], last_read)
            e[4] = _newest(e[4], last_write)

    def write(self, batch: list[Counts], today: int) -> None:
        """Write ``batch`` in one transaction, fold once a day; in a worker thread."""
        if self._db is None:
            from omnifs.catalog import Catalog

            self._db = Catalog(self._path)
        if batch:
            self._db.access.record(batch)
        if self._folded != today:
            while self._db.access.fold(today):  # a bounded transaction each
                pass
            self._folded = today

    async def flush(self) -> None:
        """Write what is pending (one transaction, in a worker thread)."""
        async with self._flushing:
            batch = self.take()
            if not batch and self._folded == self._day:
                return
            try:
                await trio.to_thread.run_sync(self.write, batch, self._day)
            except Exception as e:  # noqa: BLE001 - counting must never fail the mount
                log.warning("access statistics not written yet (kept for the next flush): %s",
                            e)
                self._restore(batch)
                return
            self.flushes += 1

    def _next_flush(self) -> float:
        return flush_delay(self._clock(), self.interval)

    async def run(self) -> None:
        """Flush every ``interval`` seconds and at each UTC midnight; in the mount's nursery."""
        while True:
            await trio.sleep(self._next_flush())
            await self.flush()

    async def close(self) -> None:
        """At unmount: the last flush, then the connection goes."""
        await self.flush()
        if self._db is not None:
            db, self._db = self._db, None
            await trio.to_thread.run_sync(db.close)


class NoAccessLog:
    """``[cost] access_stats = false``: nothing is counted."""

    enabled = False

    def read(self, handle: Counted, nbytes: int) -> None:
        pass

    def opened_cached(self, handle: Counted) -> None:
        pass

    def wrote(self, ino: int) -> None:
        pass

    def pending(self) -> int:
        return 0

    async def flush(self) -> None:
        pass

    async def run(self) -> None:
        pass

    async def close(self) -> None:
        pass


def access_log_for(config: Config, catalog_path: str | Path) -> AccessLog | NoAccessLog:
    """The mount's counters as ``config`` asks (``[cost] access_stats``)."""
    if not config.access_stats:
        return NoAccessLog()
    return AccessLog(catalog_path, interval=config.access_stats_interval)


def flush_delay(now: float, interval: float) -> float:
    """Seconds from ``now`` until the next flush of counts kept per UTC day: the
    interval, or the next UTC midnight if sooner (omnifs/usage_log.py flushes so too)."""
    return max(min(interval, _DAY - now % _DAY + 0.001), 0.0)


def _newest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
