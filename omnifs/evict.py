"""The ``evict`` work item: a copy leaves a store only after another one is verified.

``omnifs gov check --fix`` queues, for a file held where a rule forbids, a
``replicate`` to an allowed store and an ``evict`` of the forbidden copy that
keeps that store. The evict waits (Retry) until the kept replica is synced
at the file's current version, reads it back and checks its SHA-256 against
the catalog's, and only then drops the forbidden replica's row and deletes
its object.
"""

from __future__ import annotations

import hashlib

from omnifs.providers import Provider
from omnifs.providers.errors import NotFound

from .catalog import Catalog
from .layout import delete_object
from .replication import Retry
from .work import Evict, Replicate, enqueue

_CHUNK = 1 << 20


def _sha256(p: Provider, key: str) -> str:
    h = hashlib.sha256()
    with p.open_read(key) as stream:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def evict(cat: Catalog, providers: dict[str, Provider], work: Evict) -> None:
    ino, provider, keep = work.inode, work.provider, work.keep
    rep = cat.replicas.get(ino, provider)
    inode = cat.ns.get(ino)
    if rep is None or inode is None or provider not in providers:
        return
    kept = cat.replicas.get(ino, keep)
    if kept is None or kept.state != "synced" or kept.version != inode.version \
            or keep not in providers:
        if kept is None or kept.state == "stale":
            enqueue(cat.work, Replicate(inode=ino, provider=keep))
        raise Retry(f"inode {ino}: waiting for a synced copy on {keep} before leaving {provider}")
    try:
        got = _sha256(providers[keep], kept.key)
    except NotFound:
        cat.replicas.set_state(ino, keep, "stale")
        enqueue(cat.work, Replicate(inode=ino, provider=keep))
        raise Retry(f"inode {ino}: the copy on {keep} is missing; copying again") from None
    if inode.sha256 and got != inode.sha256:
        cat.replicas.set_state(ino, keep, "stale")
        enqueue(cat.work, Replicate(inode=ino, provider=keep))
        raise Retry(f"inode {ino}: the copy on {keep} does not match its SHA-256; copying again")
    with cat.transaction():
        cat.replicas.drop(ino, provider)
    if not cat.replicas.holders(provider, rep.key):
        delete_object(providers[provider], rep.key)
