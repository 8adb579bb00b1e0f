"""What a transfer between two stores costs, from their prices (omnifs.prices).

Pure functions over :class:`~decimal.Decimal`: no I/O. A migration plan fills a
:class:`TransferSummary` from its inventory; :func:`estimate` returns the
itemised :class:`CostEstimate`.

The model, and what it leaves out:

* Egress: data leaving the source's cloud is billed at its internet rate (the
  first paid tier; free allowances and volume discounts are left out). Within
  one cloud, a copy inside one region is free and one between regions costs the
  same- or other-continent rate. Stores no table prices (MinIO, ``file://``)
  are each their own network, free unless ``[prices.NAME]`` says otherwise.
* Requests: one GET per object read from the source (none for a server-side
  copy), one PUT/COPY per object written (a multipart upload's parts are more
  requests; pass them in ``objects_written`` to count them), and one LIST per
  ``list_page_size`` objects listed on each side (``ceil(objects / page)``).
  Deletes are free on all three clouds.
* Retrieval: bytes (and, for S3 Glacier, restore requests) read out of a
  cool/cold/archive tier, at that tier's prices.
* Early deletion: an object deleted before its tier's minimum storage duration
  is billed for the remaining days, at the tier's storage price and a 30-day
  month.
* Destination storage: one month of ``bytes_stored`` in the destination's tier.

A GB is 2^30 bytes. Every item is rounded half-up to 0.0001 of the currency and
the total is the sum of the rounded items (so the items always add up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from .errors import InvalidInput
from .prices import StorePrice

GB = Decimal(2**30)
#: the rounding of every item: 0.0001 of the currency
PLACES = Decimal("0.0001")
MONTH_DAYS = Decimal(30)


@dataclass(frozen=True)
class TierRead:
    """Objects read from the source that are stored in one tier ("" = the store's own)."""

    tier: str
    objects: int
    bytes: int


@dataclass(frozen=True)
class Deletion:
    """Objects of one tier and age deleted from one side (a move's sources, --delete)."""

    side: Literal["source", "destination"]
    tier: str
    bytes: int
    age_days: float


@dataclass(frozen=True)
class TransferSummary:
    reads: tuple[TierRead, ...] = ()
    objects_written: int = 0
    source_listed: int = 0
    destination_listed: int = 0
    deletions: tuple[Deletion, ...] = ()
    #: bytes the destination holds after the transfer (for the monthly storage)
    bytes_stored: int = 0
    #: the store copies within itself (S3 CopyObject, GCS rewrite): no GET, no download
    server_side: bool = False

    @property
    def objects_read(self) -> int:
        return sum(r.objects for r in self.reads)

    @property
    def bytes_read(self) -> int:
        return sum(r.bytes for r in self.reads)


@dataclass(frozen=True)
class CostEstimate:
    currency: str
    source_egress: Decimal
    source_requests: Decimal
    destination_requests: Decimal
    destination_storage_per_month: Decimal
    retrieval: Decimal
    early_deletion: Decimal
    #: the price tables (and overrides) behind the figures, source then destination
    provenance: tuple[str, str]

    @property
    def one_off(self) -> Decimal:
        """Everything but the recurring storage."""
        return (self.source_egress + self.source_requests + self.destination_requests
                + self.retrieval + self.early_deletion)

    @property
    def total(self) -> Decimal:
        """The one-off costs plus the first month of destination storage."""
        return self.one_off + self.destination_storage_per_month

    def items(self) -> list[tuple[str, Decimal]]:
        return [("source egress", self.source_egress),
                ("source requests (list + get)", self.source_requests),
                ("destination requests (list + put)", self.destination_requests),
                ("destination storage per month", self.destination_storage_per_month),
                ("retrieval", self.retrieval), ("early deletion", self.early_deletion),
                ("total", self.total)]

    def as_dict(self) -> dict[str, str | list[str]]:
        """JSON-ready: amounts as strings, so no float rounds them."""
        out: dict[str, str | list[str]] = {
            k.split(" (")[0].replace(" ", "_"): str(v) for k, v in self.items()}
        out["currency"] = self.currency
        out["provenance"] = list(self.provenance)
        return out


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(PLACES, rounding=ROUND_HALF_UP)


def _gb(nbytes: int) -> Decimal:
    return Decimal(nbytes) / GB


def _list_requests(objects: int, price: StorePrice) -> Decimal:
    return Decimal(math.ceil(objects / price.list_page_size)) * price.tier_price.list_requests


def egress_per_gb(src: StorePrice, dst: StorePrice) -> Decimal:
    """What one GB moved from ``src`` to ``dst`` costs in transfer (billed by the source)."""
    if src.cloud != dst.cloud:
        return src.egress_internet_per_gb
    if src.region == dst.region:
        return Decimal(0)
    if src.continent == dst.continent:
        return src.egress_same_continent_per_gb
    return src.egress_other_continent_per_gb


def early_deletion_fee(price: StorePrice, tier: str, nbytes: int, age_days: float) -> Decimal:
    """The unrounded fee for deleting ``nbytes`` of ``tier`` at ``age_days`` old."""
    t = price.tier_of(tier)
    remaining = max(Decimal(0), Decimal(t.min_storage_days) - Decimal(str(age_days)))
    return _gb(nbytes) * t.storage_per_gb_month * remaining / MONTH_DAYS


def estimate(summary: TransferSummary, src: StorePrice, dst: StorePrice) -> CostEstimate:
    """The itemised cost of ``summary`` from ``src`` to ``dst`` (see the module docstring)."""
    if summary.server_side and src.cloud != dst.cloud:
        raise ValueError("a server-side copy stays within one cloud")
    if src.currency != dst.currency:
        raise InvalidInput(f"prices in {src.currency} ({src.provenance}) and {dst.currency} "
                           f"({dst.provenance}) cannot be added up")
    s = summary
    egress = _gb(s.bytes_read) * egress_per_gb(src, dst)
    src_requests = _list_requests(s.source_listed, src)
    retrieval = Decimal(0)
    for r in s.reads:
        t = src.tier_of(r.tier)
        if not s.server_side:
            src_requests += r.objects * t.read_requests
        retrieval += _gb(r.bytes) * t.retrieval_per_gb + r.objects * t.retrieval_requests
    dst_requests = (_list_requests(s.destination_listed, dst)
                    + s.objects_written * dst.tier_price.write_requests)
    storage = _gb(s.bytes_stored) * dst.tier_price.storage_per_gb_month
    early = sum((early_deletion_fee(src if d.side == "source" else dst, d.tier, d.bytes,
                                    d.age_days) for d in s.deletions), Decimal(0))
    return CostEstimate(
        currency=src.currency, source_egress=_round(egress), source_requests=_round(src_requests),
        destination_requests=_round(dst_requests),
        destination_storage_per_month=_round(storage), retrieval=_round(retrieval),
        early_deletion=_round(early), provenance=(src.provenance, dst.provenance))
