"""Estimated dollars per store, from the requests and bytes this process measured.

``omnifs_cost_usd_total{provider,kind}`` with ``kind`` one of ``requests``,
``egress`` (bytes read out of the store to this machine, at the internet
rate), ``retrieval`` (the tier's per-GB read fee); and two gauges,
``omnifs_stored_bytes{provider}`` (synced replicas in the catalog) and
``omnifs_storage_cost_usd_per_month{provider}``. The counts are
``providers.metered.tally()``; the prices are the shared tables
(``omnifs.prices.store_price``, ``policy.costs``), so the cost report and
these counters never disagree on a rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from omnifs.errors import InvalidInput
from omnifs.policy.costs import (
    StorePrice,
    egress_cost,
    request_cost,
    retrieval_cost,
    storage_cost,
)
from omnifs.prices import store_price
from omnifs.providers import parse_uri
from omnifs.providers.metered import tally

log = logging.getLogger("omnifs.metrics")

#: seconds a storage total is reused: a SUM over every replica is not for every scrape
STORAGE_TTL = 10.0


def prices_of(config) -> dict[str, StorePrice]:
    """Each configured provider's prices (a store that cannot be priced is left out)."""
    out: dict[str, StorePrice] = {}
    for name, s in config.providers.items():
        table = config.provider_tables.get(name, {})
        try:
            out[name] = store_price(parse_uri(s.uri).scheme, s.region, table.get("tier"),
                                    config.prices.get(name), name)
        except InvalidInput as e:
            log.warning("metrics: no prices for %s: %s", name, e)
    return out


def costs(prices: dict[str, StorePrice],
          counts: dict[tuple[str, str], tuple[int, int, int, int]]
          ) -> dict[tuple[str, str], Decimal]:
    """(provider, kind) -> dollars for ``counts`` (a ``tally()``)."""
    out: dict[tuple[str, str], Decimal] = {}
    for name, price in prices.items():
        def n(op: str, i: int = 0, name: str = name) -> int:
            return counts.get((name, op), (0, 0, 0, 0))[i]

        tier = price.tier_price
        read_bytes = sum(n(op, 2) for op in ("get", "head", "list"))
        out[(name, "requests")] = request_cost(
            tier, reads=n("get") + n("head"), writes=n("put") + n("copy"), lists=n("list"))
        out[(name, "egress")] = egress_cost(price, None, read_bytes)
        out[(name, "retrieval")] = retrieval_cost(tier, read_bytes)
    return out


class CostCollector(Collector):
    """The cost counters and storage gauges, computed at each scrape."""

    def __init__(self, prices: dict[str, StorePrice],
                 stored: Callable[[], dict[str, int]] | None = None):
        self.prices = prices
        self._stored = stored
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] = (float("-inf"), {})

    def stored(self) -> dict[str, int]:
        if self._stored is None:
            return {}
        with self._lock:
            at, value = self._cached
            if time.monotonic() - at > STORAGE_TTL:
                try:
                    value = self._stored()
                except Exception as e:  # noqa: BLE001 - a busy catalog: the last total stands
                    log.debug("metrics: stored bytes unavailable: %s", e)
                self._cached = (time.monotonic(), value)
            return value

    def collect(self) -> Iterator:
        usd = CounterMetricFamily("omnifs_cost_usd", "Estimated dollars spent on a store "
                                  "(requests, egress, retrieval), from this process's requests",
                                  labels=["provider", "kind"])
        for (name, kind), amount in costs(self.prices, tally()).items():
            usd.add_metric([name, kind], float(amount))
        yield usd
        stored = self.stored()
        size = GaugeMetricFamily("omnifs_stored_bytes", "Bytes of synced replicas on a store",
                                 labels=["provider"])
        monthly = GaugeMetricFamily("omnifs_storage_cost_usd_per_month",
                                    "Estimated dollars a month for what a store holds",
                                    labels=["provider"])
        for name, price in self.prices.items():
            nbytes = int(stored.get(name, 0))
            size.add_metric([name], nbytes)
            monthly.add_metric([name], float(storage_cost(price.tier_price, nbytes)))
        yield size
        yield monthly
