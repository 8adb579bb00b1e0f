"""The reconciler: notice what changed in the stores behind omnifs's back, and settle it.

Every ``reconcile_interval`` s each usable store is listed once and compared
with the replicas the catalog says it holds *synced at the current version*
(pending/stale replicas and files still staged are in motion and skipped):

* the object is gone -> the replica becomes stale and a copy from a good
  replica is queued (a deletion behind our back is undone: the catalog, not
  the store, is the source of truth for the namespace);
* the object's content differs (its SHA-256 metadata, or its size when it
  carries none) -> a conflict, settled by ``[replication] conflict``:

  - ``newest``: the side with the later mtime wins - the store's object
    (its ``omnifs_mtime`` metadata, else its last-modified time) against the
    catalog's mtime. If the store wins it becomes the file's new version and
    the other replicas are rewritten from it; else the store is rewritten;
  - ``primary``: the first provider in the config wins; a change found on
    the primary is adopted, a change anywhere else is overwritten;
  - ``keep-both``: the changed object is kept as a new file
    ``NAME.conflict-PROVIDER-YYYYmmddTHHMMSSZ`` beside the original (a
    server-side copy in the same store, replicated like any file) and the
    original is rewritten from a good replica.

Objects no replica row points at (new files put there by another tool) are
counted and left to ``omnifs import``.
"""

from __future__ import annotations

import logging
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from omnifs.catalog import Catalog
from omnifs.layout import visible_objects
from providers import ObjectInfo, OmnifsError, Provider

from .jobs import queue_replicate

log = logging.getLogger("omnifs.daemon")


@dataclass
class Outcome:
    restored: int = 0
    adopted: int = 0
    kept_both: int = 0
    unknown_objects: int = 0


def list_store(provider: Provider) -> dict[str, ObjectInfo]:
    return {o.key: o for o in visible_objects(provider)}


def changed(info: ObjectInfo, sha256: str | None, size: int) -> bool:
    if info.sha256 and sha256:
        return info.sha256 != sha256
    return info.size != size


