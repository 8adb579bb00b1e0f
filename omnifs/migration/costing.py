"""A migration plan's cost estimate: its summary priced by omnifs.policy.costs.

The plan's summary (omnifs.migration.plan.summarize) says what is read, written
and deleted per tier; this module turns it into a :class:`~omnifs.policy.costs.TransferSummary`
and prices it with the two stores' prices (omnifs.prices, with the config's
``[prices.NAME]`` overrides).

The plan does not record objects' ages, so early-deletion fees assume every
replaced or deleted object is new: the estimate is an upper bound there.

:func:`usage_cost` prices what a run counted (``cat.migrations.usage``) with the
same tables, for the report's estimated-versus-actual cost.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from omnifs.policy.costs import (
    GB,
    PLACES,
    CostEstimate,
    Deletion,
    PriceError,
    TierRead,
    TransferSummary,
    egress_per_gb,
    estimate,
)
from omnifs.prices import PriceOverride, StorePrice, store_price
from omnifs.providers import InvalidInput, ProviderSettings

#: the summary's name for objects with no tier (local files)
NO_TIER = "-"


def _tier(name: str) -> str:
    return "" if name == NO_TIER else name


def transfer_summary(summary: dict[str, Any], *, server_side: bool) -> TransferSummary:
    """What ``summary`` (a plan's) reads, writes, lists, deletes and stores."""
    copy, over, skip, delete = (summary[a] for a in ("copy", "overwrite", "skip", "delete"))
    reads: dict[str, list[int]] = {}
    for row in (copy, over):
        for tier, n in row["source_tiers"].items():
            acc = reads.setdefault(_tier(tier), [0, 0])
            acc[0] += n["objects"]
            acc[1] += n["bytes"]
    deletions = [Deletion("destination", _tier(t), n["bytes"], 0.0)
                 for row in (over, delete) for t, n in row["destination_tiers"].items()]
    deletions += [Deletion("source", _tier(t), n["bytes"], 0.0)
                  for t, n in summary["delete_source"]["source_tiers"].items()]
    return TransferSummary(
        reads=tuple(TierRead(t, o, b) for t, (o, b) in sorted(reads.items())),
        objects_written=copy["objects"] + over["objects"],
        source_listed=copy["objects"] + over["objects"] + skip["objects"],
        destination_listed=over["objects"] + skip["objects"] + delete["objects"],
        deletions=tuple(deletions),
        bytes_stored=copy["bytes"] + over["bytes"] + skip["bytes"],
        server_side=server_side)


def price_of(settings: ProviderSettings, overrides: dict[str, PriceOverride]) -> StorePrice:
    """The prices of the store ``settings`` configure; InvalidInput (one line) when the
    tables cannot price it."""
    scheme = settings.uri.split("://", 1)[0]
    try:
        return store_price(scheme, settings.region, None, overrides.get(settings.name),
                           settings.name)
    except PriceError as e:
        raise InvalidInput(str(e)) from None


def plan_estimate(summary: dict[str, Any], src: ProviderSettings, dst: ProviderSettings,
                  overrides: dict[str, PriceOverride]) -> CostEstimate:
    """The estimated cost of a plan from ``src`` to ``dst`` (one store: server-side)."""
    src_price, dst_price = price_of(src, overrides), price_of(dst, overrides)
    same = src.name == dst.name and src.uri == dst.uri
    try:
        return estimate(transfer_summary(summary, server_side=same), src_price, dst_price)
    except PriceError as e:
        raise InvalidInput(str(e)) from None


def _count(side: dict[str, float], *kinds: str) -> Decimal:
    return sum((Decimal(str(side.get(k, 0))) for k in kinds), Decimal(0))


def _requests(side: dict[str, float], price: StorePrice) -> Decimal:
    t = price.tier_price
    return (_count(side, "get_requests", "head_requests") * t.read_requests
            + _count(side, "put_requests", "copy_requests") * t.write_requests
            + _count(side, "list_requests") * t.list_requests)


def usage_cost(usage: dict[str, dict[str, float]], src: ProviderSettings,
               dst: ProviderSettings, overrides: dict[str, PriceOverride], *,
               bytes_stored: int | None = None) -> CostEstimate:
    """What a run actually spent, its counters priced with :func:`plan_estimate`'s tables.

    ``usage`` is ``cat.migrations.usage(mid)``: ``{"src"|"dst": {kind: amount}}``.
    Requests: GET and HEAD at the read price, PUT and server-side COPY at the write
    price, LIST per request; deletes are free. Egress: the source's ``bytes_out`` at the
    source-to-destination rate, plus the destination's ``bytes_out`` (reading copies back
    to verify them) at the destination-to-source rate. Retrieval: the source's
    ``bytes_out`` and GETs at the store's own tier (the counters do not say which tier a
    read came from). Storage: one month of ``bytes_stored`` (default: the destination's
    ``bytes_in``). Early deletion is not counted: the plan's estimate of it stands.
    """
    sp, dp = price_of(src, overrides), price_of(dst, overrides)
    if sp.currency != dp.currency:
        raise InvalidInput(f"prices in {sp.currency} ({sp.provenance}) and {dp.currency} "
                           f"({dp.provenance}) cannot be added up")
    s, d = usage.get("src", {}), usage.get("dst", {})
    egress = (_count(s, "bytes_out") * egress_per_gb(sp, dp)
              + _count(d, "bytes_out") * egress_per_gb(dp, sp)) / GB
    retrieval = (_count(s, "bytes_out") / GB * sp.tier_price.retrieval_per_gb
                 + _count(s, "get_requests") * sp.tier_price.retrieval_requests)
    stored = _count(d, "bytes_in") if bytes_stored is None else Decimal(bytes_stored)
    storage = stored / GB * dp.tier_price.storage_per_gb_month
    return CostEstimate(
        currency=sp.currency, source_egress=_rounded(egress),
        source_requests=_rounded(_requests(s, sp)),
        destination_requests=_rounded(_requests(d, dp)),
        destination_storage_per_month=_rounded(storage), retrieval=_rounded(retrieval),
        early_deletion=Decimal("0.0000"), provenance=(sp.provenance, dp.provenance))


def _rounded(amount: Decimal) -> Decimal:
    return amount.quantize(PLACES, rounding=ROUND_HALF_UP)
