"""What the cost engine reads and writes: every file's copies and reads, and the moves made.

* :meth:`CostRecords.files`: every file of the namespace with its synced copies
  of the current version (store -> tier), its size, mtime, last read and
  write, and its reads and bytes read over a window of days, a page at a
  time (memory bounded by the page, however many files);
* :meth:`CostRecords.record_move` / :meth:`CostRecords.finish_move` /
  :meth:`CostRecords.moves`: the ``cost_moves`` history of ``omnifs cost apply``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal

from .backend import Connection

#: the states of a recorded move
MOVE_STATES = ("queued", "done", "failed", "obsolete")


@dataclass(slots=True)
class StoredFile:
    inode: int
    parent: int
    name: str
    size: int
    #: epoch seconds
    mtime: float
    last_read: float | None
    last_write: float | None
    #: reads and bytes read over the window asked for
    reads: int
    bytes_read: int
    #: store -> tier of its synced copy of the current version ("" = the store's default)
    replicas: dict[str, str]


#: what :meth:`CostRecords.rows` yields: :class:`StoredFile`'s fields, in its order
FileRow = tuple[int, int, str, int, float, float | None, float | None, int, int,
                dict[str, str]]

#: what separates a copy's provider from its tier, and one copy from the next, in
#: :func:`_rows_sql`'s strings (control characters no name holds; PostgreSQL text has no NUL)
_PAIR, _COPY = "\x1f", "\x1e"


def _rows_sql(join_strings: str) -> str:
    """One page of files: each with its synced copies of the current version as one
    string ("provider _PAIR tier" joined by _COPY) and its reads from a day on (a file
    never counted has no access_files row, and no day rows either: the CASE skips looking).
    Parameters: the day twice, the pair and copy separators, the last id seen, the page."""
    return (
        "SELECT i.id, i.parent, i.name, i.size, i.mtime_ns, a.last_read, a.last_write, "
        "CASE WHEN a.inode IS NULL THEN 0 ELSE (SELECT SUM(reads) FROM access_days "
        "WHERE inode = i.id AND day >= ?) END, "
        "CASE WHEN a.inode IS NULL THEN 0 ELSE (SELECT SUM(bytes_read) FROM access_days "
        "WHERE inode = i.id AND day >= ?) END, "
        f"(SELECT {join_strings}(r.provider || CAST(? AS TEXT) || COALESCE(r.tier, ''), "
        "CAST(? AS TEXT)) "
        "FROM replicas r WHERE r.inode = i.id AND r.state = 'synced' "
        "AND r.version = i.version) "
        "FROM inodes i LEFT JOIN access_files a ON a.inode = i.id "
        "WHERE i.kind = 'file' AND i.parent IS NOT NULL AND i.id > ? "
        "ORDER BY i.id LIMIT ?")


@dataclass(slots=True)
class CostMove:
    id: int
    time: float
    inode: int
    path: str
    kind: str
    store: str
    source: str
    target: str
    saving_per_month: Decimal
    one_time: Decimal
    state: str
    detail: str | None
    done_at: float | None


_MOVE_COLS = ("id, time, inode, path, kind, store, source, target, saving_per_month, one_time, "
              "state, detail, done_at")


class CostRecords:
    """The cost engine's part of the catalog, on its connection (``cat.cost``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def files(self, since_day: int, *, page: int = 5000) -> Iterator[StoredFile]:
        """Every file in inode order, with reads counted from ``since_day`` on."""
        for row in self.rows(since_day, page=page):
            yield StoredFile(*row)

    def rows(self, since_day: int, *, page: int = 5000) -> Iterator[FileRow]:
        """:meth:`files` as plain tuples (:data:`FileRow`), one query per page.

        The copies of each file come as one string (``group_concat`` / ``string_agg``) and the
        reads as sums, so Python does one step per file, not per copy or day; files
        with the same copies in the same tiers share one ``replicas`` dict (never
        modify it).
        """
        signatures: dict[str | None, dict[str, str]] = {None: {}}
        sql = _rows_sql(self._db.dialect.join_strings)
        after = 0
        while True:
            rows = self._db.execute(sql, (since_day, since_day, _PAIR, _COPY, after,
                                          page)).fetchall()
            for ino, parent, name, size, mtime_ns, last_read, last_write, n, b, sig in rows:
                replicas = signatures.get(sig)
                if replicas is None:
                    pairs = (p.split(_PAIR) for p in sig.split(_COPY))
                    replicas = signatures[sig] = dict(sorted(pairs))
                yield (ino, parent, name, size, mtime_ns / 1e9, last_read, last_write,
                       n or 0, b or 0, replicas)
            if len(rows) < page:
                return
            after = rows[-1][0]

    # -- the moves made ------------------------------------------------------
    def record_move(self, *, inode: int, path: str, kind: str, store: str, source: str,
                    target: str, saving_per_month: Decimal, one_time: Decimal,
                    when: float | None = None) -> int:
        """A move queued by ``omnifs cost apply``; its id."""
        row = self._db.execute(
            "INSERT INTO cost_moves (time, inode, path, kind, store, source, target, "
            "saving_per_month, one_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (time.time() if when is None else when, inode, path, kind, store, source, target,
             str(saving_per_month), str(one_time))).fetchone()
        return int(row[0])

    def finish_move(self, move_id: int, state: str, detail: str | None = None) -> None:
        """The move ended: ``done``, ``failed`` or ``obsolete`` (with one line why)."""
        if state not in MOVE_STATES:
            raise ValueError(f"move state {state!r}")
        self._db.execute("UPDATE cost_moves SET state = ?, detail = ?, done_at = ? "
                         "WHERE id = ?", (state, detail, time.time(), move_id))

    def move(self, move_id: int) -> CostMove | None:
        row = self._db.execute(f"SELECT {_MOVE_COLS} FROM cost_moves WHERE id = ?",
                               (move_id,)).fetchone()
        return None if row is None else _move(row)

    def moves(self, limit: int = 1000) -> list[CostMove]:
        """The newest ``limit`` moves, oldest first."""
        rows = self._db.execute(f"SELECT {_MOVE_COLS} FROM cost_moves ORDER BY id DESC LIMIT ?",
                                (limit,)).fetchall()
        return [_move(r) for r in reversed(rows)]

    def queued_inodes(self) -> set[int]:
        """Files with a move queued and not yet ended."""
        return {r[0] for r in self._db.execute(
            "SELECT DISTINCT inode FROM cost_moves WHERE state = 'queued'")}

    def queued(self, inode: int) -> bool:
        """A move of this file is queued and not yet ended."""
        return self._db.execute("SELECT 1 FROM cost_moves WHERE inode = ? AND state = 'queued' "
                                "LIMIT 1", (inode,)).fetchone() is not None


def _move(row: tuple) -> CostMove:
    values = list(row)
    values[8], values[9] = Decimal(values[8]), Decimal(values[9])
    return CostMove(*values)
