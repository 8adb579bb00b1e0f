"""Running ``omnifs cost apply``'s tier changes (its re-placements drop copies through
omnifs/drop_copy.py, the one ``drop`` item).

Called by the executor (omnifs/replication.py's ``execute``) in the daemon's
workers and ``omnifs replicate --now``. Each re-reads the catalog, so an item
that outlived its reason (the file changed, was removed, its copy moved) ends
as ``obsolete`` in ``cost_moves`` instead of acting on stale facts.

* ``tier``: the store's own name for the tier is its tier of the same access
  class (omnifs/fallbacks.py tier_for); the copy changes tier in place
  (``Provider.set_tier``: S3 copy onto itself with the storage class, GCS
  rewrite, Azure Set Blob Tier) and the replica row records it. A tier that
  needs a restore before a read is refused for a file's last copy readable
  without one, unless the item says the policy allows it.

Moving a copy *out* of a tier that needs a restore (Azure Archive, S3 GLACIER) is a
rehydration: the store accepts the request at once and moves the copy later (Azure:
up to 15 hours at standard priority; Azurite at once). The catalog follows the store,
not the request: after asking, the item reads the copy's tier back (one HEAD) and
records it; while the store still says archived, the item is queued again
:data:`REHYDRATE_POLL` seconds later (its ``asked`` field set, so the store is not
asked twice) and its ``cost_moves`` row stays ``queued``; once the store says a tier
that reads, that tier is recorded and the move is ``done``. A rehydration the store
has not finished after :data:`REHYDRATE_GIVE_UP` seconds is ``failed``. The mount's
restore requests of Azure copies end in the same item (omnifs/costing/restore.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from omnifs.policy.tiering import needs_restore
from omnifs.providers import Provider

from ..catalog import Catalog, Replica
from ..fallbacks import tier_for
from ..prices import SCHEME_TABLES
from ..work import TierChange, enqueue

log = logging.getLogger("omnifs.cost")

#: seconds between two looks at a rehydration under way
REHYDRATE_POLL = 900.0
#: seconds after which a rehydration the store has not finished is given up
REHYDRATE_GIVE_UP = 2 * 86400.0


def restores(provider: Provider, tier: str | None) -> bool:
    """A copy in ``tier`` must be restored before it can be read (S3 GLACIER and
    DEEP_ARCHIVE, Azure Archive; GCS ARCHIVE reads at once): policy/tiering.py's table."""
    scheme = provider.location.scheme
    return bool(tier) and needs_restore(SCHEME_TABLES.get(scheme) or scheme, tier or "")


def _end(cat: Catalog, move: int, state: str, detail: str | None = None) -> None:
    if move:
        cat.cost.finish_move(move, state, detail)
    if state != "done":
        log.info("cost move %s %s: %s", move, state, detail)


def _current(cat: Catalog, ino: int, provider: str) -> Replica | None:
    inode = cat.ns.get(ino)
    rep = cat.replicas.get(ino, provider)
    if inode is None or rep is None or rep.state != "synced" or rep.version != inode.version:
        return None
    return rep


def change_tier(cat: Catalog, providers: dict[str, Provider], work: TierChange) -> None:
    rep = _current(cat, work.inode, work.provider)
    p = providers.get(work.provider)
    if rep is None or p is None:
        _end(cat, work.move, "obsolete", "the copy is gone or changed since the move was queued")
        return
    name = tier_for(p, work.tier)  # the capability record says which tiers the store has
    if name is None:
        _end(cat, work.move, "failed", f"{p.name} has no tier like {work.tier}")
        return
    if restores(p, name) and not work.archive_only:
        others = [r for r in cat.replicas.of(work.inode) if r.provider != work.provider
                  and r.state == "synced" and r.version == rep.version and r.provider in providers
                  and not restores(providers[r.provider], r.tier)]
        if not others:
            _end(cat, work.move, "obsolete",
                 "the last copy readable without a restore is not archived")
            return
    if work.asked or (restores(p, rep.tier) and not restores(p, name)):
        rehydrate(cat, p, rep, work, name)
        return
    if (rep.tier or "") != name:
        p.set_tier(rep.key, name)
    cat.replicas.set_tier(work.inode, work.provider, name)
    _end(cat, work.move, "done")


def rehydrate(cat: Catalog, p: Provider, rep: Replica, work: TierChange, name: str,
              now: float | None = None) -> None:
    """Move ``rep`` out of a tier that needs a restore (see the module docstring): ask the
    store once, record the tier it then says, and come back until it says one that reads."""
    now = time.time() if now is None else now
    asked = work.asked
    if not asked:
        p.set_tier(rep.key, name)
        asked = int(now)
    tier = p.head(rep.key).tier
    if (tier or "") != (rep.tier or ""):
        cat.replicas.set_tier(work.inode, work.provider, tier)
    if not restores(p, tier):
        _end(cat, work.move, "done")
        return
    if now - asked > REHYDRATE_GIVE_UP:
        _end(cat, work.move, "failed", f"{p.name} has not rehydrated {rep.key} "
             f"in {REHYDRATE_GIVE_UP / 3600:.0f} h (still {tier})")
        return
    enqueue(cat.work, dataclasses.replace(work, asked=asked), not_before=now + REHYDRATE_POLL)
