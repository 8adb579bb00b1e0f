"""Unread files decided by plan: one decision per kind of file, as thresholds on its size.

Most files of a large namespace were not read in the window. The engine's decision
for such a file depends on its size and on a few things many files share: the
policy of its path, the stores it may live on, its copies and their tiers, the
access class its idle time puts it in, and whether it is past every held tier's
minimum storage duration. Given those, the decision only changes at a few sizes:

* a re-placement pays back within the horizon from some size on (the saving grows
  with the size, the one-time cost less than it);
* so does each tier move, which copies move (and where, for the last readable
  copy) not depending on the size.

So the decisions form a chain as the size grows (no move, one move, more moves, a
re-placement), and a :class:`Plan` holds it: the sizes where the decision changes,
found by bisection over a probe (a second engine, the same prices and policy) on a
file of that kind, and for each range the tier moves made. A file then costs a key,
a bisection and, per move, one float product: the moves of files clearly outside
the best listed are summed per kind of move, as :meth:`Recommender.best` does, and
the others priced exactly with the engine's own formulas. Files a plan does not
cover (read in the window, younger than a held tier's minimum duration, a size of
0 or past :data:`LARGEST`, a re-placement, a copy on a store or tier not priced)
are the engine's, file by file.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .costpolicy import CostPolicy, TierPolicy
from .costs import GB, PriceError

DAY = 86400.0
#: sizes from this on are the engine's (2^48 bytes: 256 TiB)
LARGEST = 1 << 48
#: a float screen's saving above this is positive exactly too (the engine's line)
_TINY = 1e-9
#: the coldest class whose copies read without a restore on every cloud
READABLE_COLDEST = "cold"


class Plan(NamedTuple):
    #: the sizes from which the decision changes, ascending
    breaks: tuple[int, ...]
    #: for each range (below breaks[0], then from each break): the tier moves made, as
    #: (store, its copy's tier, the move), or None: a re-placement (the engine's)
    values: tuple[tuple[tuple[str, Any, Any], ...] | None, ...]
    #: the longest minimum storage duration of the tiers held (days)
    min_days: float


class PolicyByDir:
    """``policy.for_path``, looked up once per directory when every rule's globs are a
    literal directory and ``/**`` (the usual ``/backups/**``); else per path."""

    def __init__(self, policy: CostPolicy):
        self.policy = policy
        prefixes = []
        for rule in policy.rules:
            for pattern in rule.paths:
                norm = "/" + pattern.strip("/")
                literal = norm[:-3] if norm.endswith("/**") else None
                if literal is None or any(c in literal for c in "*?"):
                    self._by_dir = False
                    return
                prefixes.append(literal)
        self._by_dir = True
        #: directories whose files' own path may equal a rule's directory
        self._per_path = {p.rpartition("/")[0] for p in prefixes}
        self._dirs: dict[str, TierPolicy] = {}

    def of(self, path: str) -> TierPolicy:
        if not self._by_dir:
            return self.policy.for_path(path)
        base = path.rpartition("/")[0]
        found = self._dirs.get(base)
        if found is None:
            found = self.policy.for_path(path)
            if base not in self._per_path:
                self._dirs[base] = found
        return found


class Plans:
    """The plans of one engine (``engine``: a :class:`~.recommend.Recommender`);
    ``prober()``: a second engine, the same but deciding file by file; ``record`` and
    ``recommendation``: the engine's :class:`~.recommend.FileRecord` and
    :class:`~.recommend.Recommendation`."""

    def __init__(self, engine: Any, prober: Callable[[], Any], record: Callable[..., Any],
                 recommendation: Callable[..., Any]):
        self.engine = engine
        self._prober = prober
        self._probe: Any = None
        self._record = record
        self._recommendation = recommendation
        #: a file's copies (its replicas' items) -> (policy id, class, stores) -> its plan
        self._plans: dict[tuple, dict[tuple, Plan | None]] = {}
        #: id(replicas) -> (replicas, its plans): held, so the id stays its own
        self._by_copies: dict[int, tuple[Mapping[str, str], dict]] = {}

    def of_file(self, f: Any, policy: TierPolicy, floor: float) -> list | None:
        """The recommendations of the unread file ``f`` under ``policy``, added to the
        engine's totals (moves saving less than ``floor`` summed into its bulk instead);
        None: not planned."""
        engine = self.engine
        now = engine.now
        size = f.size
        created = f.created
        written = f.last_write if f.last_write is not None else created
        last = written if written > created else created
        if f.last_read and f.last_read > last:
            last = f.last_read
        target = policy.target_class((now - last) / DAY)
        allowed = engine.allowed
        cands = None if allowed is None else tuple(n for n in engine.stores
                                                   if allowed(f.path, n))
        reps = f.replicas  # the catalog's files share one dict per set of copies
        seen = self._by_copies.get(id(reps))
        if seen is None or seen[0] is not reps:
            if len(self._by_copies) > 10_000:
                self._by_copies.clear()
            plans = self._plans.setdefault(tuple(reps.items()), {})
            seen = self._by_copies[id(reps)] = (reps, plans)
        plans = seen[1]
        key = (id(policy), target, cands)
        if key in plans:
            plan = plans[key]
        else:
            plan = plans[key] = self._plan(f, last, target)
        age_days = (now - written) / DAY
        if plan is None or size < 1 or size >= LARGEST or max(0.0, age_days) < plan.min_days:
            return None
        moves = plan.values[bisect_right(plan.breaks, size)]
        if moves is None:
            return None
        out = []
        for name, cur, pair in moves:
            saving = size * pair.f_byte
            if saving < floor and saving > _TINY:  # clearly not among the best: summed
                bulk = engine._bulk.get(id(pair))
                if bulk is None:
                    bulk = engine._bulk[id(pair)] = [pair, 0, 0, 0, 0]
                bulk[1] += 1
                bulk[2] += size
                continue
            rec = self._recommendation("tier", f.inode, f.path, name, cur.name, pair.new.name,
                                       size * pair.per_gb / GB, pair.one_time(size),
                                       pair.new.latency)
            engine.totals.add(rec)
            out.append(rec)
        return out

    def _plan(self, f: Any, last: float, target: str) -> Plan | None:
        """The plan of files like ``f`` (None: none; the engine decides them)."""
        stores = self.engine.stores
        min_days = 0.0
        tiers = {}
        for name, tier in f.replicas.items():
            store = stores.get(name)
            if store is None or store.own:
                return None
            try:
                tiers[name] = store.tier(tier)
            except PriceError:
                return None
            min_days = max(min_days, float(tiers[name].price.min_storage_days))

        if self._probe is None:
            self._probe = self._prober()
        # a file like f, past every minimum storage duration, last used at ``last``
        old = min(last, self.engine.now - 1e9)

        def decision(size: int) -> tuple:
            probe = self._record(f.inode, f.path, size, f.replicas, old, last)
            return tuple((r.kind, r.store, r.source, r.target)
                         for r in self._probe.of_file(probe))

        lo, hi = decision(1), decision(LARGEST - 1)
        points = _changes(decision, 1, lo, LARGEST - 1, hi)
        values: list[tuple[tuple[str, Any, Any], ...] | None] = []
        for value in (lo, *(v for _, v in points)):
            moves = _moves(stores, tiers, value, target)
            if moves is False:
                return None
            values.append(moves if isinstance(moves, tuple) else None)
        return Plan(tuple(b for b, _ in points), tuple(values), min_days)


def _changes(decision: Callable[[int], tuple], lo: int, at_lo: tuple, hi: int,
             at_hi: tuple) -> list[tuple[int, tuple]]:
    """(size, decision from it) where the decision changes in ``(lo, hi]``; equal
    decisions at both ends mean none between (the decisions form a chain)."""
    if at_lo == at_hi:
        return []
    if hi - lo == 1:
        return [(hi, at_hi)]
    mid = (lo + hi) // 2
    at_mid = decision(mid)
    return _changes(decision, lo, at_lo, mid, at_mid) + _changes(decision, mid, at_mid, hi,
                                                                 at_hi)


def _moves(stores: Mapping[str, Any], tiers: Mapping[str, Any], value: tuple,
           target: str) -> tuple | None | bool:
    """A probe's decision as the engine's own moves: (store, copy's tier, move) each;
    None for a re-placement; False when a move is not one of the engine's."""
    if any(kind == "placement" for kind, *_ in value):
        return None
    out = []
    for _, name, _, new in value:
        cur = tiers[name]
        pairs = (stores[name].pair(cur, c) for c in (target, READABLE_COLDEST))
        pair = next((p for p in pairs if p is not None and p.new.name == new), None)
        if pair is None:
            return False
        out.append((name, cur, pair))
    return tuple(out)
