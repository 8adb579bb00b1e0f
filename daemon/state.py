"""The daemon's health bookkeeping: samples, verdicts per provider, counters.

The tables (provider_health, health_samples, daemon_counters) belong to the
catalog (migration 3, documented in :mod:`omnifs.catalog.schema`); this
module only gives the daemon a connection of its own to them.

Why a separate connection: a health write must never join a catalog
transaction of the workers, and the prober, the workers and the stats loop
call in from different threads, so every call goes through one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from omnifs.catalog import Catalog, CatalogUnavailable, ProviderHealth
from omnifs.policy.health import Health, Sample

#: seconds between tries of a catalog call during an outage
OUTAGE_RETRY = 1.0

#: one provider_health row (kept under its old name for callers and tests)
ProviderRow = ProviderHealth


def _locked(fn):
    """One call at a time; through a catalog outage the call waits and is tried again
    (the health prober pauses) until the catalog answers or the daemon stops."""
    def wrapper(self, *args, **kwargs):
        with self.lock:
            while True:
                try:
                    return fn(self, *args, **kwargs)
                except CatalogUnavailable:
                    if self.stopping.wait(OUTAGE_RETRY):
                        raise
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


class State:
    """The daemon's private catalog connection for health and counters, behind a lock."""

    def __init__(self, path: str | Path):
        self.lock = threading.Lock()
        self.catalog = Catalog(path)
        #: set when the daemon stops: calls stop waiting out an outage
        self.stopping = threading.Event()

    def close(self) -> None:
        with self.lock:
            self.catalog.close()

    # -- samples -------------------------------------------------------------
    @_locked
    def add_samples(self, provider: str, samples: Iterable[Sample], source: str = "probe",
                    error: str | None = None) -> None:
        self.catalog.health.record_samples(provider, samples, source=source, error=error)

    @_locked
    def samples(self, provider: str, since: float) -> list[Sample]:
        return self.catalog.health.samples(provider, since, requests_only=True)

    @_locked
    def prune_samples(self, before: float) -> None:
        self.catalog.health.prune_samples(before)

    # -- provider state ------------------------------------------------------
    @_locked
    def set_health(self, provider: str, health: Health, down_since: float | None,
                   status: str | None = None) -> None:
        self.catalog.health.set_verdict(provider, status or health.status, p50=health.p50,
                                        p95=health.p95, error_rate=health.error_rate,
                                        down_since=down_since)

    @_locked
    def health(self) -> dict[str, ProviderHealth]:
        return self.catalog.health.verdicts()

    @_locked
    def forget_provider(self, provider: str) -> None:
        self.catalog.health.forget(provider)

    # -- counters --------------------------------------------------------------
    @_locked
    def add_counter(self, name: str, amount: float) -> None:
        self.catalog.health.add_counter(name, amount)

    @_locked
    def counters(self) -> dict[str, float]:
        return self.catalog.health.counters()


def read_health(path: str | Path) -> dict[str, ProviderHealth]:
    """Provider health as the daemon last wrote it; {} when there is no catalog yet.

    Checks for the file first: opening a :class:`Catalog` would create one.
    """
    if not str(path).startswith("postgres") and not Path(path).exists():
        return {}
    catalog = Catalog(path)
    try:
        return catalog.health.verdicts()
    finally:
        catalog.close()
