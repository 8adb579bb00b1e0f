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
from policy.placement import PlacementError, ProviderView, Rule, place

from .jobs import queue_replicate

log = logging.getLogger("omnifs.daemon")


def undefer(catalog: Catalog, kinds: Sequence[str]) -> int:
    """Pending items of ``kinds`` waiting out a backoff become claimable now."""
    marks = ",".join("?" * len(kinds))
    return catalog.db.execute(
        f"UPDATE work SET not_before = 0 WHERE state = 'pending' AND kind IN ({marks})",
        tuple(kinds)).rowcount


def recreate_elsewhere(catalogs, lost: str, views: Sequence[ProviderView],
                       rules: Sequence[Rule], copies: int) -> int:
    """Drop ``lost``'s replica rows; queue new copies on other providers. Returns copies queued."""
    cat: Catalog = catalogs.get()
    rows = cat.db.execute("SELECT r.inode, r.key FROM replicas r WHERE r.provider = ?",
                          (lost,)).fetchall()
    queued = 0
    for ino, key in rows:
        inode = cat.get(ino)
        path = cat.path_of(ino) if inode is not None else None
        with cat.transaction():
            cat.drop_replica(ino, lost)
            if inode is None or path is None:
                continue
            holders = {r.provider for r in cat.replicas(ino) if r.state != "failed"}
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
