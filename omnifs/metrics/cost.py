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

#: the series :class:`CostCollector` exports
SERIES = ("omnifs_cost_usd_total", "omnifs_stored_bytes", "omnifs_storage_cost_usd_per_month")

#: seconds a sum of stored bytes is reused at least: it is not for every scrape
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


def stored_bytes(config) -> Callable[[], dict[str, int]]:
    """A function summing the bytes each provider stores, from the config's catalog."""
    from omnifs.catalog import Catalog

    def stored() -> dict[str, int]:
        cat = Catalog(config.catalog_target())
        try:
            return cat.replicas.stored_bytes()
        finally:
            cat.close()

    return stored


def cost_collector(config) -> CostCollector:
    """The cost counters of ``config``'s providers, storage summed from its catalog."""
    return CostCollector(prices_of(config), stored_bytes(config))


class CostCollector(Collector):
    """The cost counters and storage gauges, computed at each scrape.

    The stored bytes are a sum over every replica in the catalog (1-2 s for
    200,000 replicas on a loaded machine): never on the scrape's path. A
    scrape returns the last sum and, when it is older than ``STORAGE_TTL``
    (or 20 times what the last sum took), starts a new one in a thread; the
    storage gauges appear once the first sum is known.
    """

    def __init__(self, prices: dict[str, StorePrice],
                 stored: Callable[[], dict[str, int]] | None = None):
        self.prices = prices
        self._stored = stored
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._value: dict[str, int] | None = None
        self._every = STORAGE_TTL
        self._refreshing = False

    def stored(self) -> dict[str, int] | None:
        """The last sum of stored bytes per provider (None until one is known)."""
        if self._stored is None:
            return None
        with self._lock:
            if not self._refreshing and time.monotonic() - self._at > self._every:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="omnifs-stored-bytes",
                                 daemon=True).start()
            return self._value

    def _refresh(self) -> None:
        started = time.monotonic()
        value = None
        try:
            assert self._stored is not None
            value = self._stored()
        except Exception as e:  # noqa: BLE001 - a busy catalog: the last sum stands
            log.debug("metrics: stored bytes unavailable: %s", e)
        took = time.monotonic() - started
        with self._lock:
            if value is not None:
                self._value = value
            self._at = time.monotonic()
            self._every = max(STORAGE_TTL, 20 * took)
            self._refreshing = False

    def collect(self) -> Iterator:
        usd = CounterMetricFamily("omnifs_cost_usd", "Estimated dollars spent on a store "
                                  "(requests, egress, retrieval), from this process's requests",
                                  labels=["provider", "kind"])
        for (name, kind), amount in costs(self.prices, tally()).items():
            usd.add_metric([name, kind], float(amount))
        yield usd
        stored = self.stored()
        if stored is None:
            return
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
