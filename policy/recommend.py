"""The recommendation engine: tier transitions and cheaper placements, file by file.

Input: a stream of :class:`FileRecord` (what the catalog knows of each file: its
size, which store holds a copy in which tier, when it was created, last read and
last written, and its reads and bytes read per day over a window), the stores'
prices, and the ``[cost]`` policy. Output: a stream of :class:`Recommendation`,
never a list, so a catalog of millions of files is priced in constant memory.

For each file:

* **placement** (when there are more allowed stores than ``copies``): the
  least-cost set of ``copies`` stores the file may live on (policy.tiering's
  :func:`~.tiering.cheapest_placement`). A file re-placed gets no tier
  recommendation in the same pass: its new copies start in their store's own tier.
* **tier**: the policy names the access class the file belongs in from how long
  it has been idle (not read, written or created); each copy in another class is
  priced moving to its store's tier of that class (the nearest warmer class the
  store has, when it lacks it). A copy is not moved colder before its tier's
  minimum storage duration (waiting costs nothing more, moving early pays the
  rest of it and the new tier too); a move warmer prices the early deletion.
* Only moves that save money are made, and only when the break-even (one-time
  cost / monthly saving) is within the policy's ``horizon_days``.
* A file keeps one copy that reads without a restore (not S3 GLACIER /
  DEEP_ARCHIVE, not Azure Archive) unless ``allow_archive_only``: its last such
  copy goes to the coldest readable class instead (cold), if that pays.

The read history counts every read of the file, those the local cache served too,
so the read costs are an upper bound. Copies in a tier the store's price table lacks
(S3 INTELLIGENT_TIERING) or on a store of your own are left where they are.

Speed: the per-tier and per-store rates are worked out once; each file is first
screened on floats, and only what passes is priced exactly in Decimal (the
amounts reported are exact); files unread in the window are decided by plan
(policy/unread.py: the same decisions, probed once per kind of file). Amounts are
unrounded Decimals; :meth:`Recommendation.as_dict` rounds them for display.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import NamedTuple

from .costpolicy import CostPolicy, TierPolicy
from .costs import (
    GB,
    MONTH_DAYS,
    ZERO,
    PriceError,
    StorePrice,
    TierPrice,
    early_deletion,
    rounded,
)
from .tiering import (
    Placer,
    Rates,
    Usage,
    class_tiers,
    leaves_cold,
    needs_restore,
    read_latency,
    transition_cost,
    usage_from_history,
)
from .tiers import CLASSES, tier_class
from .unread import READABLE_COLDEST, Plans, PolicyByDir

DAY = 86400.0
#: the float screens let through what is within this factor of the line
_MARGIN = 1.000001
_NO_USE = Usage()
#: USD/month: a float screen's saving above this is positive exactly too
_TINY = 1e-9


class FileRecord(NamedTuple):
    """What the engine knows of one file (a tuple: millions are made and dropped)."""

    inode: int
    path: str
    size: int
    #: store name -> the tier its copy is in ("" = the store's own tier)
    replicas: Mapping[str, str]
    #: epoch seconds
    created: float
    last_read: float | None = None
    last_write: float | None = None
    #: reads and bytes read per day over the window, oldest first
    reads: Sequence[int] = ()
    bytes_read: Sequence[int] = ()


class Recommendation(NamedTuple):
    kind: str  # "tier" | "placement"
    inode: int
    path: str
    #: the store whose copy changes tier ("" for a placement)
    store: str
    #: a tier name, or the comma-separated stores of a placement
    source: str
    target: str
    saving_per_month: Decimal
    one_time: Decimal
    #: the expected wait before a read of the file's copy after the move
    latency: str

    @property
    def break_even_days(self) -> Decimal:
        """One-time cost / monthly saving, in days (the saving of a recommendation is > 0)."""
        return self.one_time * MONTH_DAYS / self.saving_per_month

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "inode": self.inode, "path": self.path,
                "store": self.store, "from": self.source, "to": self.target,
                "saving_per_month": str(rounded(self.saving_per_month)),
                "one_time": str(rounded(self.one_time)),
                "break_even_days": str(self.break_even_days.quantize(
                    Decimal("0.1"), rounding=ROUND_HALF_UP)),
                "latency": self.latency}


@dataclass
class Totals:
    recommendations: int = 0
    saving_per_month: Decimal = ZERO
    one_time: Decimal = ZERO
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, rec: Recommendation) -> None:
        self.recommendations += 1
        self.saving_per_month += rec.saving_per_month
        self.one_time += rec.one_time
        self.by_kind[rec.kind] = self.by_kind.get(rec.kind, 0) + 1


@dataclass(frozen=True, slots=True)
class _Tier:
    """One tier of one store, resolved once: its name, prices, rates and class."""

    name: str
    price: TierPrice
    rates: Rates
    cls: str | None
    restore: bool
    latency: str


@dataclass(frozen=True, slots=True)
class _Pair:
    """Moving a copy from one tier to another, priced once: exactly, and as floats."""

    new: _Tier
    colder: bool
    #: monthly saving per stored GB, per read and per GB read
    per_gb: Decimal
    per_read: Decimal
    per_read_gb: Decimal
    #: one-time: the transition request (+ a restore request), and per GB retrieved
    fixed: Decimal
    moved_gb: Decimal
    #: the old tier's minimum storage duration
    min_days: int
    #: the same per byte, as floats, for the quick screen
    f_byte: float
    f_read: float
    f_read_byte: float
    f_fixed: float
    f_moved_byte: float

    def saving(self, size: int, usage: Usage) -> Decimal:
        """The exact monthly saving for a file of ``size`` bytes read as ``usage`` says."""
        if usage is _NO_USE:
            return size * self.per_gb / GB
        return ((size * self.per_gb + usage.bytes * self.per_read_gb) / GB
                + usage.reads * self.per_read)

    def one_time(self, size: int) -> Decimal:
        """The exact one-time cost, early deletion aside."""
        return self.fixed + size * self.moved_gb / GB if self.moved_gb else self.fixed


class _Store:
    def __init__(self, price: StorePrice):
        self.price = price
        self.own = price.cloud.startswith("own:")
        self.classes = {} if self.own else class_tiers(price)
        self._tiers: dict[str, _Tier] = {}
        self._pairs: dict[tuple[str, str], _Pair | None] = {}

    def tier(self, name: str) -> _Tier:
        t = self._tiers.get(name)
        if t is None:
            p = self.price
            tp = p.tier_of(name)
            canonical = name or p.tier
            if name and not self.own:
                canonical = next(n for n in p.tiers if n.lower() == name.lower())
            t = _Tier(canonical, tp, Rates.of(tp, p.egress_internet_per_gb),
                      None if self.own else tier_class(canonical),
                      not self.own and needs_restore(p.cloud, canonical),
                      "milliseconds" if self.own else read_latency(p.cloud, canonical))
            self._tiers[name] = t
        return t

    def tier_for(self, cls: str) -> str | None:
        """The store's tier of class ``cls``, else of the nearest warmer class it has."""
        for c in reversed(CLASSES[:CLASSES.index(cls) + 1]):
            if c in self.classes:
                return self.classes[c]
        return None

    def pair(self, cur: _Tier, target_cls: str) -> _Pair | None:
        """Moving a copy in ``cur`` to the class ``target_cls`` (None: no such move)."""
        key = (cur.name, target_cls)
        if key in self._pairs:
            return self._pairs[key]
        name = self.tier_for(target_cls) if cur.cls is not None else None
        pair = None
        if name is not None and name != cur.name:
            pair = self.priced(cur, self.tier(name))
        self._pairs[key] = pair
        return pair

    @staticmethod
    def priced(cur: _Tier, new: _Tier) -> _Pair:
        a, b = cur.rates, new.rates
        leaving = leaves_cold(cur.name)
        fixed = transition_cost(cur.price, new.price, 0, cur.price.min_storage_days,
                                retrieve=leaving)
        moved = cur.price.retrieval_per_gb if leaving else ZERO
        gb = float(GB)
        return _Pair(new, CLASSES.index(new.cls or "hot") > CLASSES.index(cur.cls or "hot"),
                     a.per_gb - b.per_gb, a.per_read - b.per_read,
                     a.per_read_gb - b.per_read_gb, fixed, moved, cur.price.min_storage_days,
                     float(a.per_gb - b.per_gb) / gb, float(a.per_read - b.per_read),
                     float(a.per_read_gb - b.per_read_gb) / gb, float(fixed),
                     float(moved) / gb)


