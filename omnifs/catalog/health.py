"""Provider health and the daemon's counters: where the mount and the daemon meet about stores.

Written by the daemon (probe samples, :meth:`HealthLog.record_samples`, and
its verdict per provider, :meth:`HealthLog.set_verdict`) and by the mount (its
failed requests and an occasional success, :meth:`HealthLog.record_sample`,
source ``mount``); read by both (the mount places writes and ranks reads by
:meth:`HealthLog.verdicts`) and by ``omnifs status``. Every method is one
short autocommitted statement unless called inside
:meth:`omnifs.catalog.Catalog.transaction`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from omnifs.policy.health import Sample
from omnifs.providers.errors import InvalidInput

from .backend import Connection

#: health sample sources (``health_samples.source``)
HEALTH_SOURCES = ("probe", "worker", "mount", "daemon", "migrate")
#: which way a transfer sample's bytes went (``health_samples.direction``)
DIRECTIONS = ("read", "write")
#: how long transfer samples outlive the health window, and how many are kept per
#: (provider, direction)
TRANSFER_KEEP = 7 * 86400.0
TRANSFER_ROWS = 500


@dataclass(frozen=True, slots=True)
class Transfer:
    """One timed whole transfer: ``nbytes`` moved in ``seconds`` (a throughput sample)."""

    at: float
    nbytes: int
    seconds: float


@dataclass(slots=True)
class ProviderHealth:
    """One ``provider_health`` row: the daemon's verdict after its last probe round."""

    provider: str
    status: str
    p50: float | None
    p95: float | None
    error_rate: float
    down_since: float | None
    updated_at: float


