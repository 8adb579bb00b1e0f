"""This month's estimated cost, per store, tier and prefix, with the inputs behind it.

* **storage**: a whole month of what each store holds now (every synced copy of
  each file's current version, in its tier), at the tier's price per GB-month;
* **requests** and **egress**: what the omnifs processes asked of each store since
  the first of the month (``cat.usage``, written by omnifs/usage_log.py): GET and
  HEAD at the store's read-request price, PUT and COPY at its write-request price,
  LIST at its list price (DELETE is free), each at the store's own tier's prices;
  the bytes downloaded (``bytes_in`` of GETs) at its internet egress rate, since
  they leave the cloud for the host omnifs runs on;
* **retrieval**: the bytes the mount served of each file this month (access
  statistics, block-cache hits included, so an upper bound), at the retrieval price
  of the file's cheapest copy to read, and the retrieval request fee per read.

Requests and egress are counted per store, not per file: they appear on the store's
row, on its own tier's row, and not among the prefixes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from omnifs.policy.costs import (
    ZERO,
    PriceError,
    StorePrice,
    egress_cost,
    request_cost,
    retrieval_cost,
    storage_cost,
)
from omnifs.policy.tiering import needs_restore

from ..catalog import Catalog, StoredFile
from ..catalog.usage import Counts
from ..config import Config
from .inputs import Month, store_prices, stored_files

#: ops priced as read, write and list requests (delete is free on the three clouds)
READ_OPS, WRITE_OPS, LIST_OPS = ("get", "head"), ("put", "copy"), ("list",)
#: prefixes listed (the most costly); the rest are summed in one row
TOP_PREFIXES = 10


@dataclass
class Line:
    """One row of the bill: what was counted and what it costs."""

    objects: int = 0
    bytes: int = 0
    storage: Decimal = ZERO
    requests: int = 0
    request_cost: Decimal = ZERO
    egress_bytes: int = 0
    egress: Decimal = ZERO
    retrieval_bytes: int = 0
    retrieval: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.storage + self.request_cost + self.egress + self.retrieval

    def add(self, other: Line) -> None:
        for name in ("objects", "bytes", "storage", "requests", "request_cost",
                     "egress_bytes", "egress", "retrieval_bytes", "retrieval"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Bill:
    month: Month
    currency: str
    #: (store, tier) -> its line; requests and egress on the store's own tier
    tiers: dict[tuple[str, str], Line] = field(default_factory=dict)
    #: top-level directory -> storage and retrieval of the files under it
    prefixes: dict[str, Line] = field(default_factory=dict)
    #: store -> op -> (requests, errors, bytes_in, bytes_out), as counted
    usage: dict[str, dict[str, Counts]] = field(default_factory=dict)
    #: stores no price table prices (tiers their table lacks): left out, named here
    unpriced: list[str] = field(default_factory=list)

    def by_store(self) -> dict[str, Line]:
        out: dict[str, Line] = {}
        for (store, _), line in sorted(self.tiers.items()):
            out.setdefault(store, Line()).add(line)
        return out

    def total(self) -> Line:
        out = Line()
        for line in self.tiers.values():
            out.add(line)
        return out

    def top_prefixes(self, n: int = TOP_PREFIXES) -> list[tuple[str, Line]]:
        ranked = sorted(self.prefixes.items(), key=lambda kv: (-kv[1].total, kv[0]))
        return ranked[:n]


def prefix_of(path: str) -> str:
    """The top-level directory a path is under ("/" for a file at the root)."""
    parts = path.strip("/").split("/")
    return f"/{parts[0]}" if len(parts) > 1 else "/"


def _tier_name(price: StorePrice, tier: str) -> str:
    return tier or price.tier


def _reader(price_of: Mapping[str, StorePrice], replicas: Mapping[str, str]) -> tuple[str, str]:
    """The copy whose reads cost least (readable without a restore first)."""
    def key(item: tuple[str, str]) -> tuple[bool, Decimal, str]:
        store, tier = item
        p = price_of[store]
        t = p.tier_of(tier)
        return (needs_restore(p.cloud, _tier_name(p, tier)), t.retrieval_per_gb, store)

    return min(((s, t) for s, t in replicas.items() if s in price_of), key=key)


def compute(files: Iterable[tuple[str, StoredFile]], usage: dict[str, dict[str, Counts]],
            prices: Mapping[str, StorePrice], month: Month) -> Bill:
    """The month's bill of ``files`` (path, file: reads counted since the month's first
    day) and ``usage`` (``cat.usage.totals`` of the month so far) at ``prices``."""
    currency = next(iter(prices.values())).currency if prices else "USD"
    bill = Bill(month, currency, usage=usage)
    unpriced: set[str] = set()
    for path, f in files:
        prefix = bill.prefixes.setdefault(prefix_of(path), Line())
        for store, tier in f.replicas.items():
            p = prices.get(store)
            if p is None:
                continue
            try:
                price = p.tier_of(tier)
            except PriceError:
                unpriced.add(f"{store} ({tier})")
                continue
            line = bill.tiers.setdefault((store, _tier_name(p, tier)), Line())
            cost = storage_cost(price, f.size)
            for target in (line, prefix):
                target.objects += 1
                target.bytes += f.size
                target.storage += cost
        if f.bytes_read or f.reads:
            try:
                store, tier = _reader(prices, f.replicas)
                price = prices[store].tier_of(tier)
            except (ValueError, PriceError):  # no priced copy
                continue
            cost = retrieval_cost(price, f.bytes_read, f.reads)
            if cost:
                line = bill.tiers.setdefault((store, _tier_name(prices[store], tier)), Line())
                for target in (line, prefix):
                    target.retrieval_bytes += f.bytes_read
                    target.retrieval += cost
    for store, ops in usage.items():
        p = prices.get(store)
        if p is None:
            continue
        line = bill.tiers.setdefault((store, p.tier), Line())
        count = {name: sum(ops.get(op, (0, 0, 0, 0))[0] for op in group)
                 for name, group in (("reads", READ_OPS), ("writes", WRITE_OPS),
                                     ("lists", LIST_OPS))}
        line.requests += sum(c[0] for c in ops.values())
        line.request_cost += request_cost(p.tier_price, **count)
        downloaded = ops.get("get", (0, 0, 0, 0))[2]
        line.egress_bytes += downloaded
        line.egress += egress_cost(p, None, downloaded)
    bill.unpriced = sorted(unpriced)
    return bill


def month_bill(cat: Catalog, config: Config, now: float | None = None) -> Bill:
    """The current UTC month's bill of the catalog's files and counted requests."""
    month = Month.of(time.time() if now is None else now)
    return compute(stored_files(cat, month.first_day),
                   cat.usage.totals(month.first_day, month.today), store_prices(config), month)
