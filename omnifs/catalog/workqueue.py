"""The work queue (journal) that mounts and the CLI write and daemon workers claim.

Protocol (for daemon workers in other processes)::

    items = cat.work.claim("worker-1", kinds=("replicate",), limit=8, lease=300)
    for item in items:
        try:
            do(item.payload)
        except TransientError as e:
            cat.work.fail(item.id, str(e), retry_in=backoff(item.attempts))
        else:
            cat.work.complete(item.id)

A claim is atomic across processes and hosts (UPDATE ... RETURNING under
SQLite's write lock; on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``, so
workers on many hosts claim different items at once without waiting);
a claim older than its lease is taken over by the next ``claim`` (the worker
died). Executors must therefore be idempotent. :meth:`WorkQueue.queued_by_provider`
is placement's load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .backend import Connection


@dataclass(slots=True)
class WorkItem:
    id: int
    kind: str
    payload: dict
    state: str
    attempts: int
    not_before: float
    claimed_by: str | None
    claimed_at: float | None
    last_error: str | None


class WorkQueue:
    """The work queue part of the catalog, on the catalog's connection (``cat.work``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[..., AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def enqueue(self, kind: str, payload: dict, *, dedup: str | None = None,
                not_before: float = 0.0) -> int:
        """Queue work; with ``dedup``, a pending item with that key is updated instead."""
        data = json.dumps(payload, sort_keys=True)
        if dedup is None:
            return self._db.execute(
                "INSERT INTO work (kind, payload, not_before, created_at) VALUES (?, ?, ?, ?) "
                "RETURNING id", (kind, data, not_before, time.time())).fetchone()[0]
        row = self._db.execute(
            "INSERT INTO work (kind, payload, not_before, dedup, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup) WHERE state = 'pending' "
            "DO UPDATE SET payload = excluded.payload, not_before = excluded.not_before "
            "RETURNING id",
            (kind, data, not_before, dedup, time.time())).fetchone()
        return row[0]

    def claim(self, worker: str, *, kinds: Sequence[str] | None = None, limit: int = 1,
              lease: float = 300.0) -> list[WorkItem]:
        """Atomically take up to ``limit`` ready items (oldest first) for ``worker``."""
        t = time.time()
        kind_sql, args = "", []
        if kinds:
            kind_sql = f" AND kind IN ({','.join('?' * len(kinds))})"
            args = list(kinds)
        with self._transaction(False):  # row locks, not the catalog's write lock
            rows = self._db.execute(
                "UPDATE work SET state = 'claimed', claimed_by = ?, claimed_at = ?, dedup = NULL "
                "WHERE id IN (SELECT id FROM work WHERE ((state = 'pending' AND not_before <= ?) "
                f"OR (state = 'claimed' AND claimed_at < ?)){kind_sql} ORDER BY id LIMIT ?"
                f"{self._db.dialect.skip_locked}) "
                "RETURNING id, kind, payload, state, attempts, not_before, claimed_by, "
                "claimed_at, last_error",
                (worker, t, t, t - lease, *args, limit)).fetchall()
        items = [WorkItem(r[0], r[1], json.loads(r[2]), *r[3:]) for r in rows]
        items.sort(key=lambda w: w.id)
        return items

    def complete(self, work_id: int) -> None:
        """The work is done: it leaves the queue."""
        self._db.execute("DELETE FROM work WHERE id = ?", (work_id,))

    def fail(self, work_id: int, error: str, *, retry_in: float | None = 30.0,
             max_attempts: int = 10) -> None:
        """Record a failure; retry after ``retry_in`` s, or park it as 'failed'."""
        row = self._db.execute("SELECT attempts FROM work WHERE id = ?", (work_id,)).fetchone()
        if row is None:
            return
        attempts = row[0] + 1
        if retry_in is None or attempts >= max_attempts:
            self._db.execute("UPDATE work SET state = 'failed', attempts = ?, last_error = ?, "
                             "claimed_by = NULL WHERE id = ?", (attempts, error[:500], work_id))
        else:
            self._db.execute("UPDATE work SET state = 'pending', attempts = ?, last_error = ?, "
                             "not_before = ?, claimed_by = NULL, claimed_at = NULL WHERE id = ?",
                             (attempts, error[:500], time.time() + retry_in, work_id))

    def release_claims(self, worker: str) -> None:
        """Give back what ``worker`` held (clean shutdown)."""
        self._db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL "
                         "WHERE state = 'claimed' AND claimed_by = ?", (worker,))

    def release_claims_of(self, work_id: int) -> None:
        """Give back one claimed item untouched (a worker that filtered it out)."""
        self._db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL "
                         "WHERE id = ? AND state = 'claimed'", (work_id,))

    def complete_many(self, work_ids: Iterable[int]) -> None:
        """Several items done at once, in one transaction (a worker settling a batch)."""
        with self._transaction(False):  # the worker's own claimed rows: row locks suffice
            self._db.executemany("DELETE FROM work WHERE id = ?", [(i,) for i in work_ids])

    def defer(self, work_id: int, until: float) -> None:
        """Back to pending until ``until`` without counting an attempt.

        Why not :meth:`fail`: the item is fine, a provider it needs is down;
        its attempts must not run out while the provider is away.
        """
        self._db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL, "
                         "not_before = ? WHERE id = ?", (until, work_id))

    def release_deferred(self, kinds: Sequence[str]) -> int:
        """Pending items of ``kinds`` waiting out a delay become claimable now; how many.

        Called when a provider returns, so its backlog is caught up at once.
        """
        if not kinds:
            return 0
        marks = ",".join("?" * len(kinds))
        return self._db.execute(
            f"UPDATE work SET not_before = 0 WHERE state = 'pending' AND kind IN ({marks})",
            tuple(kinds)).rowcount

    def claim_holders(self, prefix: str) -> list[str]:
        """Distinct workers whose name starts with ``prefix`` holding claims now.

        A restarted daemon looks for the claims of its dead predecessors on
        this host and hands them back with :meth:`release_claims`.
        """
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [r[0] for r in self._db.execute(
            "SELECT DISTINCT claimed_by FROM work WHERE state = 'claimed' "
            "AND claimed_by LIKE ? ESCAPE '\\'", (pattern,))]

    def failed_count(self) -> int:
        """Items parked as failed (out of attempts, or not retryable)."""
        return self._db.execute("SELECT count(*) FROM work WHERE state = 'failed'").fetchone()[0]

    def pending_count(self, kinds: Sequence[str] | None = None) -> int:
        sql = "SELECT count(*) FROM work WHERE state IN ('pending', 'claimed')"
        args: list = []
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args = list(kinds)
        return self._db.execute(sql, args).fetchone()[0]

    def pending_by_kind(self) -> dict[str, int]:
        """Queued (pending or claimed) items per kind."""
        return dict(self._db.execute("SELECT kind, count(*) FROM work WHERE state IN "
                                     "('pending', 'claimed') GROUP BY kind").fetchall())

    def work_items(self, state: str | None = None) -> list[WorkItem]:
        sql = ("SELECT id, kind, payload, state, attempts, not_before, claimed_by, claimed_at, "
               "last_error FROM work")
        args: tuple = ()
        if state:
            sql += " WHERE state = ?"
            args = (state,)
        return [WorkItem(r[0], r[1], json.loads(r[2]), *r[3:])
                for r in self._db.execute(sql + " ORDER BY id", args)]

    def oldest_pending_age(self) -> float | None:
        row = self._db.execute("SELECT min(created_at) FROM work WHERE state IN "
                               "('pending', 'claimed')").fetchone()
        return None if row[0] is None else time.time() - row[0]

    # -- provider health -------------------------------------------------------

    def queued_copies(self, ino: int) -> set[str]:
        """Providers a queued (pending or claimed) replicate item of ``ino`` copies to.

        A replica row left ``pending`` whose item was parked as failed is no
        copy on its way: the repair step must not wait for it.
        """
        d = self._db.dialect
        return {r[0] for r in self._db.execute(
            f"SELECT {d.json_text('payload', 'provider')} FROM work WHERE kind = 'replicate' "
            f"AND state IN ('pending', 'claimed') AND {d.json_int('payload', 'inode')} = ?",
            (ino,))}

    def queued_by_provider(self) -> dict[str, int]:
        """Queued (pending or claimed) replicate items per target provider: placement's load.

        Why the queue and not bytes: it is what the catalog knows without
        asking a store, and a provider with a long backlog is the one a new
        write should avoid when another is as good.
        """
        rows = self._db.execute(
            f"SELECT {self._db.dialect.json_text('payload', 'provider')}, count(*) FROM work "
            "WHERE state IN ('pending', 'claimed') AND kind = 'replicate' GROUP BY 1").fetchall()
        return {name: n for name, n in rows if name is not None}


