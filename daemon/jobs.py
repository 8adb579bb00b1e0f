"""How the daemon queues work for the replication executor: one place for payload shapes.

The executor (omnifs/replication.py) documents the payload of each kind and
owns :func:`queue_replicate`, which ``omnifs check --repair`` uses too; the
failover step and the reconciler only ever queue through it.
"""

from __future__ import annotations

from omnifs.replication import queue_replicate

__all__ = ["queue_replicate"]
