"""Access statistics: how often each file was read and written through the mount, per day.

The mount counts reads and writes in memory (omnifs/access_log.py) and hands
them here in batches, one transaction per flush (:meth:`AccessStats.record`).
The cost engine reads them back: per-file totals over a window of days
(:meth:`AccessStats.window`), the last read and write (:meth:`AccessStats.last`)
and every file's figures a page at a time (:meth:`AccessStats.iterate`),
which keeps memory flat over a catalog of millions of files.

Bounded in size: a file has at most one row per UTC day for the last
:data:`RETENTION_DAYS` days; older days are folded into one row per calendar
month (:meth:`AccessStats.fold`, the mount runs it once a day), and month rows
older than :data:`MONTHS_KEPT` months before the retention window are
dropped. So a file never holds more than :data:`MAX_ROWS_PER_FILE` day and
month rows, however long it is read. All-time totals and the last read and
write times live in one row per file (``access_files``) and are never folded.

Days are numbered from 1970-01-01 (UTC), :func:`day_of` of an epoch time. A
window ``[since, until)`` counts a month row when the month's first day is
in it. Rows of unlinked files go with their inode (ON DELETE CASCADE), and a
batch naming an inode that is already gone skips it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .backend import Connection

#: daily rows are kept this many days (today included), then folded into month rows
RETENTION_DAYS = 400
#: month rows are kept this many months before the retention window, then dropped
MONTHS_KEPT = 24
#: the most day and month rows one file can have (after :meth:`AccessStats.fold`): the
#: retention's days (today included), the months kept and the one the retention starts in
MAX_ROWS_PER_FILE = RETENTION_DAYS + MONTHS_KEPT + 1

_DAY = 86400
_EPOCH = datetime.date(1970, 1, 1)

#: one flush's counts of one file on one day:
#: (inode, day, reads, bytes_read, writes, last_read, last_write); a last time is None
#: when the batch saw no read (write)
Counts = tuple[int, int, int, int, int, float | None, float | None]


def day_of(t: float) -> int:
    """The UTC day of epoch time ``t``, in days since 1970-01-01."""
    return int(t // _DAY)


def _date(day: int) -> datetime.date:
    return _EPOCH + datetime.timedelta(days=day)


def _day(date: datetime.date) -> int:
    return (date - _EPOCH).days


def month_of(day: int) -> tuple[int, int]:
    """The first day of ``day``'s calendar month, and the month's length in days."""
    d = _date(day)
    first = d.replace(day=1)
    nxt = (first.replace(year=first.year + 1, month=1) if first.month == 12
           else first.replace(month=first.month + 1))
    return _day(first), (nxt - first).days


def _months_before(day: int, months: int) -> int:
    """The first day of the month ``months`` calendar months before ``day``'s."""
    d = _date(day)
    index = d.year * 12 + d.month - 1 - months
    return _day(datetime.date(index // 12, index % 12 + 1, 1))


@dataclass(slots=True, frozen=True)
class FileAccess:
    """A file's counts (all time, or over a window) and its last read and write."""

    inode: int
    reads: int
    bytes_read: int
    writes: int
    #: epoch seconds; None: never, since recording began
    last_read: float | None
    last_write: float | None


_UPSERT_DAY = (
    "INSERT INTO access_days (inode, day, days, reads, bytes_read, writes) "
    "SELECT ?, ?, 1, ?, ?, ? WHERE EXISTS (SELECT 1 FROM inodes WHERE id = ?) "
    "ON CONFLICT(inode, day) DO UPDATE SET reads = access_days.reads + excluded.reads, "
    "bytes_read = access_days.bytes_read + excluded.bytes_read, "
    "writes = access_days.writes + excluded.writes")
# the later of two times, either of which may be NULL (no scalar max() common to both engines)
_UPSERT_FILE = (
    "INSERT INTO access_files (inode, reads, bytes_read, writes, last_read, last_write) "
    "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM inodes WHERE id = ?) "
    "ON CONFLICT(inode) DO UPDATE SET reads = access_files.reads + excluded.reads, "
    "bytes_read = access_files.bytes_read + excluded.bytes_read, "
    "writes = access_files.writes + excluded.writes, "
    "last_read = CASE WHEN excluded.last_read > access_files.last_read "
    "THEN excluded.last_read ELSE COALESCE(access_files.last_read, excluded.last_read) END, "
    "last_write = CASE WHEN excluded.last_write > access_files.last_write "
    "THEN excluded.last_write ELSE COALESCE(access_files.last_write, excluded.last_write) END")
_FILE_COLS = "inode, reads, bytes_read, writes, last_read, last_write"


class AccessStats:
    """The access statistics part of the catalog, on its connection (``cat.access``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    # -- writing -------------------------------------------------------------
    def record(self, batch: Iterable[Counts]) -> None:
        """Add one flush's counts, in one transaction (see :data:`Counts`).

        Counts of an inode that no longer exists are skipped (unlinked and
        forgotten between the count and the flush).
        """
        rows = list(batch)
        with self._transaction():
            self._db.executemany(_UPSERT_DAY, ((ino, day, reads, nbytes, writes, ino)
                                               for ino, day, reads, nbytes, writes, *_ in rows))
            self._db.executemany(_UPSERT_FILE, ((ino, reads, nbytes, writes, lr, lw, ino)
                                                for ino, _, reads, nbytes, writes, lr, lw in rows))

    def fold(self, today: int, *, limit: int = 5000) -> int:
        """Fold day rows older than the retention into month rows, drop old month rows.

        Does at most ``limit`` rows, in one transaction; returns how many it
        did, so a caller repeats until it returns 0 (without holding the
        write lock for long on a big catalog).
        """
        cutoff = today - RETENTION_DAYS + 1
        oldest_month = _months_before(cutoff, MONTHS_KEPT)
        with self._transaction():
            rows = self._db.execute(
                "SELECT inode, day, reads, bytes_read, writes FROM access_days "
                "WHERE day < ? AND days = 1 ORDER BY day LIMIT ?", (cutoff, limit)).fetchall()
            months: dict[tuple[int, int], list[int]] = {}
            for ino, day, reads, nbytes, writes in rows:
                first, length = month_of(day)
                sums = months.setdefault((ino, first), [length, 0, 0, 0])
                sums[1] += reads
                sums[2] += nbytes
                sums[3] += writes
            self._db.executemany("DELETE FROM access_days WHERE inode = ? AND day = ?",
                                 ((r[0], r[1]) for r in rows))
            self._db.executemany(
                "INSERT INTO access_days (inode, day, days, reads, bytes_read, writes) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(inode, day) DO UPDATE SET "
                "days = excluded.days, reads = access_days.reads + excluded.reads, "
                "bytes_read = access_days.bytes_read + excluded.bytes_read, "
                "writes = access_days.writes + excluded.writes",
                ((ino, first, *sums) for (ino, first), sums in months.items()))
            dropped = self._db.execute(
                "DELETE FROM access_days WHERE (inode, day) IN (SELECT inode, day FROM "
                "access_days WHERE day < ? AND days > 1 LIMIT ?)",
                (oldest_month, limit)).rowcount
        return len(rows) + dropped

    # -- reading -------------------------------------------------------------
    def of(self, ino: int) -> FileAccess | None:
        """A file's all-time totals and last times; None when it was never counted."""
        row = self._db.execute(f"SELECT {_FILE_COLS} FROM access_files WHERE inode = ?",
                               (ino,)).fetchone()
        return None if row is None else FileAccess(*row)

    def last(self, ino: int) -> tuple[float | None, float | None]:
        """(last read, last write) in epoch seconds; None: never, since recording began."""
        row = self._db.execute("SELECT last_read, last_write FROM access_files WHERE inode = ?",
                               (ino,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def window(self, ino: int, since: int, until: int | None = None) -> FileAccess:
        """A file's counts over the days ``[since, until)`` (until: open-ended), last times."""
        reads, nbytes, writes = self._db.execute(
            "SELECT COALESCE(SUM(reads), 0), COALESCE(SUM(bytes_read), 0), "
            "COALESCE(SUM(writes), 0) FROM access_days WHERE inode = ? AND day >= ? AND day < ?",
            (ino, since, _end(until))).fetchone()
        return FileAccess(ino, reads, nbytes, writes, *self.last(ino))

    def days(self, ino: int) -> list[tuple[int, int, int, int, int]]:
        """A file's rows, oldest first: (day, days, reads, bytes_read, writes)."""
        return self._db.execute(
            "SELECT day, days, reads, bytes_read, writes FROM access_days WHERE inode = ? "
            "ORDER BY day", (ino,)).fetchall()

    def iterate(self, since: int | None = None, until: int | None = None, *,
                page: int = 10_000) -> Iterator[FileAccess]:
        """Every counted file in inode order, a page at a time (memory bounded by ``page``).

        Counts are all time, or over the days ``[since, until)`` when
        ``since`` is given (a file with nothing in the window has zeros);
        last times are always the newest. Files never counted are not listed.
        """
        after = 0
        while True:
            rows = self._db.execute(f"SELECT {_FILE_COLS} FROM access_files WHERE inode > ? "
                                    "ORDER BY inode LIMIT ?", (after, page)).fetchall()
            if not rows:
                return
            if since is None:
                yield from (FileAccess(*r) for r in rows)
            else:
                sums = {r[0]: r[1:] for r in self._db.execute(
                    "SELECT inode, SUM(reads), SUM(bytes_read), SUM(writes) FROM access_days "
                    "WHERE inode BETWEEN ? AND ? AND day >= ? AND day < ? GROUP BY inode",
                    (rows[0][0], rows[-1][0], since, _end(until)))}
                for ino, *_, last_read, last_write in rows:
                    reads, nbytes, writes = sums.get(ino, (0, 0, 0))
                    yield FileAccess(ino, reads, nbytes, writes, last_read, last_write)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def row_count(self) -> int:
        """Day and month rows of every file (what :meth:`fold` bounds)."""
        return self._db.execute("SELECT COUNT(*) FROM access_days").fetchone()[0]


def _end(until: int | None) -> int:
    return (1 << 62) if until is None else until
