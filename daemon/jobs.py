"""How the daemon queues work for the replication executor: one place for payload shapes.

The executor (omnifs/replication.py) documents the payload of each kind;
the failover step and the reconciler only ever queue through these helpers,
so a change of payload is a change here.
"""

from __future__ import annotations

from omnifs.catalog import Catalog


def queue_replicate(catalog: Catalog, ino: int, provider: str, key: str, version: int) -> int:
    """Mark (ino, provider) pending at ``version`` and queue the copy that makes it synced."""
    catalog.set_replica(ino, provider, key, version, "pending")
    return catalog.enqueue("replicate", {"inode": ino, "provider": provider},
                           dedup=f"replicate:{ino}:{provider}")