def conflict_name(name: str, provider: str, when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{name}.conflict-{provider}-{stamp}"


def reconcile_provider(cat: Catalog, provider: Provider, listing: dict[str, ObjectInfo], *,
                       policy: str, primary: str | None, copies: int) -> Outcome:
    """Compare one store's listing with the catalog and queue the fixes."""
    out = Outcome()
    name = provider.name
    rows = cat.db.execute(
        "SELECT r.inode, r.key, i.version, i.sha256, i.size, i.mtime_ns FROM replicas r "
        "JOIN inodes i ON i.id = r.inode WHERE r.provider = ? AND r.state = 'synced' "
        "AND r.version = i.version AND i.staged = 0 AND i.parent IS NOT NULL", (name,)).fetchall()
    known = {r[0] for r in cat.db.execute("SELECT key FROM replicas WHERE provider = ?", (name,))}
    out.unknown_objects = sum(1 for k in listing if k not in known)
    for ino, key, version, sha256, size, mtime_ns in rows:
        info = listing.get(key)
        if info is None:
            if _still_current(cat, ino, name, version):
                with cat.transaction():
                    queue_replicate(cat, ino, name, key, version)
                out.restored += 1
                log.warning("%s: %s was deleted outside omnifs; restoring it", name, key)
            continue
        if not changed(info, sha256, size):
            continue
        theirs = info.mtime or 0.0
        ours = mtime_ns / 1e9
        if policy == "newest":
            adopt = theirs > ours
        elif policy == "primary":
            adopt = name == primary
        else:
            adopt = False
        if policy == "keep-both" and _keep_both(cat, provider, ino, key, info, copies):
            out.kept_both += 1
        if adopt:
            _adopt(cat, ino, name, key, info, version)
            out.adopted += 1
            log.warning("%s: %s was changed outside omnifs; adopted as the new version (%s)",
                        name, key, policy)
        else:
            if _still_current(cat, ino, name, version):
                with cat.transaction():
                    queue_replicate(cat, ino, name, key, version)
                out.restored += 1
                log.warning("%s: %s was changed outside omnifs; rewriting it (%s)",
                            name, key, policy)
    return out


def _still_current(cat: Catalog, ino: int, provider: str, version: int) -> bool:
    """The listing is a snapshot: skip a replica the mount or a worker touched since."""
    inode = cat.get(ino)
    replica = cat.replica(ino, provider)
    return (inode is not None and inode.version == version and replica is not None
            and replica.state == "synced" and replica.version == version)


def _adopt(cat: Catalog, ino: int, provider: str, key: str, info: ObjectInfo,
           version: int) -> None:
    with cat.transaction():
        if not _still_current(cat, ino, provider, version):
            return
        new = version + 1
        mtime_ns = int((info.mtime or time.time()) * 1e9)
        cat.update(ino, sha256=info.sha256, size=info.size, mtime_ns=mtime_ns, version=new)
        cat.add_version(ino, new, info.sha256, info.size, mtime_ns)
        cat.set_replica(ino, provider, key, new, "synced", etag=info.etag)
        cat.mark_others_stale(ino, new)
        for r in cat.replicas(ino):
            if r.provider != provider:
                queue_replicate(cat, ino, r.provider, r.key, new)


def _keep_both(cat: Catalog, provider: Provider, ino: int, key: str, info: ObjectInfo,
               copies: int) -> bool:
    """Copy the changed object aside in its store and give it its own catalog entry."""
    inode = cat.get(ino)
    if inode is None or inode.parent is None or inode.name is None:
        return False
    when = info.last_modified or time.time()
    new_name = conflict_name(inode.name, provider.name, when)
    parent_path = (cat.path_of(inode.parent) or "").strip("/")
    new_key = f"{parent_path}/{new_name}" if parent_path else new_name
    meta = dict(info.metadata)
    try:
        copied = provider.copy(key, new_key, meta)
    except OmnifsError as e:
        log.error("keep-both: cannot keep %s's copy of %s: %s", provider.name, key, e)
        return False
    mtime_ns = int((info.mtime or when) * 1e9)
    with cat.transaction():
        if cat.lookup(inode.parent, new_name) is not None:
            return False
        child = cat.create(inode.parent, new_name, stat.S_IFREG | (inode.mode & 0o7777),
                           inode.uid, inode.gid, size=info.size, mtime_ns=mtime_ns,
                           sha256=info.sha256, version=1)
        child_ino = child.id
        cat.add_version(child_ino, 1, info.sha256, info.size, mtime_ns)
        cat.set_replica(child_ino, provider.name, new_key, 1, "synced", etag=copied.etag)
        others = [r.provider for r in cat.replicas(ino) if r.provider != provider.name]
        for other in others[:max(copies - 1, 0)]:
            queue_replicate(cat, child_ino, other, new_key, 1)
    log.warning("%s: %s was changed outside omnifs; kept as %s", provider.name, key, new_key)
    return True


class Reconciler:
    """Runs rounds for the daemon: list each usable store in a thread, then settle."""

    def __init__(self, daemon) -> None:
        self.d = daemon

    async def round(self) -> Outcome:
        total = Outcome()
        d = self.d
        primary = next(iter(d.providers), None)
        for name, provider in d.providers.items():
            if not d.board.usable(name):
                continue
            try:
                async with d.limiters[name]:
                    listing = await trio.to_thread.run_sync(list_store, provider,
                                                            abandon_on_cancel=True)
                out = await trio.to_thread.run_sync(
                    lambda p=provider, lst=listing: reconcile_provider(
                        d.thread_catalogs.get(), p, lst, policy=d.config.conflict,
                        primary=primary, copies=d.config.copies))
            except OmnifsError as e:
                log.info("reconcile of %s skipped: %s", name, e)
                continue
            for f in ("restored", "adopted", "kept_both", "unknown_objects"):
                setattr(total, f, getattr(total, f) + getattr(out, f))
            for action in ("restored", "adopted", "kept_both"):
                if getattr(out, action):
                    d.metrics.conflicts.labels(name, action).inc(getattr(out, action))
        if total.restored or total.adopted or total.kept_both:
            d._kick()
        await d._repair()
        return total