class HealthLog:
    """The health part of the catalog, on the catalog's connection (``cat.health``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def record_sample(self, provider: str, ok: bool, latency: float, *,
                      error: str | None = None, source: str = "mount",
                      at: float | None = None) -> None:
        """One timed request against ``provider``; ``error`` is one line (kept to 300 chars)."""
        self.record_samples(provider, [Sample(time.time() if at is None else at, latency, ok)],
                            source=source, error=error)

    def record_samples(self, provider: str, samples: Iterable[Sample], *,
                       source: str = "probe", error: str | None = None) -> None:
        """Several samples at once (a probe round); ``error`` applies to the failed ones."""
        if source not in HEALTH_SOURCES:
            raise InvalidInput(f"health sample source {source!r}: expected one of "
                               f"{', '.join(HEALTH_SOURCES)}")
        line = error.splitlines()[0][:300] if error else None
        self._db.executemany(
            "INSERT INTO health_samples (provider, at, latency, ok, source, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(provider, s.at, s.latency, int(s.ok), source, None if s.ok else line)
             for s in samples])

    def record_transfers(self, provider: str, direction: str, transfers: Iterable[Transfer], *,
                         source: str = "worker") -> None:
        """Successful timed transfers of whole objects (or ranges) to or from ``provider``.

        They count as health samples too (a success with its latency): a store
        that moves data is answering.
        """
        if direction not in DIRECTIONS:
            raise InvalidInput(f"transfer direction {direction!r}: expected read or write")
        if source not in HEALTH_SOURCES:
            raise InvalidInput(f"health sample source {source!r}: expected one of "
                               f"{', '.join(HEALTH_SOURCES)}")
        self._db.executemany(
            "INSERT INTO health_samples (provider, at, latency, ok, source, bytes, direction) "
            "VALUES (?, ?, ?, 1, ?, ?, ?)",
            [(provider, t.at, t.seconds, source, t.nbytes, direction) for t in transfers])

    def samples(self, provider: str, since: float, *,
                requests_only: bool = False) -> list[Sample]:
        """``provider``'s samples from every source at or after ``since``, oldest first.

        ``requests_only`` leaves out transfer samples, whose latency is a whole
        transfer's duration rather than a request's round trip.
        """
        sql = "SELECT at, latency, ok FROM health_samples WHERE provider = ? AND at >= ?"
        if requests_only:
            sql += " AND bytes IS NULL"
        rows = self._db.execute(sql + " ORDER BY at", (provider, since)).fetchall()
        return [Sample(at, latency, bool(ok)) for at, latency, ok in rows]

    def transfers(self, provider: str, direction: str, since: float) -> list[Transfer]:
        """``provider``'s transfer samples one way since ``since``, oldest first."""
        rows = self._db.execute(
            "SELECT at, bytes, latency FROM health_samples WHERE provider = ? AND at >= ? "
            "AND direction = ? AND bytes IS NOT NULL AND ok = 1 ORDER BY at",
            (provider, since, direction)).fetchall()
        return [Transfer(at, int(n), latency) for at, n, latency in rows]

    def errors(self, provider: str, since: float) -> list[tuple[float, str, str | None]]:
        """(at, source, error) of ``provider``'s failed samples since ``since``, newest first."""
        return self._db.execute("SELECT at, source, error FROM health_samples WHERE provider = ? "
                                "AND at >= ? AND ok = 0 ORDER BY at DESC",
                                (provider, since)).fetchall()

    def prune_samples(self, before: float) -> None:
        """Drop request samples older than ``before``; transfer samples live longer.

        A throughput figure is what ``migrate plan`` estimates time from, so
        transfers are kept for :data:`TRANSFER_KEEP` seconds, at most the
        newest :data:`TRANSFER_ROWS` per provider and direction.
        """
        self._db.execute("DELETE FROM health_samples WHERE at < ? AND (bytes IS NULL OR at < ?)",
                         (before, before - TRANSFER_KEEP))
        self._db.execute(
            "DELETE FROM health_samples WHERE rowid IN (SELECT rowid FROM (SELECT rowid, "
            "ROW_NUMBER() OVER (PARTITION BY provider, direction ORDER BY at DESC) AS n "
            "FROM health_samples WHERE bytes IS NOT NULL) AS ranked WHERE n > ?)", (TRANSFER_ROWS,))

    def set_verdict(self, provider: str, status: str, *, p50: float | None = None,
                    p95: float | None = None, error_rate: float = 0.0,
                    down_since: float | None = None, updated_at: float | None = None) -> None:
        """The daemon's verdict on ``provider`` (one row per provider, replaced)."""
        self._db.execute(
            "INSERT INTO provider_health (provider, status, p50, p95, error_rate, down_since, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET "
            "status = excluded.status, p50 = excluded.p50, p95 = excluded.p95, "
            "error_rate = excluded.error_rate, down_since = excluded.down_since, "
            "updated_at = excluded.updated_at",
            (provider, status, p50, p95, error_rate, down_since,
             time.time() if updated_at is None else updated_at))

    def verdicts(self, max_age: float | None = None, *,
                 now: float | None = None) -> dict[str, ProviderHealth]:
        """The daemon's verdicts by provider; with ``max_age``, only rows updated that recently.

        A row older than a minute means no daemon is running: callers that
        act on a verdict (placement) should pass ``max_age`` so a dead
        daemon's last "down" does not steer writes forever.
        """
        sql = ("SELECT provider, status, p50, p95, error_rate, down_since, updated_at "
               "FROM provider_health")
        args: tuple = ()
        if max_age is not None:
            sql += " WHERE updated_at >= ?"
            args = ((time.time() if now is None else now) - max_age,)
        return {r[0]: ProviderHealth(*r) for r in self._db.execute(sql, args)}

    def forget(self, provider: str) -> None:
        self._db.execute("DELETE FROM provider_health WHERE provider = ?", (provider,))

    def add_counter(self, name: str, amount: float) -> None:
        """Grow the total ``name`` by ``amount`` (daemon_counters)."""
        self._db.execute("INSERT INTO daemon_counters (name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET "
                         "value = daemon_counters.value + excluded.value",
                         (name, amount))

    def counters(self) -> dict[str, float]:
        return dict(self._db.execute("SELECT name, value FROM daemon_counters").fetchall())
