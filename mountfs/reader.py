"""The mount's reader: FUSE reads of a file's current version through the block engine.

:class:`CachedStoreReader` turns the catalog's view of a file (its inode and
the replicas holding its current version) into a
:class:`~mountfs.blocks.FileRef` and reads it through the block engine
(mountfs/blocks.py): the disk cache first, then the fastest replica, with
read-ahead; a version just written here and not yet cached comes from its
own written file (mountfs/written.py), no store asked. It also copies a
whole file into a staging file before a write (mountfs/staging_fill.py) and
tells the kernel when it may keep its pages.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from omnifs.blockcache import BlockCache
from omnifs.costing.restore import Restores
from omnifs.providers.errors import Archived, NoSpace, OmnifsError

from .blocks import WRITE_BEHIND, FileRef, ReadPath
from .readhandle import ReadHandle
from .replicas import Replica, ReplicaReader
from .staging_fill import fill_staging

if TYPE_CHECKING:
    from omnifs.catalog import Catalog, Inode
    from omnifs.config import Config
    from omnifs.providers.base import Provider

    from .stores import Stores
    from .written import Kept

#: ``read_via(name, provider)``: the provider reads of store ``name`` go to instead
ReadVia = Callable[[str, "Provider"], "Provider"]

#: inodes whose last-open content hash is remembered for keep_cache
_SEEN_MEMORY = 100_000


class CachedStoreReader:
    """The mount's reader: disk cache, fastest replica, read-ahead.

    The mount calls ``read(handle, inode, off, size)``, ``drop(handle)`` (at
    release), ``fetch_whole(inode, fd)`` (copying a whole file into a staging
    file before a write: mountfs/staging_fill.py), ``keep_cache(inode)`` (at
    open) and ``close()`` (at unmount). ``handle`` is any object that stands
    for one FUSE file handle while it is open. Files the catalog knows no
    SHA-256 for are read through the same replica logic but not cached:
    without a content hash an entry could go stale.

    When no store gives a file's bytes, the error names the file (one log
    line per file, mountfs/fuse_errors.py) and is EIO at the FUSE boundary:
    ``NotFound`` when the stores answer that they do not have it (or no
    replica of the current version is left), ``Unavailable`` when they
    cannot be reached. A file whose every copy is archived is ``Archived``
    (ENODATA) once a restore has been asked for (omnifs/costing/restore.py).

    ``read_via(name, provider)``, when given, returns the provider that reads
    of store ``name`` go to instead of ``provider`` (the store's own): tests
    put latency in front of a store there (tests/slow_reads.py). Writes,
    deletes and health probes by the rest of the mount do not go through it.
    """

    def __init__(self, catalog: Catalog, stores: Stores, config: Config, *,
                 limiter_tokens: int = 32,
                 read_via: ReadVia | None = None):
        import trio

        self.cat = catalog
        self.stores = stores
        #: restores asked of the stores for files whose every copy is archived
        self.restores = Restores()
        cache = BlockCache.for_config(config)
        # the process-wide REGISTRY (`omnifs status` shows it); read failures reach the
        # mount's health through ``stores``
        self.replicas = ReplicaReader(health=stores)
        self.path = ReadPath(cache, self.replicas, readahead=config.cache_readahead)
        self.uncached = ReadPath(None, self.replicas, block_size=config.cache_block_size)
        self._limiter = trio.CapacityLimiter(limiter_tokens)
        #: per FUSE handle: (content version it was opened for, its ReadHandle)
        self._open: dict[int, tuple[tuple, ReadHandle]] = {}
        #: inode -> content hash at its last open, oldest first (for keep_cache)
        self._seen: dict[int, str | None] = {}
        #: files just written here, waiting for the cache (mountfs/written.py; the mount
        #: sets it): a read of a version one of them holds is served from it
        self.written: Kept | None = None
        #: store name -> the provider its reads go to, where ``read_via`` put one
        self._read_via = {} if read_via is None else {
            name: read_via(name, stores[name]) for name in stores.order}
        # round trips measured now, in the background, so that the first read
        # already goes to the fastest replica instead of the first in placement order
        self.replicas.probe([self._provider(name) for name in stores.order])
        # the first cold read pays no page faults for its buffers
        threading.Thread(target=self.path.pool.warm, args=(WRITE_BEHIND,), name="omnifs-poolwarm",
                         daemon=True).start()

    def _provider(self, name: str) -> Provider:
        """The provider reads of store ``name`` go to."""
        p = self._read_via.get(name)
        return p if p is not None else self.stores[name]

    def sources(self, inode: Inode) -> list[tuple[str, str]]:
        """(store, key) of the replicas holding the current version, best first for a read.

        Health order (:meth:`Stores.read_order`: healthy, degraded, down),
        config order among equals; a lost store's replica is left out.
        """
        reps = {r.provider: r for r in self.cat.replicas.of(inode.id)
                if r.state == "synced" and r.version == inode.version}
        names = [n for n in self.stores.order if n in reps]
        return [(n, reps[n].key) for n in self.stores.read_order(names)]

    def _file_ref(self, inode: Inode) -> FileRef:
        reps = [Replica(self._provider(name), key) for name, key in self.sources(inode)]
        content = inode.sha256 or f"uncached:{inode.id}:{inode.version}"
        return FileRef(content, inode.size, reps)

    def _handle_for(self, handle, inode) -> ReadHandle:
        version = (inode.version, inode.sha256, inode.size)
        known = self._open.get(id(handle))
        if known is not None and known[0] == version:
            return known[1]
        if known is not None:
            known[1].close()
        ref = self._file_ref(inode)
        if self.written is not None:
            ref.local = self.written.lend(inode.sha256)
        rh = (self.path if inode.sha256 else self.uncached).open(ref)
        self._open[id(handle)] = (version, rh)
        return rh

    async def read(self, handle, inode, off: int, size: int) -> bytes | memoryview:
        import trio

        if off >= inode.size or size <= 0:
            return b""
        rh = self._handle_for(handle, inode)
        view = rh.try_read(off, size)
        if view is not None:
            return view  # in memory already: no worker thread
        try:
            return await trio.to_thread.run_sync(rh.read, off, size, limiter=self._limiter)
        except OmnifsError as e:
            # a queued move (after a rename) may have moved the objects since their keys
            # were read: with the keys the catalog has now, once
            if {(r.name, r.key) for r in rh.file.replicas} == set(self.sources(inode)):
                raise self._unreadable(inode, e) from None
        await self.drop(handle)
        rh = self._handle_for(handle, inode)
        try:
            return await trio.to_thread.run_sync(rh.read, off, size, limiter=self._limiter)
        except OmnifsError as e:
            raise self._unreadable(inode, e) from None

    async def drop(self, handle) -> None:
        import trio

        known = self._open.pop(id(handle), None)
        if known is not None:
            # in a worker: letting go of a handle's blocks unmaps its cached ones,
            # 80 ms on the event loop after a warm 1 GiB read, no FUSE request served
            await trio.to_thread.run_sync(known[1].close, limiter=self._limiter)

    async def fetch_whole(self, inode, dest_fd: int,
                          before_write: Callable[[int], None] | None = None,
                          written: int | None = None) -> hashlib._Hash:
        """The current content into ``dest_fd`` (a new staging file); the SHA-256 of it.

        Cached blocks from the cache, the rest from the fastest replica (see
        mountfs/staging_fill.py); checked against the catalog's hash.
        ``before_write(n)`` is asked before each ``n`` bytes of data are written
        (the mount's room on local disk); its ENOSPC ends the copy. ``written``: a
        descriptor of the just-written file with these bytes, not yet in the cache.
        """
        import trio

        cache = self.path.cache if inode.sha256 else None
        for attempt in (0, 1):
            ref = self._file_ref(inode)
            try:
                return await trio.to_thread.run_sync(
                    fill_staging, dest_fd, ref, cache, self.replicas, self.path.block_size,
                    inode.sha256, before_write, written, limiter=self._limiter)
            except NoSpace:
                raise
            except OmnifsError as e:
                # a queued move (after a rename) may have moved the objects since their keys
                # were read: with the keys the catalog has now, once
                moved = [(r.name, r.key) for r in ref.replicas] != self.sources(inode)
                if attempt or not moved:
                    raise self._unreadable(inode, e) from None
        raise AssertionError("unreachable")

    def _unreadable(self, inode, err: OmnifsError) -> OmnifsError:
        """``err`` (no store gave the bytes) as the same kind of error, naming the file.

        A file whose every copy is archived gets a restore asked of each store
        (once per version: :class:`omnifs.costing.restore.Restores`) and
        stays ``Archived`` (ENODATA at the FUSE boundary, one log line): read again
        once the store has restored it.
        """
        path = self.cat.ns.path_of(inode.id)
        where = f"/{path}" if path is not None else f"inode {inode.id} (unlinked)"
        if isinstance(err, Archived):
            asked = self.restores.request(self.cat, self.stores.by_name, inode)
            err = Archived(f"{err}; {asked}")
        return type(err)(str(err), key=where)

    def close(self) -> None:
        """At unmount: stop read-ahead, save the measurements, flush the counters."""
        self.uncached.close()  # shares the ReplicaReader; closing twice is harmless
        self.path.close()
        if self.path.cache is not None:
            self.path.cache.close()

    def keep_cache(self, inode) -> bool:
        """May the kernel keep its cached pages of ``inode`` on this open?

        Yes when the content hash is the one it had at the previous open (the
        pages are of the same bytes); no on first sight or after a change.
        """
        sha = inode.sha256
        prev = self._seen.pop(inode.id, None)
        self._seen[inode.id] = sha
        if len(self._seen) > _SEEN_MEMORY:
            self._seen.pop(next(iter(self._seen)))
        return sha is not None and prev == sha
