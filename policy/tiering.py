"""What a file costs per month where it is, and what moving it saves: tiers and placement.

Pure arithmetic over the price records of :mod:`.costs`, in exact Decimals (the
:class:`Placer` that serves the recommendation engine screens on floats first):

* :func:`usage_from_history`: a file's expected reads and bytes read per month
  from its per-day read counts over a window;
* :class:`Rates` / :func:`monthly_cost`: a month of storage plus the reads
  expected (read requests, retrieval per GB and per request, egress of the bytes
  read to the reader, the mount's machine: the internet rate);
* :func:`tier_move`: a tier transition's one-time cost (the transition request,
  billed as a write request in the new tier; the old tier's early-deletion
  penalty; the old tier's retrieval when leaving a cold or archive tier) and
  its monthly saving; :func:`break_even_days` (none when nothing is saved);
* :func:`cheapest_placement`: the least-cost set of ``copies`` allowed stores
  for one file, the saving against its current holders, and the one-time cost of
  moving (egress from a current holder, its read and retrieval, a write in each
  new store, the early-deletion penalty of each copy dropped);
* :func:`read_latency` / :func:`needs_restore`: what a read of a tier waits for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from .costs import (
    GB,
    MONTH_DAYS,
    ZERO,
    StorePrice,
    TierPrice,
    early_deletion,
    egress_cost,
    egress_per_gb,
    request_cost,
    retrieval_cost,
    storage_cost,
)
from .tiers import CLASSES, tier_class

_GB = float(GB)
#: money as exact Decimals, or as floats for a quick screen
Amount = TypeVar("Amount", float, Decimal)
#: the float screens let through what is within this factor of the line
_MARGIN = 1.000001
#: tiers a read must first restore (rehydrate), by cloud; GCS ARCHIVE reads at once
_RESTORE = {
    "GLACIER": "3-5 hours (S3 restore, standard retrieval)",
    "DEEP_ARCHIVE": "up to 12 hours (S3 restore, standard retrieval)",
    "ARCHIVE": "up to 15 hours (Azure rehydration, standard priority)",
}
ONLINE = "milliseconds"


def needs_restore(cloud: str, tier: str) -> bool:
    """A copy in ``tier`` cannot be read until restored (S3 GLACIER/DEEP_ARCHIVE, Azure Archive)."""
    return cloud != "gcs" and tier.upper() in _RESTORE


def read_latency(cloud: str, tier: str) -> str:
    """The expected wait before the first byte of a read from ``tier``, in words."""
    return _RESTORE[tier.upper()] if needs_restore(cloud, tier) else ONLINE


@dataclass(frozen=True)
class Usage:
    """Expected reads of one file per 30-day month, and the bytes they read."""

    reads: Decimal = ZERO
    bytes: Decimal = ZERO


def usage_from_history(reads: Sequence[int], bytes_read: Sequence[int],
                       window_days: int | None = None) -> Usage:
    """The monthly rate of a per-day history (``window_days`` defaults to its length)."""
    days = window_days if window_days is not None else len(reads)
    if days <= 0:
        return Usage()
    return Usage(Decimal(sum(reads)) * MONTH_DAYS / days,
                 Decimal(sum(bytes_read)) * MONTH_DAYS / days)


@dataclass(frozen=True)
class Rates:
    """A tier's monthly cost per stored GB, per read and per GB read (egress included).

    Kept per GB, where prices are short decimals (a price per byte has 28 digits,
    and multiplying those is several times slower).
    """

    per_gb: Decimal
    per_read: Decimal
    per_read_gb: Decimal

    @classmethod
    def of(cls, tier: TierPrice, egress_per_gb: Decimal = ZERO) -> Rates:
        return cls(per_gb=tier.storage_per_gb_month,
                   per_read=request_cost(tier, reads=1) + retrieval_cost(tier, 0, 1),
                   per_read_gb=tier.retrieval_per_gb + egress_per_gb)

    def storage(self, size: int) -> Decimal:
        return size * self.per_gb / GB

    def reading(self, usage: Usage) -> Decimal:
        if not usage.reads and not usage.bytes:
            return ZERO
        return usage.reads * self.per_read + usage.bytes * self.per_read_gb / GB

    def monthly(self, size: int, usage: Usage) -> Decimal:
        return self.storage(size) + self.reading(usage)


def monthly_cost(tier: TierPrice, size: int, usage: Usage,
                 egress_per_gb: Decimal = ZERO) -> Decimal:
    """A month of ``size`` bytes in ``tier`` and the reads of ``usage`` (their egress at
    ``egress_per_gb``): storage + read requests + retrieval + egress."""
    return (storage_cost(tier, size) + request_cost(tier, reads=usage.reads)
            + retrieval_cost(tier, usage.bytes, usage.reads)
            + usage.bytes / GB * egress_per_gb)


def break_even_days(one_time: Decimal, saving_per_month: Decimal) -> Decimal | None:
    """Days until ``saving_per_month`` repays ``one_time``; None when nothing is saved."""
    if saving_per_month <= 0:
        return None
    return one_time * MONTH_DAYS / saving_per_month


@dataclass(frozen=True)
class Move:
    one_time: Decimal
    saving_per_month: Decimal

    @property
    def break_even_days(self) -> Decimal | None:
        return break_even_days(self.one_time, self.saving_per_month)


def transition_cost(old: TierPrice, new: TierPrice, size: int, age_days: float | Decimal,
                    *, retrieve: bool) -> Decimal:
    """One-time: a write request in ``new``, ``old``'s early deletion, and (``retrieve``)
    reading the object out of ``old``."""
    cost = request_cost(new, writes=1) + early_deletion(old, size, age_days)
    if retrieve:
        cost += retrieval_cost(old, size, 1)
    return cost


def leaves_cold(tier: str) -> bool:
    """Moving out of ``tier`` retrieves the object (a cold or archive tier)."""
    return tier_class(tier) in ("cold", "archive")


def tier_move(price: StorePrice, old: str, new: str, size: int, age_days: float | Decimal,
              usage: Usage) -> Move:
    """Moving one object of ``size`` bytes, ``age_days`` old, from tier ``old`` to ``new``."""
    o, n = price.tier_of(old), price.tier_of(new)
    egress = egress_per_gb(price, None)
    saving = monthly_cost(o, size, usage, egress) - monthly_cost(n, size, usage, egress)
    return Move(transition_cost(o, n, size, age_days, retrieve=leaves_cold(old)), saving)


def class_tiers(price: StorePrice) -> dict[str, str]:
    """The store's first tier of each access class, in the table's order (none when its
    tiers are disabled: then no move has a tier to go to)."""
    if not price.tiering:
        return {}
    out: dict[str, str] = {}
    for name in price.tiers:
        cls = tier_class(name)
        if cls is not None:
            out.setdefault(cls, name)
    return {c: out[c] for c in CLASSES if c in out}


# -- placement ---------------------------------------------------------------------------

class PlacementMove(NamedTuple):
    stores: tuple[str, ...]
    current: tuple[str, ...]
    #: the new set's monthly cost and the current one's
    cost_per_month: Decimal
    current_per_month: Decimal
    one_time: Decimal

    @property
    def saving_per_month(self) -> Decimal:
        return self.current_per_month - self.cost_per_month

    @property
    def break_even_days(self) -> Decimal | None:
        return break_even_days(self.one_time, self.saving_per_month)


def set_cost(storage: Mapping[str, Amount], reading: Mapping[str, Amount],
             chosen: Iterable[str]) -> Amount:
    """A month of a file held by ``chosen`` (one store at least): each stores it, the
    cheapest to read serves the reads."""
    first, *rest = chosen
    total = storage[first]
    for n in rest:
        total += storage[n]
    return total + min(reading[n] for n in (first, *rest))


def least_cost_set(storage: Mapping[str, Any], reading: Mapping[str, Any], copies: int,
                   prefer: Sequence[str] = ()) -> tuple[str, ...]:
    """The ``copies`` candidates whose :func:`set_cost` is least (ties: ``prefer``, then order).

    ``storage`` and ``reading`` (Decimals, or floats): each candidate's monthly cost of
    holding the file and of serving its reads. Each candidate in turn serves the reads;
    the others are the cheapest to store (the least set is among these).
    """
    rank: dict[str, tuple[int, int]] = {
        n: (0 if n in prefer else 1, i) for i, n in enumerate(storage)}
    by_storage: list[str] = sorted(storage, key=lambda n: (storage[n], rank[n]))
    if not any(reading.values()):
        return tuple(sorted(by_storage[:copies]))
    best: tuple[str, ...] = ()
    best_cost: Any = None
    best_rank: list[tuple[int, int]] = []
    for reader in storage:
        chosen = (reader, *[n for n in by_storage if n != reader][:copies - 1])
        cost = set_cost(storage, reading, chosen)
        ranks = sorted(rank[n] for n in chosen)
        if best_cost is None or (cost, ranks) < (best_cost, best_rank):
            best, best_cost, best_rank = chosen, cost, ranks
    return tuple(sorted(best))


def move_in_cost(src: StorePrice, src_tier: TierPrice, dst: StorePrice, size: int) -> Decimal:
    """Copying one object in: egress ``src`` -> ``dst``, a read (and retrieval) at ``src``,
    a write at ``dst``."""
    return (egress_cost(src, dst, size) + request_cost(src_tier, reads=1)
            + retrieval_cost(src_tier, size, 1) + request_cost(dst.tier_price, writes=1))


class Placer:
    """:func:`cheapest_placement` over fixed ``stores``, each tier's rates worked out once."""

    def __init__(self, stores: Mapping[str, StorePrice]):
        self.stores = stores
        self._rates: dict[tuple[str, str], Rates] = {}
        self._readable: dict[tuple[str, str], bool] = {}
        self._bounds_of: dict[tuple, tuple[float, ...] | None] = {}
        self._idle: dict[tuple, tuple[float, tuple[str, ...]]] = {}
        self._all = tuple(stores)
        self._frates: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._ins: dict[tuple[str, str, str], tuple[Decimal, Decimal, float, float]] = {}

    def rates(self, name: str, tier: str) -> Rates:
        r = self._rates.get((name, tier))
        if r is None:
            p = self.stores[name]
            r = self._rates[name, tier] = Rates.of(p.tier_of(tier), egress_per_gb(p, None))
        return r

    def readable(self, name: str, tier: str) -> bool:
        ok = self._readable.get((name, tier))
        if ok is None:
            p = self.stores[name]
            ok = self._readable[name, tier] = (p.cloud.startswith("own:")
                                               or not needs_restore(p.cloud, tier or p.tier))
        return ok

    def _bounds(self, current: Mapping[str, str], cands: tuple[str, ...],
                copies: int) -> tuple[float, float, float, float, float] | None:
        """Bounds, free of the file's size and reads, of re-placing a file held in ``current``.

        Per month at most ``size * d_byte + reads * d_read + bytes * d_read_byte`` is
        saved (the current copies' storage against the ``copies`` cheapest, the first
        holder's reads against the cheapest rates); a move copies at least one object
        in, costing at least ``fixed + size * per_byte``. Floats: a quick screen only.
        None: there is no store to copy to, nor a copy to drop.
        """
        held = [n for n in current if n in self.stores]
        rates = {n: self.rates(n, current.get(n, "")) for n in (*cands, *held)}
        cheapest = sorted(r.per_gb for n, r in rates.items() if n in cands)[:copies]
        d_gb = sum((rates[n].per_gb for n in held), ZERO) - sum(cheapest, ZERO)
        d_read = d_read_gb = ZERO
        if held:
            first = rates[held[0]]
            d_read = first.per_read - min(rates[n].per_read for n in cands)
            d_read_gb = first.per_read_gb - min(rates[n].per_read_gb for n in cands)
        sources = [n for n in held if self.readable(n, current[n])]
        targets = [n for n in cands if n not in current]
        fixed = per_gb = ZERO
        if sources and targets:
            ins = []
            for src in sources:
                tier = self.stores[src].tier_of(current[src])
                for dst in targets:
                    ins.append((move_in_cost(self.stores[src], tier, self.stores[dst], 0),
                                egress_per_gb(self.stores[src], self.stores[dst])
                                + tier.retrieval_per_gb))
            fixed, per_gb = min(a for a, _ in ins), min(b for _, b in ins)
        elif len(held) <= copies:
            return None
        return (float(d_gb) / _GB, float(d_read), float(d_read_gb) / _GB, float(fixed),
                float(per_gb) / _GB)

    def _idle_size(self, current: Mapping[str, str], cands: tuple[str, ...], copies: int,
                   horizon_days: float) -> tuple[float, tuple[str, ...]]:
        """The least size at which re-placing an unread file held in ``current`` may pay
        back within ``horizon_days`` (infinite: never), and the set it would move to.
        Unread, the cheapest set is the
        same whatever the size; the saving is ``size * d`` and the copies in cost at least
        ``a + size * b``, so the break-even falls as the size grows."""
        held = [n for n in current if n in self.stores]
        rates = {n: self.frates(n, current.get(n, "")) for n in (*cands, *held)}
        per_byte = {n: rates[n][0] for n in cands}
        chosen = least_cost_set(per_byte, dict.fromkeys(cands, 0.0), copies,
                                prefer=tuple(current))
        d = sum(rates[n][0] for n in held) - sum(per_byte[n] for n in chosen)
        adding = [n for n in chosen if n not in current]
        sources = [n for n in held if self.readable(n, current[n])]
        if set(chosen) == set(current) or d <= 0 or (adding and not sources):
            return math.inf, chosen
        a = sum(min(self.move_in(s, current[s], n)[2] for s in sources) for n in adding)
        b = sum(min(self.move_in(s, current[s], n)[3] for s in sources) for n in adding)
        if horizon_days * d * _MARGIN <= 30 * b:
            return math.inf, chosen
        return 30 * a / (horizon_days * d * _MARGIN - 30 * b), chosen

    def cheapest(self, size: int, usage: Usage, current: Mapping[str, str], copies: int,
                 allowed: Callable[[str], bool] | None, age_days: float | Decimal,
                 horizon_days: float | None = None) -> PlacementMove | None:
        """:func:`cheapest_placement`; with ``horizon_days``, None too for a move that
        cannot pay back within it (screened with cached bounds before any set is priced)."""
        cands = self._all if allowed is None else tuple(n for n in self.stores if allowed(n))
        if len(cands) < copies:
            return None
        chosen: tuple[str, ...] | None = None
        if horizon_days is not None:
            key = (tuple(current.items()), cands, copies)
            if not usage.reads and not usage.bytes:  # unread: one threshold on the size
                idle = self._idle.get((key, horizon_days))
                if idle is None:
                    idle = self._idle[key, horizon_days] = self._idle_size(
                        current, cands, copies, horizon_days)
                if size < idle[0]:
                    return None
                chosen = idle[1]
            elif key not in self._bounds_of:
                self._bounds_of[key] = self._bounds(current, cands, copies)
            if usage.reads or usage.bytes:
                bounds = self._bounds_of[key]
                if bounds is None:
                    return None
                d_byte, d_read, d_read_byte, fixed, per_byte = bounds
                most = (size * d_byte + float(usage.reads) * d_read
                        + float(usage.bytes) * d_read_byte)
                if most <= 0 or (fixed + size * per_byte) * 30 > horizon_days * most * _MARGIN:
                    return None
        held = [n for n in current if n in self.stores]
        if chosen is None:  # the least-cost set, chosen on floats
            frates = {n: self.frates(n, current.get(n, "")) for n in cands}
            reads, nbytes = float(usage.reads), float(usage.bytes)
            chosen = least_cost_set({n: size * r[0] for n, r in frates.items()},
                                    {n: reads * r[1] + nbytes * r[2] for n, r in frates.items()},
                                    copies, prefer=tuple(current))
        if set(chosen) == set(current):
            return None
        sources = [n for n in held if self.readable(n, current[n])]
        adding = [n for n in chosen if n not in current]
        if adding and not sources:
            return None
        # then priced exactly, per GB (short decimals) until the one division
        ex_storage, ex_reading = {}, {}
        for n in (*chosen, *held):
            r = self.rates(n, current.get(n, ""))
            ex_storage[n] = size * r.per_gb
            ex_reading[n] = (usage.bytes * r.per_read_gb + usage.reads * r.per_read * GB
                             if usage.reads or usage.bytes else ZERO)
        one_time = ZERO
        for new in adding:
            ins = [self.move_in(s, current[s], new) for s in sources]
            in_fixed, in_per_gb, _, _ = min(ins, key=lambda m: m[2] + size * m[3])
            one_time += in_fixed + size * in_per_gb / GB
        for gone in (n for n in held if n not in chosen):
            one_time += early_deletion(self.stores[gone].tier_of(current[gone]), size, age_days)
        return PlacementMove(stores=chosen, current=tuple(sorted(current)),
                             cost_per_month=set_cost(ex_storage, ex_reading, chosen) / GB,
                             current_per_month=set_cost(ex_storage, ex_reading, held) / GB,
                             one_time=one_time)

    def frates(self, name: str, tier: str) -> tuple[float, float, float]:
        """:meth:`rates` as floats per byte: storage, per read, per byte read."""
        r = self._frates.get((name, tier))
        if r is None:
            x = self.rates(name, tier)
            r = self._frates[name, tier] = (float(x.per_gb) / _GB, float(x.per_read),
                                            float(x.per_read_gb) / _GB)
        return r

    def move_in(self, src: str, tier: str, dst: str) -> tuple[Decimal, Decimal, float, float]:
        """Copying an object from ``src`` (in ``tier``) to ``dst``: fixed and per GB, exact,
        then fixed and per byte as floats."""
        m = self._ins.get((src, tier, dst))
        if m is None:
            p = self.stores[src]
            t = p.tier_of(tier)
            fixed = move_in_cost(p, t, self.stores[dst], 0)
            per_gb = egress_per_gb(p, self.stores[dst]) + t.retrieval_per_gb
            m = self._ins[src, tier, dst] = (fixed, per_gb, float(fixed), float(per_gb) / _GB)
        return m


def cheapest_placement(size: int, usage: Usage, current: Mapping[str, str],
                       stores: Mapping[str, StorePrice], copies: int,
                       allowed: Callable[[str], bool] = lambda name: True,
                       age_days: float | Decimal = 0) -> PlacementMove | None:
    """The least-cost placement of one file, or None when it is where it costs least.

    ``current``: the stores holding it -> their tier ("" = the store's own);
    ``stores``: every candidate's prices; ``allowed``: may the file live there
    (residency, governance). A store keeps the file in its current tier, a new
    one takes it in the store's own tier. None too when no current copy reads
    without a restore (nothing to copy from).
    """
    return Placer(stores).cheapest(size, usage, current, copies, allowed, age_days)
