"""The ``drop`` work item: a copy leaves a store only after its replacements are verified.

Queued by ``omnifs cost apply`` (re-placement: copy to a cheaper store, then
drop the old copy) and by ``omnifs gov check --fix`` (copy to an allowed
store, then drop the copy a rule forbids). The item waits (Retry) until
every store in ``after`` holds a synced copy of the file's current version,
reads each back and checks its SHA-256 against the catalog's (a missing or
wrong copy is marked stale and copied again), and only then drops the old
replica's row and deletes its object. A ``cost_moves`` row named by the
item is settled as it ends.
"""

from __future__ import annotations

import hashlib
import logging

from omnifs.providers import Provider
from omnifs.providers.errors import NotFound

from .catalog import Catalog
from .layout import delete_object
from .work import DropCopy, Replicate, enqueue

log = logging.getLogger("omnifs.daemon")

_CHUNK = 1 << 20


def _sha256(p: Provider, key: str) -> str:
    h = hashlib.sha256()
    with p.open_read(key) as stream:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _settle(cat: Catalog, move: int, state: str, detail: str | None = None) -> None:
    if move:
        cat.cost.finish_move(move, state, detail)
    if state != "done":
        log.info("dropping a copy (move %s) %s: %s", move, state, detail)


def _unverified(cat: Catalog, providers: dict[str, Provider], ino: int, version: int,
                sha256: str | None, store: str) -> str | None:
    """Why ``store``'s copy cannot stand in yet (queuing a new copy when it is bad), or None."""
    kept = cat.replicas.get(ino, store)
    if kept is None or kept.state != "synced" or kept.version != version \
            or store not in providers:
        if kept is None or kept.state == "stale":
            enqueue(cat.work, Replicate(inode=ino, provider=store))
        return f"waiting for a synced copy on {store}"
    try:
        got = _sha256(providers[store], kept.key)
    except NotFound:
        got = None
    if got is None or (sha256 and got != sha256):
        cat.replicas.set_state(ino, store, "stale")
        enqueue(cat.work, Replicate(inode=ino, provider=store))
        return f"the copy on {store} is {'missing' if got is None else 'wrong'}; copying again"
    return None


def drop_copy(cat: Catalog, providers: dict[str, Provider], work: DropCopy) -> None:
    """Run a ``drop`` item (raises omnifs.replication.Retry to wait)."""
    from .replication import Retry

    inode = cat.ns.get(work.inode)
    rep = cat.replicas.get(work.inode, work.provider)
    if inode is None or rep is None or work.provider not in providers:
        _settle(cat, work.move, "obsolete", "the file or its copy is gone")
        return
    for store in work.stores_after:
        why = _unverified(cat, providers, work.inode, inode.version, inode.sha256, store)
        if why is not None:
            raise Retry(f"inode {work.inode}: {why} before leaving {work.provider}")
    with cat.transaction():
        cat.replicas.drop(work.inode, work.provider)
    if not cat.replicas.holders(work.provider, rep.key):
        delete_object(providers[work.provider], rep.key)
    _settle(cat, work.move, "done")
