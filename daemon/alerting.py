"""The daemon's alert and sample loops.

The alert loop: ``[alerts]`` thresholds against what the daemon measures.

Every ``[alerts] interval`` it reads its own /metrics registry (lag,
under-replicated files, store health and probe p95, store requests and
errors, storage cost) and the block cache's counters, and hands the values to
``omnifs.metrics.alerts.AlertBook``, which fires and resolves, logs and calls
the webhook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from omnifs.metrics.alerts import AlertBook, announce

if TYPE_CHECKING:
    from .main import Daemon


def _samples(d: Daemon) -> dict[tuple[str, tuple], float]:
    out: dict[tuple[str, tuple], float] = {}
    for metric in d.metrics.registry.collect():
        for s in metric.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Measure:
    """Alert values from one daemon, with what the rates need from the last reading."""

    def __init__(self, d: Daemon):
        self.d = d
        self._last_counts: dict[str, tuple[float, float]] = {}
        self._last_cache: tuple[int, int] | None = None

    def values(self) -> dict[tuple[str, str], float]:
        samples = _samples(self.d)
        out: dict[tuple[str, str], float] = {}
        for alert, metric in (("replication_lag", "omnifs_replication_lag_seconds"),
                              ("under_replicated", "omnifs_under_replicated_files"),
                              ("recovery_point", "omnifs_dr_recovery_point_seconds")):
            if (metric, ()) in samples:
                out[(alert, "")] = samples[(metric, ())]
        requests: dict[str, float] = {}
        errors: dict[str, float] = {}
        monthly = 0.0
        for (name, labels), value in samples.items():
            lab = dict(labels)
            p = lab.get("provider", "")
            if name == "omnifs_provider_up":
                out[("provider_down", p)] = 1.0 - value
            elif name == "omnifs_provider_latency_seconds" and lab.get("quantile") == "0.95":
                if not math.isnan(value):
                    out[("p95_latency", p)] = value
            elif name == "omnifs_store_requests_total":
                requests[p] = requests.get(p, 0.0) + value
            elif name == "omnifs_store_errors_total" and lab.get("error") != "not_found":
                errors[p] = errors.get(p, 0.0) + value
            elif name == "omnifs_storage_cost_usd_per_month":
                monthly += value
        if self.d.config.metrics.enabled:
            out[("monthly_cost", "")] = monthly
        for p, n in requests.items():
            last_n, last_e = self._last_counts.get(p, (0.0, 0.0))
            e = errors.get(p, 0.0)
            if n > last_n:
                out[("error_rate", p)] = (e - last_e) / (n - last_n)
            self._last_counts[p] = (n, e)
        self._cache_ratio(out)
        return out

    def _cache_ratio(self, out: dict[tuple[str, str], float]) -> None:
        cache = self.d.cache
        if cache is None:
            return
        st = cache.stats()
        if self._last_cache is not None:
            hits, misses = st.hits - self._last_cache[0], st.misses - self._last_cache[1]
            if hits + misses > 0:
                out[("cache_hit_ratio", "")] = hits / (hits + misses)
        self._last_cache = (st.hits, st.misses)


async def alert_loop(d: Daemon) -> None:
    """Evaluate the thresholds until cancelled (nothing to do when none is configured)."""
    settings = d.config.metrics.alerts
    if not settings.thresholds():
        return
    d.alerts = book = AlertBook(settings, clock=d.clock)
    measure = Measure(d)
    while True:
        values = await trio.to_thread.run_sync(measure.values)
        announce(book.update(values), settings)
        await trio.sleep(settings.interval)


async def sample_loop(d: Daemon) -> None:
    """Append the daemon's store counters to the local sample store every
    ``[metrics] sample_interval`` (``omnifs metrics compare`` reads them)."""
    from omnifs.metrics import samples

    m = d.config.metrics
    if not m.enabled:
        return
    while True:
        await trio.sleep(m.sample_interval)
        await trio.to_thread.run_sync(samples.append, d.config.cache_dir, "daemon")
