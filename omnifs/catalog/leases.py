"""Leases: advisory locks with an expiry, shared by every process and host on one catalog.

A lease is a row (key, owner, expires). Taking it succeeds when nobody
holds the key, when its holder's lease ran out (a dead host stops
renewing), or when the taker already holds it (a renewal). Used for:

- ``publish:INODE``: one mount at a time uploads and commits a file's new
  version (mountfs/coherence.py), so the store's object and the catalog's
  current version always agree and every close becomes its own version;
- ``mount:ID``: a live mount's heartbeat (another mount's recovery leaves
  alone what a live mount may still hold);
- ``flock:PATH``: ``omnifs flock PATH -- CMD`` (omnifs/cli/flock.py).

Portable SQL (``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE``): the same
statements run on SQLite and PostgreSQL. Each change is one statement on rows
of its own key, so on PostgreSQL it runs under row locks, not the catalog's
write lock (``exclusive=False``): the upsert locks the key's row (or waits on
the unique key while another transaction inserts it) and evaluates the holder
test on the row as committed, so two takers never both get it. SQLite's one
writer serialises them anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .backend import Connection


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    owner: str
    expires: float
    note: str


class Leases:
    """The lease part of the catalog, on its connection (``cat.leases``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[..., AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def take(self, key: str, owner: str, ttl: float, note: str = "") -> bool:
        """Take or renew ``key`` for ``ttl`` seconds; False while another owner holds it."""
        now = time.time()
        with self._transaction(False):  # one statement on one key's row: row locks
            cur = self._db.execute(
                "INSERT INTO leases (key, owner, expires, note) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, "
                "expires = excluded.expires, note = excluded.note "
                "WHERE leases.owner = excluded.owner OR leases.expires < ?",
                (key, owner, now + ttl, note, now))
            return cur.rowcount > 0

    def release(self, key: str, owner: str) -> None:
        with self._transaction(False):  # one statement on one key's row: row locks
            self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def holder(self, key: str) -> Lease | None:
        """Who holds ``key`` now (an expired lease is nobody's)."""
        row = self._db.execute("SELECT key, owner, expires, note FROM leases "
                               "WHERE key = ? AND expires >= ?", (key, time.time())).fetchone()
        return Lease(*row) if row else None

    def live(self, prefix: str) -> list[Lease]:
        """Unexpired leases whose key starts with ``prefix``."""
        rows = self._db.execute("SELECT key, owner, expires, note FROM leases "
                                "WHERE substr(key, 1, ?) = ? AND expires >= ? ORDER BY key",
                                (len(prefix), prefix, time.time())).fetchall()
        return [Lease(*r) for r in rows]

    def prune(self) -> int:
        """Forget leases that ran out long ago (a dead host's)."""
        with self._transaction(False):  # each row on its own: a renewal meanwhile is re-checked
            return self._db.execute("DELETE FROM leases WHERE expires < ?",
                                    (time.time() - 3600,)).rowcount
