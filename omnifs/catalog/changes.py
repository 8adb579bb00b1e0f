"""The change log: what changed in the namespace, in order, for every mount to follow.

Several mounts of one namespace (on several hosts, or several on one host)
share one catalog. Each keeps caches: the kernel's (attributes, names,
pages) and its own (an open handle's inode). A change one mount makes must
reach the others' caches, so every namespace change also writes a row to
``changes`` in the same transaction (:class:`Changes`, ``cat.changes``,
called by :mod:`.namespace` wherever the tree, an inode's attributes, its
content version or an xattr changes). A mount follows the log with a
:class:`ChangeFeed` on a connection of its own (mountfs/coherence.py).

How a follower learns that there is something new is the one part that
differs per database, and it is :meth:`ChangeFeed.wait` alone:

- SQLite (now): poll ``PRAGMA data_version`` every :data:`POLL` seconds (it
  moves when another connection commits; no disk read when it does not), and
  on a move ask ``max(seq)``.
- PostgreSQL: ``LISTEN omnifs_changes`` on the feed's connection and wait on
  its notifications instead of polling (a trigger on ``changes`` sends one at
  each commit that wrote rows; PostgreSQL folds repeated notifications of one
  transaction into one). A notification carries the pid of the server process
  that sent it: those of the follower's own mount (``own_pid``, its catalog
  connection's) are skipped without a query, so a mount working alone does not
  read the log after each of its own changes. Nothing else differs: rows,
  ``since`` and trimming are portable SQL (``?`` placeholders, no
  SQLite-only functions).

The log is read in ``seq`` order and a follower remembers the last ``seq`` it
read, so ``seq`` order must be commit order: a row with a smaller ``seq``
that committed after a larger one would never be read. Every transaction
that writes the log holds the catalog's write lock (SQLite's file lock,
PostgreSQL's ``WRITE_LOCK``, omnifs/catalog/backend.py) from before its
first insert until its commit; that is why the namespace's transactions stay
exclusive on PostgreSQL, although the unique keys of ``inodes`` and ``links``
alone would keep two mounts' names apart.

Rows older than :data:`KEEP_SECONDS` are trimmed (by ``seq``: the follower
notes where the log stood a while ago); a follower that finds the row it saw
last gone (``gap``) forgets everything it caches.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .backend import Connection, PgConnection
from .schema import CHANGES_CHANNEL

if TYPE_CHECKING:
    from .connection import Catalog

#: seconds between two looks at the catalog by a polling follower (SQLite)
POLL = 0.05
#: seconds a change stays in the log (a follower further behind forgets all it caches)
KEEP_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    origin: str
    inode: int
    #: the directory entry that changed (created, removed, renamed, replaced), if one did
    parent: int | None
    name: str | None
    #: the content changed: cached pages are stale
    data: bool


class Changes:
    """The change log part of the catalog, on its connection (``cat.changes``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction
        #: this connection's changes carry it: a mount skips its own
        self.origin = uuid.uuid4().hex[:16]
        #: other processes' changes its follower has applied (moves Catalog.change_count)
        self.seen = 0

    def record(self, inode: int, *, data: bool = False) -> None:
        """``inode``'s attributes (or with ``data``, its content) changed."""
        self._db.execute("INSERT INTO changes (origin, inode, data, time) VALUES (?, ?, ?, ?)",
                         (self.origin, inode, int(data), time.time()))

    def entry(self, inode: int, parent: int | None, name: str | None) -> None:
        """The name ``name`` in ``parent`` changed (it now names ``inode``, or no longer)."""
        if parent is None or name is None:
            self.record(inode)
            return
        self._db.execute("INSERT INTO changes (origin, inode, parent, name, time) "
                         "VALUES (?, ?, ?, ?, ?)", (self.origin, inode, parent, name, time.time()))

    def last_seq(self) -> int:
        return self._db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]

    def since(self, after: int, skip_origin: str = "",
              limit: int = 5000) -> tuple[list[Change], int, bool]:
        """Other origins' changes after ``after`` in order (a mount's own are not read
        into Python, but the newest row), the newest seq they were read up to, and whether
        changes were trimmed before they were read (a gap: forget everything cached).

        One statement, so one view of the log: besides the other origins' rows it
        reads the row ``after`` (gone: a gap) and the newest row (how far the log goes).
        """
        rows = self._db.execute(
            "SELECT seq, origin, inode, parent, name, data FROM changes WHERE seq >= ? AND "
            "(origin <> ? OR seq = ? OR seq = (SELECT max(seq) FROM changes)) ORDER BY seq "
            "LIMIT ?", (after, skip_origin, after, limit + 1)).fetchall()
        # the row a follower saw last is gone: trimmed while it was behind
        gap = after > 0 and not (rows and rows[0][0] == after)
        if rows and rows[0][0] == after:
            rows = rows[1:]
        rows = rows[:limit]
        newest = rows[-1][0] if rows else after
        return [Change(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows
                if r[1] != skip_origin], newest, gap

    def trim(self, before: int) -> int:
        """Drop the changes before seq ``before``, always keeping the newest (the row a
        follower that is up to date saw last)."""
        with self._transaction():
            return self._db.execute(
                "DELETE FROM changes WHERE seq < ? AND seq < (SELECT max(seq) FROM changes)",
                (before,)).rowcount


class ChangeFeed:
    """Waits for changes other connections made, on a catalog connection of its own.

    One per follower, used by one thread at a time (the follower's blocking
    waits run in worker threads, never on the mount's event loop).
    """

    def __init__(self, catalog: Catalog, own_pid: Callable[[], int] = lambda: 0):
        self.cat = catalog
        db = catalog.db
        #: PostgreSQL: the feed's connection LISTENs for the change log's NOTIFY
        self._pg = db if isinstance(db, PgConnection) else None
        #: PostgreSQL: the server pid of the connection whose changes are the follower's own
        #: (asked at each wait: a reopened connection has a new one)
        self._own_pid = own_pid
        self._version = 0 if self._pg else self._data_version()

    def _data_version(self) -> int:
        return self.cat.db.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, after: int, timeout: float) -> bool:
        """Block until a change after ``after`` is in the log, at most ``timeout`` seconds;
        whether there is one. SQLite: polls its data version every :data:`POLL` seconds.
        PostgreSQL: waits for the NOTIFY of the change log's trigger (schema v8) sent by
        another connection than the own one (their changes are not followed)."""
        deadline = time.monotonic() + timeout
        if self._pg is not None:
            # a new LISTEN missed what came before it: look at the log itself once
            if self._pg.listen(CHANGES_CHANNEL) and self.cat.changes.last_seq() > after:
                return True
            own = self._own_pid()
            return self._pg.wait_notify(CHANGES_CHANNEL, deadline - time.monotonic(),
                                        lambda pid: pid == own)
        while True:
            version = self._data_version()
            if version != self._version:
                self._version = version
                if self.cat.changes.last_seq() > after:
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return self.cat.changes.last_seq() > after
            time.sleep(min(POLL, left))

    def close(self) -> None:
        self.cat.close()
