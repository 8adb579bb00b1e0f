"""What every group of FUSE handlers shares: the mount's tables and the helpers over them.

:class:`HandlerBase` holds the state of one mount: the kernel's lookup
counts per inode, the file handle table, the open state (staging file,
size, running hash) of every inode something holds open, and the parts
the handlers call (catalog, stores, staging area, publisher, reader, disk
budget, background upload queue). Its helpers turn catalog inodes into
FUSE attributes, check names and directories, create entries, give an
open inode its staging file, and forget or discard an inode once nothing
holds it.

The handlers themselves live in :mod:`.names`, :mod:`.attributes` and
:mod:`.contents`; :mod:`.uploads` decides when staged bytes reach the
stores; :class:`mountfs.operations.Operations` combines them. A class that
defines handlers is decorated with :func:`mountfs.fuse_errors.wrap_handlers`,
which wraps the handlers that class itself defines.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import math
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyfuse3
import trio

from omnifs.access_log import access_log_for
from omnifs.catalog import ROOT_INODE, Catalog, Inode, now_ns
from omnifs.providers import RESERVED_PREFIX
from omnifs.providers.errors import Conflict, PermissionDenied
from omnifs.work import Delete, enqueue

from .catalog_wait import catalog_writable
from .coherence import Coherence
from .guard import MountGuard
from .publish import Publisher
from .reader import CachedStoreReader, ReadVia
from .space import DiskBudget
from .staging import OpenFile, StagingArea
from .stores import MountHealth, Stores
from .written import Kept

if TYPE_CHECKING:
    from omnifs.config import Config

NAME_MAX = 255
#: seconds the kernel may cache names and attributes; other processes' changes reach it
#: sooner through the change log (mountfs/coherence.py), this bounds it when that lags
ATTR_TIMEOUT = 1.0
_RESERVED_TOP = RESERVED_PREFIX.rstrip("/")


def fuse_error(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


@dataclass(eq=False)
class Handle:
    ino: int
    flags: int
    #: the inode as the last read saw it, valid while the catalog connection has
    #: made no change since (``changes``) and for at most INODE_TTL seconds (``at``)
    inode: Inode | None = None
    changes: int = -1
    at: float = 0.0
    #: the handle's open created the file
    created: bool = False
    #: access statistics (omnifs/access_log.py): its read was counted; it wrote
    read_counted: bool = False
    wrote: bool = False
    #: the file's path when known at open (audit records of its writes)
    path: str | None = None
    #: who opened it (audit records of its writes)
    uid: int | None = None
    pid: int | None = None


def writes_catalog(handler):
    """A handler that changes the catalog waits for another process's write lock in a worker
    thread, never on the event loop (mountfs/catalog_wait.py)."""

    @functools.wraps(handler)
    async def waiting(self, *args):
        await catalog_writable(self.cat)
        return await handler(self, *args)

    return waiting


class HandlerBase(pyfuse3.Operations):
    """The mount's tables and parts; see the module docstring."""

    def __init__(self, config: Config, catalog: Catalog, stores: Stores, *,
                 writeback: bool = False, read_via: ReadVia | None = None):
        super().__init__()
        #: close returns once the bytes are staged; uploads follow in the background
        #: (fsync still uploads before returning). See :meth:`run_uploads`.
        self.writeback = writeback
        self._uploads_send, self._uploads_recv = trio.open_memory_channel[tuple[int, float]](
            math.inf)
        #: inodes waiting for a background upload (write-back, or a publish that failed)
        self._queued: set[int] = set()
        #: failed publishes of each queued inode (the retry backs off)
        self._failures: dict[int, int] = {}
        self.config = config
        self.cat = catalog
        self.stores = stores
        self.staging = StagingArea(config.cache_dir)
        if stores.health is None:
            # health from the daemon's verdicts plus this mount's own failures
            stores.attach_health(MountHealth(catalog.target))
        #: other mounts' and processes' changes into this mount's caches (mountfs/coherence.py)
        self.coherence = Coherence(catalog)
        #: inodes this mount's unlink or rmdir left without a name (only it discards them
        #: while other mounts are live: one of those may hold them open)
        self.orphaned: set[int] = set()
        self.publisher = Publisher(catalog, stores, self.staging, config,
                                   exclusive=self.coherence.exclusive)
        #: reads: disk cache, fastest replica (``read_via``: see CachedStoreReader)
        self.reader = CachedStoreReader(catalog, stores, config, read_via=read_via)
        #: published files' staging bytes on their way into the block cache
        self.written = self.reader.written = Kept(self.reader.path.cache,
                                                  config.cache_dir / "written")
        #: publishes under way (their staging files are freed when they end)
        self._publishing = 0
        #: [cache] size with staging counted, the disks' free-space reserve, deletes on a full disk
        self.space = DiskBudget(limit=config.cache_size, free_space_ratio=config.free_space_ratio,
                                staging=self.staging, written=self.written,
                                cache=self.reader.path.cache, catalog_path=config.catalog_file(),
                                in_flight=lambda: self._publishing + len(self._queued))
        self.open_files: dict[int, OpenFile] = {}
        self.handles: dict[int, Handle] = {}
        self._next_fh = 1
        self.lookups: dict[int, int] = {}
        #: trio time of the last namespace/content request (write-back waits for quiet)
        self.busy_at = 0.0
        #: reads and writes per file, for the cost engine ([cost] access_stats)
        self.access_log = access_log_for(config, catalog.target)
        #: governance: changes refused by WORM and legal-hold rules, and the audit log
        self.guard = MountGuard(config, catalog, stores)

    # -- helpers -------------------------------------------------------------
    def _attrs(self, inode: Inode) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode.id
        a.generation = 0
        a.entry_timeout = ATTR_TIMEOUT
        a.attr_timeout = ATTR_TIMEOUT
        a.st_mode = inode.mode
        a.st_nlink = inode.nlink
        a.st_uid = inode.uid
        a.st_gid = inode.gid
        a.st_rdev = inode.rdev
        size, mtime, ctime = inode.size, inode.mtime_ns, inode.ctime_ns
        st = self.open_files.get(inode.id)
        if st is not None and (st.fd is not None or st.dirty):
            size, mtime, ctime = st.size, st.mtime_ns, max(st.ctime_ns, ctime)
        a.st_size = size
        a.st_blksize = 1 << 20
        a.st_blocks = (size + 511) // 512
        a.st_atime_ns = inode.atime_ns
        a.st_mtime_ns = mtime
        a.st_ctime_ns = ctime
        self.coherence.told_kernel(inode.id, size, mtime, ctime)
        return a

    def _get(self, ino: int) -> Inode:
        inode = self.cat.ns.get(ino)
        if inode is None:
            raise fuse_error(errno.ENOENT)
        return inode

    def _entry(self, inode: Inode) -> pyfuse3.EntryAttributes:
        self.lookups[inode.id] = self.lookups.get(inode.id, 0) + 1
        return self._attrs(inode)

    @staticmethod
    def _name(name: bytes) -> str:
        if len(name) > NAME_MAX:
            raise fuse_error(errno.ENAMETOOLONG)
        return os.fsdecode(name)

    def _new_name(self, parent: int, name: bytes) -> str:
        text = self._name(name)
        if parent == ROOT_INODE and text == _RESERVED_TOP:
            raise fuse_error(errno.EPERM)  # the stores' bookkeeping prefix
        return text

    def _dir(self, ino: int) -> Inode:
        inode = self._get(ino)
        if inode.kind != "dir":
            raise fuse_error(errno.ENOTDIR)
        if inode.parent is None and ino != ROOT_INODE:
            raise fuse_error(errno.ENOENT)  # removed directory
        return inode

    def _new_owner(self, parent: Inode, ctx: pyfuse3.RequestContext,
                   mode: int) -> tuple[int, int, int]:
        """uid, gid and mode for a new entry: setgid directories pass on their group."""
        gid = ctx.gid
        if parent.mode & stat.S_ISGID:
            gid = parent.gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        return ctx.uid, gid, mode & ~(ctx.umask & 0o777)

    def _create_entry(self, parent: int, name: bytes, mode: int, ctx, *, target: str | None = None,
                      rdev: int = 0) -> Inode:
        text = self._new_name(parent, name)
        pinode = self._dir(parent)
        uid, gid, mode = self._new_owner(pinode, ctx, mode)
        size = len(os.fsencode(target)) if target is not None else 0
        try:
            with self.cat.transaction():
                inode = self.cat.ns.create(parent, text, mode, uid, gid, target=target, rdev=rdev,
                                           size=size)
                self.cat.ns.touch_dir(parent)
        except Conflict:
            raise fuse_error(errno.EEXIST) from None
        return inode

    def _check_placement(self, parent: int, name: bytes, ctx=None) -> str | None:
        """Governance: refuse (EACCES, audited) a new file no configured provider may hold.

        Returns the new file's path when it was worked out (None without rules)."""
        placer = self.publisher.placer
        if not placer.rules:
            return None
        path = self.guard.child(parent, os.fsdecode(name))
        try:
            placer.check(path)
        except PermissionDenied:
            self.guard.denied_placement(path, ctx)
            raise
        return path

    def _creating(self, ino: int) -> bool:
        """The file's creating open is still open: its WORM clock has not started (``tar x``
        and ``cp -p`` set mode and xattrs on the new file before closing it)."""
        return any(h.created and h.ino == ino for h in self.handles.values())

    def _state(self, ino: int) -> OpenFile:
        st = self.open_files.get(ino)
        if st is None:
            inode = self._get(ino)
            st = OpenFile(ino, size=inode.size, mtime_ns=inode.mtime_ns, ctime_ns=inode.ctime_ns)
            self.open_files[ino] = st
        return st

    async def _ensure_staging(self, st: OpenFile, *, empty: bool = False) -> None:
        """Give ``st`` a staging file holding the current content (or nothing)."""
        if st.fd is not None:
            if empty:
                os.ftruncate(st.fd, 0)
                st.size = 0
                st.note_truncate(0)
            return
        inode = self._get(st.ino)
        reuse = inode.staged and self.staging.exists(st.ino)
        fd = self.staging.open(st.ino, truncate=empty or not reuse)
        try:
            if empty:
                st.size, st.hasher, st.hashed = 0, hashlib.sha256(), 0
            elif reuse:
                st.size = os.fstat(fd).st_size
                st.dirty = True
            elif inode.size > 0:
                # the hash of the bytes so far: an append continues it (no rehash at close);
                # the copy takes room as it goes (a sparse file only its data)
                # just written here and not yet cached: its own staging file has the bytes
                written = self.written.open_queued(inode.sha256)
                try:
                    st.hasher = await self.reader.fetch_whole(
                        inode, fd, before_write=self.space.copy_guard(), written=written)
                finally:
                    if written is not None:
                        os.close(written)
                st.size = st.hashed = os.fstat(fd).st_size
            else:
                st.size, st.hasher, st.hashed = 0, hashlib.sha256(), 0
        except BaseException:
            os.close(fd)
            if not reuse:  # a copy cut short (ENOSPC): nothing in it is anybody's
                self.staging.remove(st.ino)
            raise
        st.fd = fd
        self.staging.note(st.ino, fd)
        await catalog_writable(self.cat)  # the caller records it as staged next

    def _mark_dirty(self, st: OpenFile) -> None:
        t = now_ns()
        st.dirty = True
        st.mtime_ns = st.ctime_ns = t
        if not st.marked:
            self.cat.ns.update(st.ino, staged=1)
            st.marked = True

    @contextlib.asynccontextmanager
    async def _locked(self, ino: int) -> AsyncIterator[OpenFile]:
        """``ino``'s open state with its lock held, and still the current one: a release
        that held the lock may have dropped the state (``_close_state``) meanwhile, and a
        change made to a dropped state would be lost."""
        while True:
            st = self._state(ino)
            await st.lock.acquire()
            if self.open_files.get(ino) is st:
                break
            st.lock.release()
        try:
            yield st
        finally:
            st.lock.release()

    def _close_state(self, st: OpenFile) -> None:
        """Forget an inode's open state once nothing holds it (staging stays if unpublished)."""
        if st.fd is not None:
            os.close(st.fd)
            st.fd = None
        self.open_files.pop(st.ino, None)
        inode = self.cat.ns.get(st.ino)
        if inode is not None and inode.nlink == 0:
            self._discard(st.ino)
        elif not st.dirty and not self._keep_written(inode, st):
            self.staging.remove(st.ino)

    def _keep_written(self, inode: Inode | None, st: OpenFile) -> bool:
        """Hand a published staging file to the block cache (mountfs/written.py).

        Only under the hash its own publish recorded, still the catalog's: another
        mount may have published other bytes since, and reads of that version must
        never be served this file (mountfs/reader.py).
        """
        if inode is None or inode.staged or st.published != inode.sha256:
            return False
        if not self.written.take(self.staging.path(inode.id), inode.sha256, inode.size):
            return False
        self.staging.forget(inode.id)
        return True

    def _discard(self, ino: int) -> None:
        """An inode nobody can reach any more: queue deletion of its objects."""
        self.space.before_delete()
        with self.cat.transaction():
            for r in self.cat.replicas.of(ino):
                self.cat.replicas.drop(ino, r.provider)
                enqueue(self.cat.work, Delete(provider=r.provider, key=r.key))
            if self.lookups.get(ino, 0) == 0:
                self.cat.ns.delete(ino)
                self.orphaned.discard(ino)
        self.staging.remove(ino)

    def _unlinked(self, ino: int) -> None:
        self.orphaned.add(ino)
        st = self.open_files.get(ino)
        if st is not None and (st.opens > 0 or st.fd is not None):
            return  # readable until the last close
        if st is not None:
            self.open_files.pop(ino, None)
        self._discard(ino)
