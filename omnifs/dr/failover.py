"""Failover of a store declared lost, and failback once it is healthy again.

``failover(P)``: P is marked draining (omnifs/migration/swap.py's mark:
running mounts and the daemon place nothing there from the next second
on; reads already avoid stores whose rows are gone). Then, per file with a
replica row on P, the row is dropped and the file gets ``copies`` synced
replicas again: copied from a surviving replica with the replicate steps
(:func:`omnifs.replication.replicate_now`, verified), or, when P held the
only copy, from the newest backup holding its content (checked against its
SHA-256 as it streams). Files that neither can bring back are named.
``failback(P)`` first proves P works (an object written, read back, and
deleted), then lifts the mark.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from omnifs.catalog import Catalog
from omnifs.errors import IntegrityError, InvalidInput, OmnifsError
from omnifs.layout import RESERVED_PREFIX, object_key, placed_meta
from omnifs.migration.swap import draining_record
from omnifs.providers import Provider
from omnifs.replication import Retry, current_meta, replicate_now

from .fresh import write_object
from .target import Target


@dataclass
class FailedOver:
    lost: str
    files: int = 0
    from_replicas: int = 0
    from_backup: int = 0
    seconds: float = 0.0
    #: path -> why it has fewer than ``copies`` replicas now
    short: dict[str, str] = field(default_factory=dict)
    #: paths with no copy anywhere (not in any backup either)
    gone: list[str] = field(default_factory=list)


def failover(cat: Catalog, providers: dict[str, Provider], lost: str, *, copies: int,
             to: str | None = None, target: Target | None = None) -> FailedOver:
    """``providers``: the surviving stores (``lost`` left out); ``to`` first among them."""
    if lost in providers:
        raise InvalidInput(f"{lost} is the store declared lost: it cannot also be a survivor")
    start = time.monotonic()
    out = FailedOver(lost)
    with cat.transaction():
        cat.set_draining(lost, draining_record(to or "", "failover"))
    order = ([to] if to else []) + [n for n in providers if n != to]
    have = target.stored_ids() if target is not None else set()
    for ino in cat.replicas.inodes_on(lost):
        with cat.transaction():
            cat.replicas.drop(ino, lost)
        inode = cat.ns.get(ino)
        path = cat.ns.path_of(ino)
        if inode is None or path is None or inode.kind != "file":
            continue
        out.files += 1
        holders = [r.provider for r in cat.replicas.of(ino) if r.state == "synced"
                   and r.version == inode.version and r.provider in providers]
        try:
            if not holders:
                if target is None or not inode.sha256 or not target.has(inode.sha256, have):
                    out.gone.append(path)
                    continue
                holders.append(_from_backup(cat, providers[order[0]], target, ino, path))
                out.from_backup += 1
            for name in order:
                if len(holders) >= copies:
                    break
                if name not in holders:
                    replicate_now(cat, providers, ino, name)
                    holders.append(name)
                    out.from_replicas += 1
        except (Retry, OmnifsError) as e:
            out.short[path] = str(e).splitlines()[0]
            continue
        if len(holders) < copies:
            out.short[path] = f"{len(holders)} of {copies} copies: too few surviving stores"
    out.seconds = time.monotonic() - start
    return out


def _from_backup(cat: Catalog, p: Provider, target: Target, ino: int, path: str) -> str:
    inode = cat.ns.get(ino)
    assert inode is not None and inode.sha256
    key = object_key(p, path)
    meta, sidecar = placed_meta(p, key, path, current_meta(cat, inode))
    info = write_object(p, target, key, inode.sha256, inode.size, meta, sidecar)
    with cat.transaction():
        now = cat.ns.get(ino)
        state = "synced" if now is not None and now.version == inode.version else "stale"
        cat.replicas.set(ino, p.name, key, inode.version, state, info.etag, time.time())
    return p.name


def failback(cat: Catalog, p: Provider) -> None:
    """Prove ``p`` takes, returns and deletes an object; then it takes new replicas again."""
    key = f"{RESERVED_PREFIX}failback-probe-{os.getpid()}"
    body = os.urandom(4096)
    try:
        p.write_bytes(key, body)
        if p.read_bytes(key) != body:
            raise IntegrityError("the probe object came back different", provider=p.name)
        p.delete(key)
    except OmnifsError as e:
        raise OmnifsError(f"failback refused: {p.name} is not healthy yet: "
                          f"{str(e).splitlines()[0]}") from None
    with cat.transaction():
        cat.clear_draining(p.name)
