"""Executing queued work: replicate, move and delete objects in the stores.

``omnifs replicate --now`` drains the queue in the foreground with
:func:`drain`; the daemon runs :func:`execute` from its workers
(daemon/workers.py). The items, their payloads and their dedup keys are
omnifs/work.py's. Every executor is idempotent and re-reads the catalog, so
a stale or repeated item does the right thing or nothing:

``replicate``
    copy the current version from a synced replica to ``provider`` at the
    file's current path's key (``omnifs.layout.object_key``: the path, or the
    fallback key of a path too long for the store); obsolete once the inode is
    gone or already synced, or while ``provider`` is being swapped out
    (``Catalog.draining``: placement puts the copy elsewhere).
``move``
    server-side copy ``src`` -> the key of the file's current path, then
    delete ``src``; obsolete when the replica no longer sits at ``src``.
``delete``
    delete the object unless a replica row (of any inode) points at it again.
``tier``, ``drop``
    ``omnifs cost apply``'s moves: omnifs/costing/moves.py.
``attrs``
    rewrite the object's metadata (mode, owner, group, mtime, ctime) after a
    chmod/chown/utime, so a catalog rebuilt from the stores has them
    (a server-side copy onto itself; S3 rewrites the bytes doing so);
    nothing to do when the object already says so or is not the current
    version (the copy that makes it current writes them).

Concurrency caveat for the daemon: two items touching the same
(provider, key) must not run at the same time; ``drain`` runs items one by
one in queue order.

Before a copy lands at a key, :func:`free_key_steps` moves away any other
file's object still recorded there (a queued move that has not run yet), so
no upload destroys another file's only bytes. The mount (mountfs/publish.py)
and this module run the same steps, each with its own driver.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from omnifs.providers import META_SHA256, ObjectInfo, Provider
from omnifs.providers.errors import IntegrityError, NotFound, OmnifsError, PreconditionFailed

from . import transfer
from .blockcache import BlockCache
from .cached_content import CachedContent, CacheMiss, holds
from .catalog import Catalog, WorkItem
from .conflicts import expected, settle_refusal
from .fallbacks import WriteCheck, copies_in_store, write_check
from .layout import (
    META_CTIME,
    copy_object_to,
    delete_object,
    file_attrs,
    object_key,
    object_meta,
    orphan_key,
    placed_meta,
    write_sidecar,
)
from .progress import Stats
from .transfer import Options
from .work import (
    KINDS,
    Attrs,
    Delete,
    DropCopy,
    KeepVersion,
    Malformed,
    Move,
    Replicate,
    TierChange,
    enqueue,
    from_item,
)

log = logging.getLogger("omnifs.replication")

#: seconds a metadata rewrite waits, so one for chmod + chown + utime (cp -a) does them all
ATTRS_DELAY = 1.0


def queue_replicate(cat: Catalog, ino: int, provider: str, key: str, version: int) -> int:
    """Mark (ino, provider) pending at ``version`` and queue the copy that makes it synced."""
    cat.replicas.set(ino, provider, key, version, "pending")
    return enqueue(cat.work, Replicate(inode=ino, provider=provider))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Retry(Exception):
    """The item cannot run yet (e.g. no synced source); try again later."""


@dataclass
class DrainResult:
    done: int = 0
    failed: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)


#: how the executor drives the copy engine: one object per item (the daemon runs items in
#: parallel), and few in-object retries since a failed item is retried by the daemon with
#: backoff and health awareness instead of holding a worker and its limiters
COPY_OPTIONS = Options(transfers=1, retries=1, backoff=0.1)


@dataclass
class Copied:
    etag: str | None
    #: bytes the copy moved (the object's size when copied server-side within one store)
    nbytes: int
    server_side: bool
    #: the bytes came from the local block cache, not from a store
    from_cache: bool = False

    @property
    def source(self) -> str:
        """Where the bytes came from: ``cache``, ``server-side`` or ``store``."""
        return "cache" if self.from_cache else "server-side" if self.server_side else "store"


def copy_object(src: Provider, src_key: str, dst: Provider, dst_key: str, size: int,
                meta: dict[str, str], *, options: Options | None = None,
                check: WriteCheck | None = None) -> Copied:
    """Copy one replica with the copy engine (``omnifs.transfer``), verified.

    ``meta`` is built from the catalog, so the engine checks the streamed
    bytes against the catalog's SHA-256 for this version (not whatever the
    source object claims), aborts the upload before its last byte on a
    mismatch, removes the destination object and raises IntegrityError: the
    replica is never recorded as synced. Both replicas in one store: the
    engine's server-side copy (no byte passes through this machine).
    ``check``: what ``dst_key`` must hold before (omnifs/fallbacks.py).
    """
    info = ObjectInfo(key=src_key, size=size, metadata=dict(meta))
    stats = Stats()
    out = transfer.copy_object(src, src_key, dst, dst_key, options=options or COPY_OPTIONS,
                               stats=stats, src_info=info, check=check)
    server_side = (options or COPY_OPTIONS).server_side and transfer.same_store(src, dst)
    return Copied(out.etag if out is not None else None, stats.snapshot().done_bytes,
                  server_side)


@dataclass(frozen=True)
class Relocation:
    """One copy :func:`free_key_steps` needs: the object at ``key`` to ``dest`` in one store.

    ``path`` is the file path the copy's object names (its own key, or the
    path of a fallback key: omnifs/layout.py). :meth:`run` answers whether
    it copied: False when the object at ``key`` is gone.
    """

    key: str
    dest: str
    path: str

    def run(self, store: Provider) -> bool:
        try:
            copy_object_to(store, self.key, self.dest, self.path)
        except NotFound:
            return False
        return True


#: what :func:`free_key_steps` yields: a copy to run, its driver sending back whether the
#: source was there, or None just before a catalog write (the driver sends back None)
FreeKeySteps = Generator[Relocation | None, bool | None, None]


def free_key_steps(cat: Catalog, store: Provider, provider: str, key: str, owner: int,
                   depth: int = 0) -> FreeKeySteps:
    """Make ``provider``/``key`` free for inode ``owner``: move other inodes' objects away.

    A key can still be held by another inode whose queued move has not run
    yet (``mv a b; echo new > a``): its object goes to the key of that
    inode's current path (an orphan key when it has none), whose own holders
    move first, and its replica row follows. A holder whose object is gone
    (its upload never happened) loses its row: there is nothing to keep.

    The catalog is read and written on the caller's thread; the store copies
    are the driver's to run (:func:`free_key` in this thread, the mount in a
    worker thread), and every catalog write is announced first, so a driver
    on an event loop can wait for another process's write lock elsewhere.
    """
    for holder in cat.replicas.holders(provider, key):
        if holder.inode == owner:
            continue
        if cat.ns.get(holder.inode) is None:
            yield None
            cat.replicas.drop(holder.inode, provider)
            continue
        dest_path = cat.ns.path_of(holder.inode)
        dest = orphan_key(holder.inode) if dest_path is None else object_key(store, dest_path)
        if dest == key:
            dest = orphan_key(holder.inode)
        if depth < 8:
            yield from free_key_steps(cat, store, provider, dest, holder.inode, depth + 1)
        copied = yield Relocation(key, dest, dest_path or dest)
        yield None
        if not copied or cat.ns.get(holder.inode) is None:
            # its object is gone, or the file was removed during the copy: no row to keep
            cat.replicas.drop(holder.inode, provider)
            continue
        cat.replicas.set(holder.inode, provider, dest, holder.version, holder.state, holder.etag)


def free_key(cat: Catalog, providers: dict[str, Provider], provider: str, key: str,
             owner: int) -> None:
    """:func:`free_key_steps`, run in this thread."""
    store = providers[provider]
    steps = free_key_steps(cat, store, provider, key, owner)
    answer: bool | None = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration:
            return
        answer = None if step is None else step.run(store)


def copy_from_cache(cache: BlockCache, sha: str, size: int, dst: Provider, dst_key: str,
                    meta: dict[str, str], check: WriteCheck | None = None) -> Copied | None:
    """Upload a content from the local block cache; None when the cache could not provide it.

    The mount leaves the bytes of every file written through it in the cache
    (mountfs/written.py), so the copies to a file's other stores need no
    download from its first one. The bytes go through the copy engine's
    checked upload against the catalog's SHA-256, like a store's (a block
    that fails, or leaves the cache half way, aborts the upload before its
    end: nothing wrong is stored).
    """
    try:
        out, _ = transfer.upload_checked(CachedContent(cache, sha, size), size, {"sha256": sha},
                                         dst, dst_key, meta, provider="cache", key=dst_key,
                                         check=check)
    except (CacheMiss, IntegrityError) as e:
        log.info("%s: cached copy unusable (%s); copying from a store", dst_key, e)
        return None
    transfer.check_stored_size(dst, dst_key, out, size)
    return Copied(out.etag if out is not None else None, size, False, from_cache=True)


#: called with (provider, key, reason) before an object holding a version is deleted
#: ("deleted") or overwritten by a newer one ("overwritten"): [dr] keep_versions_for
#: (omnifs.dr.versions.Keeper, whose keywords a set-aside copy's item adds)
Keep = Callable[..., None]


def execute(cat: Catalog, providers: dict[str, Provider], item: WorkItem, *,
            cache: BlockCache | None = None,
            on_copy: Callable[[Copied], None] | None = None, keep: Keep | None = None) -> int:
    """Run one item; the bytes it copied. Raises Retry or an OmnifsError to have it retried.

    The byte count is what a replicate actually moved: 0 for an item that
    found nothing to do (obsolete, already synced), so metrics count copies,
    not queue entries. With ``cache``, a replicate takes the bytes from the
    local block cache when it holds the whole version (:func:`copy_from_cache`).
    ``on_copy`` hears of every replica made (metrics: where its bytes came from).
    ``keep`` is called before a version's object is deleted or overwritten.
    """
    work = from_item(item)
    if isinstance(work, Replicate):
        return _replicate(cat, providers, work, cache, on_copy, keep)
    if isinstance(work, TierChange):  # omnifs cost apply's tier moves
        from .costing.moves import change_tier

        change_tier(cat, providers, work)
    elif isinstance(work, DropCopy):
        from .drop_copy import drop_copy

        drop_copy(cat, providers, work)
    elif isinstance(work, KeepVersion):  # [dr] keep_versions_for, the mount's side
        from .dr.versions import keep_version

        keep_version(providers, work, keep)
    elif isinstance(work, Delete):
        _delete(cat, providers, work.provider, work.key, keep)
    elif isinstance(work, Move):
        _move(cat, providers, work)
    else:
        _attrs(cat, providers, work)
    return 0


def _delete(cat: Catalog, providers: dict[str, Provider], provider: str, key: str,
            keep: Keep | None = None) -> None:
    if provider not in providers or cat.replicas.holders(provider, key):
        return
    if keep is not None:
        keep(providers[provider], key, "deleted")
    delete_object(providers[provider], key)


def _move(cat: Catalog, providers: dict[str, Provider], work: Move) -> None:
    ino, provider, src = work.inode, work.provider, work.src
    rep = cat.replicas.get(ino, provider)
    if rep is None or rep.key != src or provider not in providers:
        return
    p = providers[provider]
    path = cat.ns.path_of(ino)
    dst = orphan_key(ino) if path is None else object_key(p, path)
    if dst == src:
        return
    free_key(cat, providers, provider, dst, ino)
    inode = cat.ns.get(ino)
    # a current replica's metadata is rewritten on the way (its attributes may have moved)
    meta = current_meta(cat, inode) if inode is not None and rep.version == inode.version \
        else None
    try:
        if copies_in_store(p):
            if meta is None:
                copy_object_to(p, src, dst, path or dst)
            else:
                placed, sidecar = placed_meta(p, dst, path or dst, meta)
                p.copy(src, dst, placed)
                write_sidecar(p, dst, sidecar)
        else:
            info = p.head(src)
            placed, sidecar = placed_meta(p, dst, path or dst, meta or info.metadata)
            with p.open_read(src) as stream:
                p.write(dst, stream, info.size, placed, info.content_type)
            write_sidecar(p, dst, sidecar)
    except NotFound:
        # never uploaded there (or already moved by someone else): the row is wrong
        if rep.state != "pending":
            cat.replicas.set_state(ino, provider, "stale")
            enqueue(cat.work, Replicate(inode=ino, provider=provider))
        return
    with cat.transaction():
        gone = cat.ns.get(ino) is None
        if not gone:
            cat.replicas.set(ino, provider, dst, rep.version, rep.state, rep.etag)
    if gone and not cat.replicas.holders(provider, dst):
        delete_object(p, dst)  # removed during the move: the copy belongs to nobody
    if not cat.replicas.holders(provider, src):
        delete_object(p, src)


def _replicate(cat: Catalog, providers: dict[str, Provider], work: Replicate,
               cache: BlockCache | None = None,
               on_copy: Callable[[Copied], None] | None = None, keep: Keep | None = None) -> int:
    ino, target = work.inode, work.provider
    inode = cat.ns.get(ino)
    if (inode is None or inode.kind != "file" or target not in providers
            or target in cat.draining()):
        return 0
    path = cat.ns.path_of(ino)
    if path is None:
        return 0
    key = object_key(providers[target], path)
    replicas = cat.replicas.of(ino)
    existing = next((r for r in replicas if r.provider == target), None)
    if existing and existing.state == "synced" and existing.version == inode.version \
            and existing.key == key:
        return 0
    sources = [r for r in replicas if r.state == "synced"
               and r.version == inode.version and r.provider != target and r.provider in providers]
    # the bytes a mount on this host left in the cache need no download, and no source up
    in_cache = ((cache, inode.sha256) if cache is not None and inode.sha256
                and holds(cache, inode.sha256, inode.size) else None)
    if not sources and in_cache is None:
        raise Retry(f"{path}: no synced replica to copy from yet")
    dst = providers[target]
    # the write expects what the catalog says is at the key (omnifs/fallbacks.py)
    holders = cat.replicas.holders(target, key)
    check = write_check(dst, *expected(cat, target, key, ino, holders))
    if any(h.inode != ino for h in holders):  # another file's object sits there: moved first
        free_key(cat, providers, target, key, ino)
    if (keep is not None and existing is not None and existing.key == key
            and existing.version < inode.version and existing.state == "stale"):
        keep(dst, key, "overwritten")
    # the copy's key and version recorded before the write (a crash leaves a row naming
    # the object); the row queued with the item (a mount's close) usually says so already,
    # and a file removed meanwhile is then caught after the copy, which deletes the object
    if not (existing is not None and existing.state == "pending" and existing.key == key
            and existing.version == inode.version and existing.etag is None
            and existing.tier is None):
        # the file's row locked, not the whole catalog: workers on many hosts record at once
        with cat.transaction(exclusive=False):
            if cat.ns.get_locked(ino) is None:
                return 0  # removed meanwhile: nothing to copy
            cat.replicas.set(ino, target, key, inode.version, "pending")
    meta, sidecar = placed_meta(dst, key, path, current_meta(cat, inode))

    def copy(check: WriteCheck) -> Copied:
        copied = None
        if in_cache is not None:
            copied = copy_from_cache(*in_cache, inode.size, dst, key, meta, check)
        if copied is None:
            if not sources:
                raise Retry(f"{path}: its cached copy is gone and no synced replica is usable")
            src = sources[0]
            copied = copy_object(providers[src.provider], src.key, dst, key, inode.size, meta,
                                 check=check)
        return copied

    try:
        copied = copy(check)
    except PreconditionFailed:
        # changed behind our back: theirs is kept aside (omnifs/conflicts.py), then ours
        copies = max(2, len(cat.replicas.of(ino)))
        copied = copy(settle_refusal(cat, dst, ino, key, path, copies))
    write_sidecar(providers[target], key, sidecar)
    if on_copy is not None:
        on_copy(copied)
    etag = copied.etag
    with cat.transaction(exclusive=False):
        now = cat.ns.get_locked(ino)
        if now is not None and now.version != inode.version:
            cat.replicas.set(ino, target, key, inode.version, "stale", etag)
        elif now is not None:
            cat.replicas.set(ino, target, key, inode.version, "synced", etag, time.time())
    if now is None:
        # removed during the copy: the object just written belongs to nobody
        if not cat.replicas.holders(target, key):
            delete_object(providers[target], key)
        return copied.nbytes
    if (existing is not None and existing.key != key
            and not cat.replicas.holders(target, existing.key)):
        delete_object(providers[target], existing.key)
    return copied.nbytes


def replicate_now(cat: Catalog, providers: dict[str, Provider], ino: int, provider: str, *,
                  cache: BlockCache | None = None) -> int:
    """Give ``ino`` a synced replica of its current version on ``provider`` now; bytes copied.

    The replicate item's steps, without the queue (``omnifs migrate provider``).
    Raises Retry or an OmnifsError like :func:`execute`.
    """
    return _replicate(cat, providers, Replicate(inode=ino, provider=provider), cache)


def current_meta(cat: Catalog, inode) -> dict[str, str]:
    """The metadata an object of ``inode``'s current version carries (omnifs.layout)."""
    return object_meta(inode.sha256, inode.mtime_ns, file_attrs(inode, cat.catalog_id()))


