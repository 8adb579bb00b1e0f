"""The daemon's own tables in the catalog file: health samples, provider state, counters.

Why here and not in ``omnifs.catalog``: the catalog's owner adds tables by
numbered migrations; until health moves there, these tables are created with
``CREATE TABLE IF NOT EXISTS`` in the same SQLite file, so the mount (which
must not import ``daemon``) can read provider health with plain SQL:

provider_health -- one row per provider, rewritten after every probe round.
  provider    name from config
  status      'healthy' | 'degraded' | 'down' | 'unknown' | 'lost'
  p50, p95    latency seconds of successful samples in the window (NULL if none)
  error_rate  failed / all samples in the window
  down_since  epoch seconds the current outage began (NULL when up)
  updated_at  epoch seconds of this row; a row older than a minute means no daemon runs

health_samples -- recent timed requests (probes, and failures the mount reports).
  provider, at (epoch s), latency (s), ok (0/1), source ('probe' | 'mount' | 'worker')
  Pruned to the health window by the daemon.

daemon_counters -- monotonically growing totals (name, value), e.g. bytes_replicated.

The mount reports a failed store request with
``INSERT INTO health_samples (provider, at, latency, ok, source) VALUES (?, ?, ?, 0, 'mount')``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from policy.health import Health, Sample

SCHEMA = """
CREATE TABLE IF NOT EXISTS provider_health (
    provider   TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    p50        REAL,
    p95        REAL,
    error_rate REAL NOT NULL DEFAULT 0,
    down_since REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS health_samples (
    provider TEXT NOT NULL,
    at       REAL NOT NULL,
    latency  REAL NOT NULL,
    ok       INTEGER NOT NULL,
    source   TEXT NOT NULL DEFAULT 'probe'
);
CREATE INDEX IF NOT EXISTS health_samples_by_provider ON health_samples(provider, at);
CREATE TABLE IF NOT EXISTS daemon_counters (
    name  TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""


@dataclass
class ProviderRow:
    provider: str
    status: str
    p50: float | None
    p95: float | None
    error_rate: float
    down_since: float | None
    updated_at: float


def _locked(fn):
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return fn(self, *args, **kwargs)
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


class State:
    """A private connection to the catalog file for the daemon's bookkeeping.

    Separate from the catalog connection so that a health write never joins
    a catalog transaction; every method is one short statement or transaction.
    """

    def __init__(self, path: str | Path):
        #: the prober, the workers and the stats loop call in from different threads
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                  timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    # -- samples -------------------------------------------------------------
    @_locked
    def add_samples(self, provider: str, samples: Iterable[Sample], source: str = "probe") -> None:
        self.db.executemany(
            "INSERT INTO health_samples (provider, at, latency, ok, source) VALUES (?, ?, ?, ?, ?)",
            [(provider, s.at, s.latency, int(s.ok), source) for s in samples])

    @_locked
    def samples(self, provider: str, since: float) -> list[Sample]:
        rows = self.db.execute("SELECT at, latency, ok FROM health_samples WHERE provider = ? "
                               "AND at >= ? ORDER BY at", (provider, since)).fetchall()
        return [Sample(at, latency, bool(ok)) for at, latency, ok in rows]

    @_locked
    def prune_samples(self, before: float) -> None:
        self.db.execute("DELETE FROM health_samples WHERE at < ?", (before,))

    # -- provider state ------------------------------------------------------
    @_locked
    def set_health(self, provider: str, health: Health, down_since: float | None,
                   status: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO provider_health (provider, status, p50, p95, error_rate, down_since, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET "
            "status = excluded.status, p50 = excluded.p50, p95 = excluded.p95, "
            "error_rate = excluded.error_rate, down_since = excluded.down_since, "
            "updated_at = excluded.updated_at",
            (provider, status or health.status, health.p50, health.p95, health.error_rate,
             down_since, time.time()))

    @_locked
    def health(self) -> dict[str, ProviderRow]:
        rows = self.db.execute("SELECT provider, status, p50, p95, error_rate, down_since, "
                               "updated_at FROM provider_health").fetchall()
        return {r[0]: ProviderRow(*r) for r in rows}

    @_locked
    def forget_provider(self, provider: str) -> None:
        self.db.execute("DELETE FROM provider_health WHERE provider = ?", (provider,))

    # -- counters --------------------------------------------------------------
    @_locked
    def add_counter(self, name: str, amount: float) -> None:
        self.db.execute("INSERT INTO daemon_counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (name, amount))

    @_locked
    def counters(self) -> dict[str, float]:
        return dict(self.db.execute("SELECT name, value FROM daemon_counters").fetchall())


def read_health(path: str | Path) -> dict[str, ProviderRow]:
    """Provider health as the daemon last wrote it; {} when no daemon ever ran."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return {}
    try:
        rows = db.execute("SELECT provider, status, p50, p95, error_rate, down_since, "
                          "updated_at FROM provider_health").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {r[0]: ProviderRow(*r) for r in rows}
