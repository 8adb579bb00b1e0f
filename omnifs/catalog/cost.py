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
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT i.id, i.parent, i.name, i.size, i.mtime_ns, a.last_read, a.last_write "
                "FROM inodes i LEFT JOIN access_files a ON a.inode = i.id "
                "WHERE i.kind = 'file' AND i.parent IS NOT NULL AND i.id > ? "
                "ORDER BY i.id LIMIT ?", (after, page)).fetchall()
            if not rows:
                return
            lo, hi = rows[0][0], rows[-1][0]
            copies: dict[int, dict[str, str]] = {}
            for ino, provider, tier in self._db.execute(
                    "SELECT r.inode, r.provider, r.tier FROM replicas r JOIN inodes i "
                    "ON i.id = r.inode WHERE r.inode BETWEEN ? AND ? AND r.state = 'synced' "
                    "AND r.version = i.version ORDER BY r.inode, r.provider", (lo, hi)):
                copies.setdefault(ino, {})[provider] = tier or ""
            reads = {ino: (n, b) for ino, n, b in self._db.execute(
                "SELECT inode, SUM(reads), SUM(bytes_read) FROM access_days "
                "WHERE inode BETWEEN ? AND ? AND day >= ? GROUP BY inode", (lo, hi, since_day))}
            for ino, parent, name, size, mtime_ns, last_read, last_write in rows:
                n, b = reads.get(ino, (0, 0))
                yield StoredFile(ino, parent, name, size, mtime_ns / 1e9, last_read,
                                 last_write, n, b, copies.get(ino, {}))
            if len(rows) < page:
                return
            after = hi

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