class Recommender:
    """Prices files against ``stores`` under ``policy``; :attr:`totals` sums what it yields.

    ``allowed(path, store)``: may the file live on that store (residency and
    governance rules); ``copies``: how many stores hold each file; ``now``: epoch
    seconds; ``window_days``: the days the read history covers (default: its length).
    """

    def __init__(self, stores: Mapping[str, StorePrice], policy: CostPolicy, *, now: float,
                 copies: int = 1, allowed: Callable[[str, str], bool] | None = None,
                 window_days: int | None = None, placement: bool = True, plans: bool = True):
        self.stores = {n: _Store(p) for n, p in stores.items()}
        self.placer = Placer(stores)
        self.policy = policy
        self.now = now
        self.copies = copies
        self.allowed = allowed
        self.window_days = window_days
        self.placement = placement and len(stores) > copies
        self.totals = Totals()
        #: with :meth:`best`: a tier move clearly saving less than this (USD/month, a float)
        #: cannot be among the best, so it is only summed, per move, into ``_bulk``
        self._floor = -math.inf
        #: id(pair) -> [pair, moves, sum of sizes, sum of monthly reads, of bytes read]
        self._bulk: dict[int, list] = {}
        #: (store, tier, target class) -> the copy's tier and its move
        self._pairs: dict[tuple[str, str, str], tuple[_Tier | None, _Pair | None]] = {}
        self._policies = PolicyByDir(policy)
        #: unread files decided by plan (policy/unread.py), probing an engine without plans
        self._plans = Plans(self, lambda: Recommender(
            stores, policy, now=now, copies=copies, allowed=allowed, window_days=window_days,
            placement=placement, plans=False), FileRecord, Recommendation) if plans else None

    def recommend(self, records: Iterable[FileRecord]) -> Iterator[Recommendation]:
        """The recommendations of every file, file by file (see the module docstring)."""
        for rec in records:
            yield from self.of_file(rec)

    def best(self, records: Iterable[FileRecord], limit: int) -> list[Recommendation]:
        """The ``limit`` recommendations with the most saving per month (most first, ties
        in file order), and :attr:`totals` of all of them, as :meth:`recommend` would.

        Faster over many files: once ``limit`` are kept, a tier move whose float
        screen already says it saves clearly less than the least kept one is not
        priced one by one; its size and reads are summed per kind of move, and the
        totals get them priced once per kind at the end (the same sums of the same
        exact terms, grouped).
        """
        heap: list[tuple[Decimal, int, Recommendation]] = []
        seq = 0
        if limit <= 0:
            self._floor = math.inf
        for rec in records:
            for r in self.of_file(rec):
                if limit <= 0:
                    break
                seq -= 1  # ties: the earlier file wins, as heapq.nlargest keeps it
                if len(heap) < limit:
                    heapq.heappush(heap, (r.saving_per_month, seq, r))
                elif (r.saving_per_month, seq) > heap[0][:2]:
                    heapq.heapreplace(heap, (r.saving_per_month, seq, r))
                else:
                    continue
                if len(heap) >= limit:
                    self._floor = float(heap[0][0]) * (1 - 1e-9)
        self._price_bulk()
        return [r for _, _, r in sorted(heap, key=lambda e: (e[0], e[1]), reverse=True)]

    def _price_bulk(self) -> None:
        totals = self.totals
        for pair, n, size, reads, nbytes in self._bulk.values():
            saving = (size * pair.per_gb + nbytes * pair.per_read_gb) / GB + reads * pair.per_read
            totals.recommendations += n
            totals.saving_per_month += saving
            totals.one_time += n * pair.fixed + (size * pair.moved_gb / GB if pair.moved_gb
                                                 else ZERO)
            totals.by_kind["tier"] = totals.by_kind.get("tier", 0) + n
        self._bulk.clear()

    def of_file(self, f: FileRecord) -> list[Recommendation]:
        """The recommendations for one file (added to :attr:`totals`)."""
        policy = self._policies.of(f.path)
        if f.reads and any(f.reads):
            usage = usage_from_history(f.reads, f.bytes_read, self.window_days)
        else:
            usage = _NO_USE
            planned = (self._plans.of_file(f, policy, self._floor)
                       if self._plans is not None else None)
            if planned is not None:  # (added to the totals)
                return planned
        written = f.last_write if f.last_write is not None else f.created
        age_days = max(0.0, (self.now - written) / DAY)
        out: list[Recommendation] = []
        if self.placement:
            moved = self._placement(f, usage, age_days, policy)
            if moved is not None:
                out.append(moved)
        if not out:
            last = max(written, f.last_read or 0.0, f.created)
            target = policy.target_class((self.now - last) / DAY)
            out = self._tiers(f, usage, age_days, target, policy)
        if out:
            totals = self.totals
            for r in out:
                totals.add(r)
        return out

    def _pair(self, name: str, tier: str, target: str) -> tuple[_Tier | None, _Pair | None]:
        """A copy's tier and its move to ``target``; (None, None) for a copy not priced
        here (a store not given, a store of your own, a tier its table lacks)."""
        store = self.stores.get(name)
        if store is None or store.own:
            return None, None
        try:
            cur = store.tier(tier)
        except PriceError:
            return None, None
        return cur, store.pair(cur, target)

    def _placement(self, f: FileRecord, usage: Usage, age_days: float,
                   policy: TierPolicy) -> Recommendation | None:
        allowed = self.allowed
        try:
            move = self.placer.cheapest(
                f.size, usage, f.replicas, self.copies,
                (lambda store: allowed(f.path, store)) if allowed else None, age_days,
                policy.horizon_days)
        except PriceError:  # a copy in a tier its table lacks: not re-placed
            return None
        if move is None:
            return None
        be = move.break_even_days
        if be is None or be > policy.horizon_days:
            return None
        reads, nbytes = float(usage.reads), float(usage.bytes)
        rates = {n: self.placer.frates(n, f.replicas.get(n, "")) for n in move.stores}
        reader = min(move.stores, key=lambda n: (reads * rates[n][1] + nbytes * rates[n][2], n))
        return Recommendation(
            "placement", f.inode, f.path, "", ",".join(move.current), ",".join(move.stores),
            move.saving_per_month, move.one_time,
            self.stores[reader].tier(f.replicas.get(reader, "")).latency)

    def _tiers(self, f: FileRecord, usage: Usage, age_days: float, target: str,
               policy: TierPolicy) -> list[Recommendation]:
        """The tier moves of ``f``'s copies, decided on floats, then priced exactly."""
        moves: list[tuple[float, str, _Tier, _Pair]] = []
        pairs = self._pairs
        size = f.size
        reads = float(usage.reads) if usage is not _NO_USE else 0.0
        nbytes = float(usage.bytes) if usage is not _NO_USE else 0.0
        readable = 0  # copies readable without a restore
        for name, tier in f.replicas.items():
            key = (name, tier, target)
            hit = pairs.get(key)
            if hit is None:
                hit = pairs[key] = self._pair(name, tier, target)
            cur, pair = hit
            if cur is None or not cur.restore:
                readable += 1
            if pair is None or cur is None or (pair.colder and age_days < pair.min_days):
                continue  # moving colder before the minimum duration pays it anyway: wait
            saving = size * pair.f_byte + reads * pair.f_read + nbytes * pair.f_read_byte
            if saving > 0 or pair.new.restore:
                moves.append((saving, name, cur, pair))
        if not moves:
            return []
        out = []
        if len(moves) > 1:
            moves.sort(key=itemgetter(0), reverse=True)
        for saving, name, cur, pair in moves:
            if pair.new.restore and not cur.restore and not policy.allow_archive_only:
                if readable <= 1:  # the last readable copy: no colder than READABLE_COLDEST
                    fallback = self.stores[name].pair(cur, READABLE_COLDEST)
                    if fallback is None or not fallback.colder:
                        continue
                    pair = fallback
                    saving = size * pair.f_byte + reads * pair.f_read + nbytes * pair.f_read_byte
                else:
                    readable -= 1
            elif cur.restore and not pair.new.restore:
                readable += 1
            if saving <= 0:
                continue
            early = age_days < pair.min_days
            days = 0.0 if early else (pair.f_fixed + size * pair.f_moved_byte) * 30 / saving
            if days > policy.horizon_days * _MARGIN:
                continue  # clearly beyond the horizon: not worth pricing exactly
            if saving < self._floor and not early and days * _MARGIN <= policy.horizon_days \
                    and saving > _TINY:  # clearly made, and clearly not among the best
                bulk = self._bulk.get(id(pair))
                if bulk is None:
                    bulk = self._bulk[id(pair)] = [pair, 0, 0, ZERO, ZERO]
                bulk[1] += 1
                bulk[2] += size
                if usage is not _NO_USE:
                    bulk[3] += usage.reads
                    bulk[4] += usage.bytes
                continue
            exact = size * pair.per_gb / GB if usage is _NO_USE else pair.saving(size, usage)
            one_time = pair.one_time(size)
            if early:
                one_time += early_deletion(cur.price, size, age_days)
            if exact <= ZERO or ((early or days * _MARGIN > policy.horizon_days)
                                 and one_time * MONTH_DAYS > policy.horizon_days * exact):
                continue  # near the line (or with a penalty): decided exactly
            out.append(Recommendation("tier", f.inode, f.path, name, cur.name, pair.new.name,
                                      exact, one_time, pair.new.latency))
        return out
