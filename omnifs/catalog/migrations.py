"""Migration runs: the state of every ``omnifs migrate run``, object by object.

A migration is identified by its plan (:func:`migration_id` of the plan
file's checksum): running the same plan file again continues the same
migration, which is how ``migrate run`` resumes after kill -9 without
copying anything twice. One ``migration_items`` row per plan entry records
what happened to that object; :meth:`Migrations.usage` counts the requests
and bytes the run actually spent per store, for the cost beside the estimate.

Writers batch: :meth:`Migrations.update_items` takes many rows in one
transaction, because a 100,000-object run cannot afford a commit per object.
A method that changes something commits before it returns unless it runs
inside :meth:`omnifs.catalog.Catalog.transaction`.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from omnifs.providers.errors import InvalidInput

from .backend import Connection

#: ``migrations.state``
RUN_STATES = ("planned", "running", "done", "incomplete", "rolled_back", "finalized")
#: ``migration_items.state``: what happened to the entry's action
ITEM_STATES = ("pending", "done", "failed")
#: ``migration_items.verified``
VERIFY_STATES = ("ok", "mismatch", "missing")

_ITEM_COLS = ("key, action, size, state, attempts, error, sha256, saved, verified, "
              "source_deleted, rolled_back, started_at, finished_at")


def migration_id(plan_checksum: str) -> str:
    """The migration a plan file runs as: 16 hex digits of its checksum."""
    digest = plan_checksum.split(":", 1)[-1]
    return digest[:16]


@dataclass(slots=True)
class Migration:
    """One ``migrations`` row."""

    id: str
    plan_checksum: str
    src: str
    dst: str
    mode: str
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    #: the plan's places, summary and estimate, as the plan file had them
    plan: dict[str, Any]


@dataclass(slots=True)
class MigrationItem:
    """One ``migration_items`` row: one plan entry and what the run did with it."""

    key: str
    action: str
    size: int
    state: str
    attempts: int
    error: str | None
    sha256: str | None
    saved: str | None
    verified: str | None
    source_deleted: bool
    rolled_back: bool
    started_at: float | None
    finished_at: float | None


def _item(row: tuple) -> MigrationItem:
    (key, action, size, state, attempts, error, sha256, saved, verified, source_deleted,
     rolled_back, started_at, finished_at) = row
    return MigrationItem(key, action, size, state, attempts, error, sha256, saved, verified,
                         bool(source_deleted), bool(rolled_back), started_at, finished_at)


def _migration(row: tuple) -> Migration:
    (mid, checksum, src, dst, mode, state, created, started, finished, plan) = row
    return Migration(mid, checksum, src, dst, mode, state, created, started, finished,
                     json.loads(plan))


_MIGRATION_COLS = ("id, plan_checksum, src, dst, mode, state, created_at, started_at, "
                   "finished_at, plan")

#: the fields :meth:`Migrations.update_items` may set
_UPDATABLE = frozenset({"state", "attempts", "error", "sha256", "saved", "verified",
                        "source_deleted", "rolled_back", "started_at", "finished_at"})


class Migrations:
    """The migration part of the catalog, on the catalog's connection (``cat.migrations``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    # -- runs ----------------------------------------------------------------
    def create(self, mid: str, *, plan_checksum: str, src: str, dst: str, mode: str,
               plan: dict[str, Any], entries: Iterable[tuple[str, str, int]]) -> Migration:
        """Record a migration and its entries (key, action, size), all ``pending``.

        Returns the existing migration when ``mid`` is already recorded for the
        same plan (a rerun continues it); a different plan under the same id is
        refused.
        """
        with self._transaction():
            old = self.get(mid)
            if old is not None:
                if old.plan_checksum != plan_checksum:
                    raise InvalidInput(f"migration {mid} was recorded for another plan")
                return old
            self._db.execute(
                f"INSERT INTO migrations ({_MIGRATION_COLS}) "
                "VALUES (?, ?, ?, ?, ?, 'planned', ?, NULL, NULL, ?)",
                (mid, plan_checksum, src, dst, mode, time.time(),
                 json.dumps(plan, sort_keys=True)))
            self._db.executemany(
                "INSERT INTO migration_items (migration, key, action, size) VALUES (?, ?, ?, ?)",
                ((mid, key, action, size) for key, action, size in entries))
        got = self.get(mid)
        assert got is not None
        return got

    def get(self, mid: str) -> Migration | None:
        row = self._db.execute(f"SELECT {_MIGRATION_COLS} FROM migrations WHERE id = ?",
                               (mid,)).fetchone()
        return None if row is None else _migration(row)

    def list(self) -> builtins.list[Migration]:
        """Every recorded migration, oldest first."""
        rows = self._db.execute(f"SELECT {_MIGRATION_COLS} FROM migrations "
                                "ORDER BY created_at, id").fetchall()
        return [_migration(r) for r in rows]

    def set_state(self, mid: str, state: str, *, started_at: float | None = None,
                  finished_at: float | None = None) -> None:
        """Set the run's state; the times are set only when given."""
        if state not in RUN_STATES:
            raise ValueError(f"migration state {state!r}")
        self._db.execute(
            "UPDATE migrations SET state = ?, started_at = COALESCE(?, started_at), "
            "finished_at = COALESCE(?, finished_at) WHERE id = ?",
            (state, started_at, finished_at, mid))

    # -- items ---------------------------------------------------------------
    def items(self, mid: str, *, states: Iterable[str] | None = None,
              actions: Iterable[str] | None = None,
              page: int = 5000) -> Iterator[MigrationItem]:
        """The migration's items in key order, read a page at a time (bounded memory).

        Safe to update the yielded items while iterating: pages continue after
        the last key seen, not at an offset.
        """
        where = ["migration = ?", "key > ?"]
        filters: builtins.list[Any] = []
        for column, values in (("state", states), ("action", actions)):
            if values is not None:
                vals = builtins.list(values)
                where.append(f"{column} IN ({', '.join('?' * len(vals))})")
                filters.extend(vals)
        sql = (f"SELECT {_ITEM_COLS} FROM migration_items WHERE {' AND '.join(where)} "
               "ORDER BY key LIMIT ?")
        after = ""
        while True:
            rows = self._db.execute(sql, (mid, after, *filters, page)).fetchall()
            for row in rows:
                yield _item(row)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def item(self, mid: str, key: str) -> MigrationItem | None:
        row = self._db.execute(f"SELECT {_ITEM_COLS} FROM migration_items "
                               "WHERE migration = ? AND key = ?", (mid, key)).fetchone()
        return None if row is None else _item(row)

    def update_items(self, mid: str, updates: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Set fields of many items, ``(key, {field: value})``, in one transaction.

        Fields: state, attempts, error (kept to one line of 300 characters),
        sha256, saved, verified, source_deleted, rolled_back, started_at,
        finished_at.
        """
        with self._transaction():
            for key, fields in updates:
                unknown = set(fields) - _UPDATABLE
                if unknown:
                    raise ValueError(f"migration item fields {sorted(unknown)}")
                if fields.get("state") is not None and fields["state"] not in ITEM_STATES:
                    raise ValueError(f"migration item state {fields['state']!r}")
                if fields.get("verified") is not None and fields["verified"] not in VERIFY_STATES:
                    raise ValueError(f"migration item verified {fields['verified']!r}")
                values = dict(fields)
                if values.get("error"):
                    values["error"] = str(values["error"]).splitlines()[0][:300]
                names = sorted(values)
                sets = ", ".join(f"{n} = ?" for n in names)
                self._db.execute(
                    f"UPDATE migration_items SET {sets} WHERE migration = ? AND key = ?",
                    (*(values[n] for n in names), mid, key))

    def counts(self, mid: str) -> dict[str, dict[str, dict[str, int]]]:
        """``{action: {state: {"objects": n, "bytes": b}}}`` over the migration's items."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for action, state, n, b in self._db.execute(
                "SELECT action, state, COUNT(*), COALESCE(SUM(size), 0) FROM migration_items "
                "WHERE migration = ? GROUP BY action, state", (mid,)):
            out.setdefault(action, {})[state] = {"objects": n, "bytes": b}
        return out

    # -- what the run spent ----------------------------------------------------
    def add_usage(self, mid: str, amounts: Iterable[tuple[str, str, float]]) -> None:
        """Add to the run's counters: ``(provider, kind, amount)``, e.g.
        ``("src", "get_requests", 1)`` or ``("dst", "bytes_in", 65536)``."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO migration_usage (migration, provider, kind, value) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(migration, provider, kind) "
                "DO UPDATE SET value = migration_usage.value + excluded.value",
                ((mid, p, k, v) for p, k, v in amounts))

    def usage(self, mid: str) -> dict[str, dict[str, float]]:
        """``{provider: {kind: total}}`` counted so far."""
        out: dict[str, dict[str, float]] = {}
        for p, k, v in self._db.execute("SELECT provider, kind, value FROM migration_usage "
                                        "WHERE migration = ?", (mid,)):
            out.setdefault(p, {})[k] = v
        return out
