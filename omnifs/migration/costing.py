"""A migration plan's cost estimate: its summary priced by omnifs.cost.

The plan's summary (omnifs.migration.plan.summarize) says what is read, written
and deleted per tier; this module turns it into a :class:`~omnifs.cost.TransferSummary`
and prices it with the two stores' prices (omnifs.prices, with the config's
``[prices.NAME]`` overrides).

The plan does not record objects' ages, so early-deletion fees assume every
replaced or deleted object is new: the estimate is an upper bound there.
"""

from __future__ import annotations

from typing import Any

from omnifs.cost import CostEstimate, Deletion, TierRead, TransferSummary, estimate
from omnifs.prices import PriceOverride, StorePrice, store_price
from omnifs.providers import ProviderSettings

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
    """The prices of the store ``settings`` configure."""
    scheme = settings.uri.split("://", 1)[0]
    return store_price(scheme, settings.region, None, overrides.get(settings.name),
                       settings.name)


def plan_estimate(summary: dict[str, Any], src: ProviderSettings, dst: ProviderSettings,
                  overrides: dict[str, PriceOverride]) -> CostEstimate:
    """The estimated cost of a plan from ``src`` to ``dst`` (one store: server-side)."""
    src_price, dst_price = price_of(src, overrides), price_of(dst, overrides)
    same = src.name == dst.name and src.uri == dst.uri
    return estimate(transfer_summary(summary, server_side=same), src_price, dst_price)