def queue_attrs(cat: Catalog, ino: int, providers: list[str] | None = None) -> int:
    """Queue the metadata rewrite of ``ino``'s current replicas (or of ``providers``'); how many."""
    inode = cat.ns.get(ino)
    if inode is None or inode.kind != "file":
        return 0
    n = 0
    for r in cat.replicas.of(ino):
        if r.state == "synced" and r.version == inode.version and (
                providers is None or r.provider in providers):
            enqueue(cat.work, Attrs(inode=ino, provider=r.provider),
                    not_before=time.time() + ATTRS_DELAY)
            n += 1
    return n


def _attrs(cat: Catalog, providers: dict[str, Provider], work: Attrs) -> None:
    ino, provider = work.inode, work.provider
    inode = cat.ns.get(ino)
    rep = cat.replicas.get(ino, provider)
    if (inode is None or inode.kind != "file" or provider not in providers or rep is None
            or rep.state != "synced" or rep.version != inode.version):
        return
    p = providers[provider]
    try:
        info = p.head(rep.key)
    except NotFound:
        return  # gone behind our back: the reconciler restores it, with fresh metadata
    want = current_meta(cat, inode)
    # the content's own keys stay as the object has them: bytes uploaded since our read of
    # the catalog must not be labelled with an older SHA-256
    want.pop(META_SHA256, None)
    if all(info.metadata.get(k) == v for k, v in want.items() if k != META_CTIME):
        return
    out = p.copy(rep.key, rep.key, {**info.metadata, **want})
    with cat.transaction():
        now = cat.replicas.get(ino, provider)
        if now is not None and now.key == rep.key and now.version == rep.version:
            cat.replicas.set(ino, provider, rep.key, rep.version, now.state, out.etag)


