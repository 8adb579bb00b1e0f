"""Store usage: the requests omnifs processes made of each provider, per UTC day.

Every process that talks to the stores (the mount, the daemon, ``omnifs cp``,
``sync`` and ``migrate run``) counts its requests per (provider, op) and
flushes the deltas here every few seconds (omnifs/usage_log.py,
:meth:`StoreUsage.add`, one transaction per flush). ``omnifs cost report``
reads the sums of a month back (:meth:`StoreUsage.totals`): request counts
and bytes are what the stores bill for requests and egress.

Bounded like the access statistics (omnifs/catalog/access.py): one row per
(day, provider, op) for the last :data:`~.access.RETENTION_DAYS` days, older
days folded into one row per calendar month (:meth:`StoreUsage.fold`), month
rows dropped after :data:`~.access.MONTHS_KEPT` months. A window counts a
month row when the month's first day is in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from .access import MONTHS_KEPT, RETENTION_DAYS, _months_before, month_of
from .backend import Connection

#: the kinds of request counted
OPS = ("get", "put", "head", "list", "delete", "copy")

#: one (provider, op)'s counts: (requests, errors, bytes_in, bytes_out)
Counts = tuple[int, int, int, int]

_UPSERT = (
    "INSERT INTO usage_days (day, days, provider, op, requests, errors, bytes_in, bytes_out) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(day, provider, op) DO UPDATE SET "
    "requests = usage_days.requests + excluded.requests, "
    "errors = usage_days.errors + excluded.errors, "
    "bytes_in = usage_days.bytes_in + excluded.bytes_in, "
    "bytes_out = usage_days.bytes_out + excluded.bytes_out")


class StoreUsage:
    """The store usage part of the catalog, on its connection (``cat.usage``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[..., AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def add(self, day: int, rows: dict[tuple[str, str], Counts]
            | Iterable[tuple[tuple[str, str], Counts]]) -> None:
        """Add counts made on ``day`` (days since 1970-01-01, UTC), in one transaction:
        ``{(provider, op): (requests, errors, bytes_in, bytes_out)}``."""
        items = sorted(rows.items() if isinstance(rows, dict) else rows)
        with self._transaction(False):  # additive upserts in key order: row locks suffice
            self._db.executemany(_UPSERT, ((day, 1, provider, op, *counts)
                                           for (provider, op), counts in items
                                           if any(counts)))

    def totals(self, first_day: int, last_day: int) -> dict[str, dict[str, Counts]]:
        """Sums over the days ``first_day..last_day`` (both included):
        ``{provider: {op: (requests, errors, bytes_in, bytes_out)}}``."""
        out: dict[str, dict[str, Counts]] = {}
        for provider, op, *sums in self._db.execute(
                "SELECT provider, op, SUM(requests), SUM(errors), SUM(bytes_in), "
                "SUM(bytes_out) FROM usage_days WHERE day >= ? AND day <= ? "
                "GROUP BY provider, op ORDER BY provider, op", (first_day, last_day)):
            out.setdefault(provider, {})[op] = tuple(sums)
        return out

    def fold(self, today: int) -> int:
        """Fold day rows older than the retention into month rows and drop old month rows,
        in one transaction; how many rows it touched (0: nothing left to do)."""
        cutoff = today - RETENTION_DAYS + 1
        with self._transaction(False):  # folds only the rows it deleted itself: see above
            rows = self._db.execute(
                "DELETE FROM usage_days WHERE day < ? AND days = 1 "
                "RETURNING day, provider, op, requests, errors, bytes_in, bytes_out",
                (cutoff,)).fetchall()
            months = sorted((*month_of(day), provider, op, *counts)
                            for day, provider, op, *counts in rows)
            self._db.executemany(_UPSERT.replace("DO UPDATE SET ", "DO UPDATE SET "
                                                 "days = excluded.days, "), months)
            dropped = self._db.execute(
                "DELETE FROM usage_days WHERE day < ? AND days > 1",
                (_months_before(cutoff, MONTHS_KEPT),)).rowcount
        return len(rows) + dropped

    def row_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM usage_days").fetchone()[0]
