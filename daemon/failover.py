"""Failover steps that change the catalog: catch-up and re-placing a lost provider's copies.

Reads and new writes move away from a down provider by themselves (the
mount and placement read ``provider_health``); what needs doing here is
(a) making deferred work claimable again the moment a provider returns, and
(b) when a provider is declared lost, giving each of its files a new replica
on an allowed, usable provider so the file has ``copies`` again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from omnifs.catalog import Catalog
from omnifs.policy.placement import PlacementError, ProviderView, Rule, place
from omnifs.replication import queue_replicate
from omnifs.work import Delete, enqueue

log = logging.getLogger("omnifs.daemon")


def placeable(cat: Catalog, views: Sequence[ProviderView]) -> list[ProviderView]:
    """``views`` without the providers being swapped out (no new replica goes there)."""
    draining = cat.draining()
    return [v for v in views if v.name not in draining]


def undefer(catalog: Catalog, kinds: Sequence[str]) -> int:
    """Pending items of ``kinds`` waiting out a backoff become claimable now."""
    return catalog.work.release_deferred(kinds)


def recreate_elsewhere(catalogs, lost: str, views: Sequence[ProviderView],
                       rules: Sequence[Rule], copies: int) -> int:
    """Drop ``lost``'s replica rows; queue new copies on other providers. Returns copies queued."""
    cat: Catalog = catalogs.get()
    views = placeable(cat, views)
    queued = 0
    for ino in cat.replicas.inodes_on(lost):
        inode = cat.ns.get(ino)
        path = cat.ns.path_of(ino) if inode is not None else None
        with cat.transaction():
            cat.replicas.drop(ino, lost)
            if inode is None or path is None:
                continue
            holders = {r.provider for r in cat.replicas.of(ino) if r.state != "failed"}
            missing = copies - len(holders)
            if missing <= 0:
                continue
            try:
                placement = place(path, views, rules, copies=missing,
                                  exclude=holders | {lost}, balance=True)
            except PlacementError as e:
                log.error("cannot restore copies of %s: %s", path, e)
                continue
            for target in placement.targets:
                queue_replicate(cat, ino, target, path.lstrip("/"), inode.version)
                queued += 1
            if placement.shortfall:
                log.warning("%s: only %d of %d copies can be placed without %s", path,
                            len(holders) + len(placement.targets), copies, lost)
    return queued


def repair(catalogs, views: Sequence[ProviderView], rules: Sequence[Rule], copies: int,
           limit: int = 1000) -> tuple[int, int]:
    """Converge on ``copies``: queue copies for under-replicated files, drop surplus stale ones.

    Catches what no queued item covers any more: items parked as failed, a
    provider that returned after being declared lost, files the mount placed
    before placement knew the rules. Returns (copies queued, stale replicas
    dropped). Files still being written (staged) are left alone.
    """
    cat: Catalog = catalogs.get()
    lost = {v.name for v in views if v.status == "lost"}
    views = placeable(cat, views)
    queued = 0
    for ino in cat.replicas.short_of(copies, lost, limit):
        with cat.transaction():
            inode = cat.ns.get(ino)
            path = cat.ns.path_of(ino)
            if inode is None or path is None:
                continue
            reps = cat.replicas.of(ino)
            holders = {r.provider for r in reps if r.state == "synced"
                       and r.version == inode.version and r.provider not in lost}
            on_the_way = cat.work.queued_copies(ino)
            busy = {r.provider for r in reps if r.state == "pending"
                    and r.version == inode.version and r.provider in on_the_way}
            missing = copies - len(holders) - len(busy)
            if missing <= 0:
                continue
            try:
                placement = place("/" + path, views, rules, copies=missing,
                                  exclude=holders | busy | lost, balance=True)
            except PlacementError:
                continue
            for target in placement.targets:
                queue_replicate(cat, ino, target, path, inode.version)
                queued += 1
    dropped = 0
    for ino, provider, key in cat.replicas.surplus_stale(copies, lost, limit):
        with cat.transaction():
            rep = cat.replicas.get(ino, provider)
            if rep is None or rep.state != "stale":
                continue
            cat.replicas.drop(ino, provider)
            if not cat.replicas.holders(provider, key):
                enqueue(cat.work, Delete(provider=provider, key=key))
            dropped += 1
    return queued, dropped
