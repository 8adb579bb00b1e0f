"""``--max-cost``: refusing a plan priced above it, and stopping a run before it exceeds it.

Before the run: the plan's estimate total against the limit (a plan without
an estimate cannot promise anything and is refused). While it runs: the
usage counted so far (all runs of the migration), priced by
:func:`.costing.usage_cost`, plus what the objects in flight are expected to
cost, plus the next object's expected cost, must stay within the limit.
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal
from typing import Any

from omnifs.prices import PriceOverride
from omnifs.providers import InvalidInput, ProviderSettings

from .costing import usage_cost

SRC, DST = "src", "dst"

Usage = dict[str, dict[str, float]]


def check_estimate(estimate: dict[str, Any] | None, limit: Decimal) -> None:
    """InvalidInput (one line) when the plan's estimate exceeds ``limit`` or is missing."""
    if estimate is None:
        raise InvalidInput("the plan has no cost estimate, so --max-cost cannot be kept: "
                           "make the plan again with prices for both stores")
    total = Decimal(str(estimate["total"]))
    if total > limit:
        raise InvalidInput(f"estimated {total} {estimate.get('currency', 'USD')} exceeds "
                           f"--max-cost {limit}: nothing done")


def expected_usage(action: str, size: int, *, server_side: bool, move: bool) -> Usage:
    """The usage one item adds, for pricing it before it starts."""
    src: Counter[str] = Counter()
    dst: Counter[str] = Counter()
    if action in ("copy", "overwrite"):
        if server_side:
            dst["copy_requests"] += 1
        else:
            src.update(get_requests=1, bytes_out=size)
            dst.update(put_requests=1, bytes_in=size)
    if action in ("overwrite", "delete"):
        dst["copy_requests"] += 1  # the old destination object kept aside
    if action == "delete":
        dst["delete_requests"] += 1
    if move and action != "delete":
        src.update(head_requests=1, delete_requests=1)
        dst["head_requests"] += 1
    return {SRC: dict(src), DST: dict(dst)}


def merged(*usages: Usage) -> Usage:
    out: Usage = {}
    for u in usages:
        for side, kinds in u.items():
            row = out.setdefault(side, {})
            for kind, n in kinds.items():
                row[kind] = row.get(kind, 0) + n
    return out


class Budget:
    """Reserves each item's expected usage before it starts; ``release`` when it ends.

    The usage spent, in flight and next is priced in one sum, so objects too cheap
    to show at 0.0001 of the currency one by one still add up.
    """

    def __init__(self, limit: Decimal, src: ProviderSettings, dst: ProviderSettings,
                 overrides: dict[str, PriceOverride]):
        self.limit = limit
        self._sides = (src, dst, overrides)
        self._lock = threading.Lock()
        self._inflight: Usage = {}

    def cost(self, usage: Usage) -> Decimal:
        return usage_cost(usage, *self._sides).total

    def reserve(self, spent: Usage, item: Usage) -> str | None:
        """None when ``item`` fits (it is then reserved), else why the run stops (one line)."""
        with self._lock:
            so_far = self.cost(merged(spent, self._inflight))
            total = self.cost(merged(spent, self._inflight, item))
            if total > self.limit:
                return (f"stopped before exceeding --max-cost {self.limit}: spent "
                        f"{so_far}, the next object would bring it to {total}; "
                        "the objects left stay pending")
            self._inflight = merged(self._inflight, item)
        return None

    def release(self, item: Usage) -> None:
        with self._lock:
            self._inflight = merged(self._inflight, _negated(item))


def _negated(u: Usage) -> Usage:
    return {side: {kind: -n for kind, n in kinds.items()} for side, kinds in u.items()}
