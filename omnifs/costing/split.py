"""``cost recommend`` over a large catalog: the files split by inode range among processes.

Each worker (a forked process with its own catalog connection) runs the engine's
:meth:`~omnifs.policy.recommend.Recommender.best` over one range of inode ids, with
the same ``now``, policies and prices, and sends back its ``limit`` best and its
totals. The best of all are the ``limit`` best of those lists, ties to the earlier
file as in one process (ranges in inode order, each list in file order); the totals
are the sums. A worker that fails fails the whole command.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection

from omnifs.policy.recommend import Recommendation, Recommender, Totals

from ..catalog import Catalog
from ..config import Config
from .inputs import file_records

#: inode ids from which ``cost recommend`` splits the work (one process per CPU)
SPLIT_FROM = 200_000
#: at most this many processes
MAX_WORKERS = 4


def workers_for(cat: Catalog) -> int:
    """How many processes to price the catalog's files with (1: this one alone)."""
    first, last = cat.cost.id_range()
    if last - first < SPLIT_FROM:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def ranges(first: int, last: int, n: int) -> list[tuple[int, int]]:
    """``(first - 1, last]`` cut into ``n`` ranges (above the first id, up to the second)."""
    step = max(1, -(-(last - first + 1) // n))
    bounds = [min(first - 1 + i * step, last) for i in range(n)] + [last]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if lo < hi]


def _work(make: Callable[[], Recommender], config: Config, now: float, limit: int,
          ids: tuple[int, int], skip: frozenset[int], out: Connection) -> None:
    try:
        cat = Catalog(config.catalog_target(), create=False)
        try:
            engine = make()
            best = engine.best(file_records(cat, now, skip=skip.__contains__, ids=ids), limit)
        finally:
            cat.close()
        out.send((best, engine.totals))
    except Exception as e:  # noqa: BLE001 - one line back to the command, no traceback
        out.send(f"{type(e).__name__}: {e}")
    finally:
        out.close()


def best(cat: Catalog, config: Config, make: Callable[[], Recommender], now: float,
         limit: int, skip: frozenset[int], workers: int) -> tuple[list[Recommendation], Totals]:
    """The ``limit`` best recommendations of every file and the totals of all, priced by
    ``workers`` processes (``make()``: a fresh engine)."""
    first, last = cat.cost.id_range()
    ctx = multiprocessing.get_context("fork")
    running = []
    for ids in ranges(first, last, workers):
        theirs, ours = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_work, args=(make, config, now, limit, ids, skip, ours),
                           daemon=True)
        proc.start()
        ours.close()
        running.append((proc, theirs))
    results, errors = [], []
    for proc, conn in running:
        try:
            got = conn.recv()
        except EOFError:
            got = "ended without an answer"
        proc.join()
        if isinstance(got, str) or proc.exitcode != 0:
            errors.append(got if isinstance(got, str) else f"exit status {proc.exitcode}")
        else:
            results.append(got)
    if errors:
        raise RuntimeError(f"cost recommend: {len(errors)} of {len(running)} worker "
                           f"process(es) failed: {errors[0]}")
    totals = Totals()
    ranked = []
    for k, (recs, part) in enumerate(results):
        ranked.extend((-r.saving_per_month, k, i, r) for i, r in enumerate(recs))
        totals.recommendations += part.recommendations
        totals.saving_per_month += part.saving_per_month
        totals.one_time += part.one_time
        for kind, n in part.by_kind.items():
            totals.by_kind[kind] = totals.by_kind.get(kind, 0) + n
    ranked.sort(key=lambda e: e[:3])
    return [e[3] for e in ranked[:limit]], totals
