"""What storing, reading and moving bytes costs: price records and pure Decimal arithmetic.

The price records (:class:`TierPrice`, :class:`RegionPrice`, :class:`PriceTable`,
:class:`StorePrice`) are filled from the dated tables by ``omnifs.prices``, which
loads and validates them (and re-exports these classes). Here nothing is read: every
function takes prices and amounts and returns a :class:`~decimal.Decimal` in the
prices' currency. Request prices are per single request; a GB is 2^30 bytes; a month
is 30 days.

The base formulas: :func:`storage_cost`, :func:`request_cost`, :func:`egress_cost`,
:func:`retrieval_cost` and :func:`early_deletion` (the minimum-storage-duration
penalty). :func:`estimate` prices a migration's :class:`TransferSummary` with them.

The migration model, and what it leaves out:

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

Every item of an estimate is rounded half-up to 0.0001 of the currency and the
total is the sum of the rounded items (so the items always add up).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

GB = Decimal(2**30)
#: the rounding of every reported amount: 0.0001 of the currency
PLACES = Decimal("0.0001")
MONTH_DAYS = Decimal(30)
ZERO = Decimal(0)


class PriceError(ValueError):
    """Prices that do not exist or cannot be combined (a tier a table lacks). One line."""


@dataclass(frozen=True)
class TierPrice:
    """One storage tier in one region; request prices are per single request."""

    storage_per_gb_month: Decimal
    retrieval_per_gb: Decimal
    retrieval_requests: Decimal
    min_storage_days: int
    write_requests: Decimal
    read_requests: Decimal
    list_requests: Decimal


@dataclass(frozen=True)
class RegionPrice:
    continent: str
    egress_internet_per_gb: Decimal
    egress_same_continent_per_gb: Decimal
    egress_other_continent_per_gb: Decimal
    tiers: dict[str, TierPrice]


@dataclass(frozen=True)
class PriceTable:
    name: str
    version: str
    effective: date
    currency: str
    source: str
    list_page_size: int
    default_region: str
    default_tier: str
    regions: dict[str, RegionPrice]


def pick(choices, wanted: str, what: str, where: str) -> str:
    """``wanted`` among ``choices``, matched without regard to case; PriceError if absent."""
    for c in choices:
        if c.lower() == wanted.lower():
            return c
    close = difflib.get_close_matches(wanted, list(choices), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else (
        f" (known keys: {', '.join(sorted(choices))})")
    raise PriceError(f"{where}: no {what} {wanted!r}{hint}")


@dataclass(frozen=True)
class StorePrice:
    """Everything one store charges: a table's region and tier, overrides applied.

    ``cloud`` says which network the store is on ("aws-s3", "gcs", "azure-blob",
    or "own:NAME" for a store priced by no table): transfers inside one cloud and
    region are free, between its regions they cost the inter-region rate.
    """

    cloud: str
    region: str
    continent: str
    tier: str
    tier_price: TierPrice
    egress_internet_per_gb: Decimal
    egress_same_continent_per_gb: Decimal
    egress_other_continent_per_gb: Decimal
    list_page_size: int
    #: "aws-s3 2025.1 (2025-01-01)", "own" for a store no table prices, "+ override"
    provenance: str
    #: every tier of the region (``tier`` with the override applied), for objects
    #: stored in another tier than the store's own
    tiers: dict[str, TierPrice] = field(default_factory=dict)
    currency: str = "USD"
    #: whether copies may move between its tiers (no: ``disable = ["tiers"]`` in its
    #: provider table); the tiers still price what it holds
    tiering: bool = True

    def tier_of(self, name: str | None) -> TierPrice:
        """The prices of tier ``name`` (any case) here; None or "" is the store's own."""
        if not name or self.cloud.startswith("own:"):
            return self.tier_price
        return self.tiers[pick(self.tiers, name, "tier", f"{self.cloud} {self.region}")]


# -- the base formulas (unrounded) -----------------------------------------------------

def gb(nbytes: int | Decimal) -> Decimal:
    """Bytes as GB (2^30 bytes)."""
    return Decimal(nbytes) / GB


def rounded(amount: Decimal) -> Decimal:
    """``amount`` rounded half-up to 0.0001 of the currency."""
    return amount.quantize(PLACES, rounding=ROUND_HALF_UP)


