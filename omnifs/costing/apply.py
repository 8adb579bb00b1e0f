"""``cost recommend`` and ``cost apply``: the engine over the catalog, and its moves queued.

:func:`recommend` runs ``omnifs.policy.recommend.Recommender`` over every stored
file (files with a move still queued are left out). :func:`apply` takes the
best ``max_moves`` by saving and, for each, records it in ``cost_moves`` and
queues its work in the same transaction:

* a tier move: one ``tier`` item for the copy (omnifs/costing/moves.py);
* a re-placement: a ``replicate`` item for each new store (the copy the daemon
  makes and checks against the catalog's SHA-256) and a ``drop`` item for each
  store left, which waits until every new copy is synced. ``copies`` holds
  throughout, and the new set was chosen among the stores the placement rules
  allow for the path.

The daemon runs the items; with ``[cost] auto = true`` it also runs
:func:`apply` itself every ``[cost] schedule`` (daemon/main.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from omnifs.policy.recommend import Recommendation, Recommender, Totals

from ..catalog import Catalog
from ..config import Config
from ..replication import queue_replicate
from ..work import DropCopy, TierChange, enqueue
from .inputs import WINDOW_DAYS, file_records, placement_rule, store_prices


@dataclass
class Recommended:
    recommendations: list[Recommendation]
    totals: Totals
    currency: str
    horizon_days: int


def recommender(config: Config, now: float) -> Recommender:
    return Recommender(store_prices(config), config.cost, now=now, copies=config.copies,
                       allowed=placement_rule(config), window_days=WINDOW_DAYS)


def recommend(cat: Catalog, config: Config, *, now: float | None = None,
              limit: int | None = None) -> Recommended:
    """Every recommendation (or the ``limit`` best by saving per month) and the totals of
    all of them."""
    now = time.time() if now is None else now
    engine = recommender(config, now)
    queued = cat.cost.queued_inodes()
    records = file_records(cat, now, skip=queued.__contains__)
    recs = list(engine.recommend(records)) if limit is None else engine.best(records, limit)
    currency = next((s.price.currency for s in engine.stores.values()), "USD")
    return Recommended(recs, engine.totals, currency, config.cost.default.horizon_days)


def queue_move(cat: Catalog, config: Config, rec: Recommendation) -> int | None:
    """Record ``rec`` and queue its work, in one transaction; the move's id (None: the file
    is gone)."""
    with cat.transaction():
        inode = cat.ns.get(rec.inode)
        if inode is None:
            return None
        move = cat.cost.record_move(
            inode=rec.inode, path=rec.path, kind=rec.kind, store=rec.store,
            source=rec.source, target=rec.target, saving_per_month=rec.saving_per_month,
            one_time=rec.one_time)
        if rec.kind == "tier":
            archive_only = config.cost.for_path(rec.path).allow_archive_only
            enqueue(cat.work, TierChange(inode=rec.inode, provider=rec.store, tier=rec.target,
                                         move=move, archive_only=int(archive_only)))
        else:
            current, target = rec.source.split(","), rec.target.split(",")
            adding = [s for s in target if s not in current]
            for store in adding:
                queue_replicate(cat, rec.inode, store, rec.path.lstrip("/"), inode.version)
            for store in (s for s in current if s not in target):
                enqueue(cat.work, DropCopy(inode=rec.inode, provider=store,
                                           after=",".join(adding), move=move))
    return move


def apply(cat: Catalog, config: Config, *, max_moves: int | None = None,
          dry_run: bool = False, now: float | None = None
          ) -> tuple[Recommended, list[tuple[Recommendation, int | None]]]:
    """Queue the best ``max_moves`` recommendations (all when None); with ``dry_run``,
    only say which. Returns the recommendations and (recommendation, move id) queued."""
    found = recommend(cat, config, now=now, limit=max_moves)
    chosen = sorted(found.recommendations, key=lambda r: (-r.saving_per_month, r.path))
    if dry_run:
        return found, [(r, None) for r in chosen]
    return found, [(r, queue_move(cat, config, r)) for r in chosen]