def item_path(cat: Catalog, item: WorkItem) -> str | None:
    try:
        work = from_item(item)
    except Malformed:
        return None
    if isinstance(work, KeepVersion):
        return work.path.lstrip("/")
    if isinstance(work, Delete):
        return work.key
    return cat.ns.path_of(work.inode)


def drain(cat: Catalog, providers: dict[str, Provider], *, path: str | None = None,
          progress: Callable[[int, int, WorkItem], None] | None = None,
          max_rounds: int = 3, cache: BlockCache | None = None,
          keep: Keep | None = None) -> DrainResult:
    """Run every ready item (under ``path`` when given) now, in queue order.

    Items that must wait (no source yet) are retried up to ``max_rounds``
    times in this call, since an earlier item in the same drain may provide
    the source; what still fails stays queued with backoff.
    """
    result = DrainResult()
    me = worker_id()
    prefix = path.strip("/") if path else None
    for _round in range(max_rounds):
        items = cat.work.claim(me, kinds=KINDS, limit=1_000_000, lease=3600)
        if prefix:
            under = []
            for it in items:
                p = item_path(cat, it)
                if p is not None and (p == prefix or p.startswith(prefix + "/")):
                    under.append(it)
                else:
                    cat.work.release_claims_of(it.id)
            items = under
        if not items:
            break
        total = len(items)
        retry_later = 0
        for n, item in enumerate(items, 1):
            try:
                execute(cat, providers, item, cache=cache, keep=keep)
            except Retry as e:
                retry_later += 1
                cat.work.fail(item.id, str(e), retry_in=0 if _round + 1 < max_rounds else 30)
                if _round + 1 == max_rounds:
                    result.deferred += 1
                    result.errors.append(str(e))
            except OmnifsError as e:
                result.failed += 1
                result.errors.append(str(e))
                cat.work.fail(item.id, str(e), retry_in=30 if e.transient else 300)
            else:
                cat.work.complete(item.id)
                result.done += 1
            if progress:
                progress(n, total, item)
        if not retry_later:
            break
    return result