def storage_cost(tier: TierPrice, nbytes: int, months: Decimal | int = 1) -> Decimal:
    """Keeping ``nbytes`` in ``tier`` for ``months`` (30-day months)."""
    return gb(nbytes) * tier.storage_per_gb_month * months


def request_cost(tier: TierPrice, *, reads: Decimal | int = 0, writes: Decimal | int = 0,
                 lists: Decimal | int = 0) -> Decimal:
    """``reads`` GET/HEAD, ``writes`` PUT/COPY and ``lists`` LIST requests in ``tier``."""
    return reads * tier.read_requests + writes * tier.write_requests + lists * tier.list_requests


def egress_per_gb(src: StorePrice, dst: StorePrice | None) -> Decimal:
    """What one GB moved from ``src`` to ``dst`` costs in transfer (billed by the source).

    ``dst`` None is a reader outside every cloud (the mount's machine): the
    internet rate.
    """
    if dst is None or src.cloud != dst.cloud:
        return src.egress_internet_per_gb
    if src.region == dst.region:
        return ZERO
    if src.continent == dst.continent:
        return src.egress_same_continent_per_gb
    return src.egress_other_continent_per_gb


def egress_cost(src: StorePrice, dst: StorePrice | None, nbytes: int | Decimal) -> Decimal:
    """Moving ``nbytes`` out of ``src`` to ``dst`` (None: to the internet)."""
    return gb(nbytes) * egress_per_gb(src, dst)


def retrieval_cost(tier: TierPrice, nbytes: int | Decimal,
                   requests: Decimal | int = 0) -> Decimal:
    """Reading ``nbytes`` back out of ``tier`` in ``requests`` reads (restores, for Glacier)."""
    return gb(nbytes) * tier.retrieval_per_gb + requests * tier.retrieval_requests


def early_deletion(tier: TierPrice, nbytes: int, age_days: float | Decimal) -> Decimal:
    """The minimum-duration penalty of removing ``nbytes`` of ``tier`` at ``age_days`` old.

    An object deleted, overwritten or moved to another tier before ``min_storage_days``
    is billed the storage of the remaining days, prorated on a 30-day month.
    """
    age = age_days if isinstance(age_days, Decimal) else Decimal(str(age_days))
    remaining = max(ZERO, Decimal(tier.min_storage_days) - age)
    return gb(nbytes) * tier.storage_per_gb_month * remaining / MONTH_DAYS


def early_deletion_fee(price: StorePrice, tier: str, nbytes: int, age_days: float) -> Decimal:
    """The unrounded fee for deleting ``nbytes`` of ``tier`` at ``age_days`` old."""
    return early_deletion(price.tier_of(tier), nbytes, age_days)


# -- a migration's estimate ---------------------------------------------------------------

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


def _list_requests(objects: int, price: StorePrice) -> Decimal:
    return request_cost(price.tier_price, lists=math.ceil(objects / price.list_page_size))


def estimate(summary: TransferSummary, src: StorePrice, dst: StorePrice) -> CostEstimate:
    """The itemised cost of ``summary`` from ``src`` to ``dst`` (see the module docstring)."""
    if summary.server_side and src.cloud != dst.cloud:
        raise ValueError("a server-side copy stays within one cloud")
    if src.currency != dst.currency:
        raise PriceError(f"prices in {src.currency} ({src.provenance}) and {dst.currency} "
                         f"({dst.provenance}) cannot be added up")
    s = summary
    egress = egress_cost(src, dst, s.bytes_read)
    src_requests = _list_requests(s.source_listed, src)
    retrieval = ZERO
    for r in s.reads:
        t = src.tier_of(r.tier)
        if not s.server_side:
            src_requests += request_cost(t, reads=r.objects)
        retrieval += retrieval_cost(t, r.bytes, r.objects)
    dst_requests = (_list_requests(s.destination_listed, dst)
                    + request_cost(dst.tier_price, writes=s.objects_written))
    storage = storage_cost(dst.tier_price, s.bytes_stored)
    early = sum((early_deletion_fee(src if d.side == "source" else dst, d.tier, d.bytes,
                                    d.age_days) for d in s.deletions), ZERO)
    return CostEstimate(
        currency=src.currency, source_egress=rounded(egress),
        source_requests=rounded(src_requests), destination_requests=rounded(dst_requests),
        destination_storage_per_month=rounded(storage), retrieval=rounded(retrieval),
        early_deletion=rounded(early), provenance=(src.provenance, dst.provenance))
