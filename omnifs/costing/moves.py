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
"""

from __future__ import annotations

import logging

from omnifs.policy.tiering import needs_restore
from omnifs.providers import Provider

from ..catalog import Catalog, Replica
from ..fallbacks import tier_for
from ..prices import SCHEME_TABLES
from ..work import TierChange

log = logging.getLogger("omnifs.cost")


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
    if (rep.tier or "") != name:
        p.set_tier(rep.key, name)
    cat.replicas.set_tier(work.inode, work.provider, name)
    _end(cat, work.move, "done")
