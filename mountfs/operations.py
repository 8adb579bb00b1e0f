"""One handler per FUSE request, answered from the catalog and staging files.

Caveats, honestly:

* Hard links are real (link(2) on anything but a directory). An inode's
  bytes are stored once per provider, under the key of its *primary* name
  (the first one; plain layout). Extra names exist only in the catalog.
  Unlinking or renaming the primary name while other links remain promotes
  the oldest remaining link to primary (or takes the new name) and queues a
  ``move`` of the objects to that path, like any rename: another tool reading
  the bucket sees the file under one of its current names once the queue ran.
* ``flock``/``fcntl`` locks are the kernel's and local to this host.
* atime is not updated by reads (like ``noatime``); explicit ``touch -a`` works.
* Renames and deletes change the catalog at once; the objects in the stores
  follow through queued work (``omnifs replicate --now`` or the daemon).
* Changing only mtime/mode after close (``touch -d``, ``chmod``) updates the
  catalog; the stores' ``omnifs_mtime`` metadata follows on the next write.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import os
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyfuse3
import trio

from omnifs.catalog import ROOT_INODE, Catalog, Inode, now_ns
from omnifs.layout import object_key
from omnifs.replication import queue_attrs
from omnifs.work import Delete, Move, enqueue
from omnifs.providers import RESERVED_PREFIX
from omnifs.providers.errors import Conflict, OmnifsError

from .catalog_wait import catalog_writable
from .fallocate import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, fallocate
from .fuse_errors import wrap_handlers
from .publish import Publisher
from .reader import CachedStoreReader, ReadVia
from .space import DiskBudget
from .staging import OpenFile, StagingArea
from .stores import MountHealth, Stores
from .written import Kept
from .xattrs import XATTR_REPLICAS, format_replicas

if TYPE_CHECKING:
    from omnifs.config import Config

log = logging.getLogger("omnifs.mount")

NAME_MAX = 255
#: seconds the kernel may cache names and attributes (only this mount changes them)
ATTR_TIMEOUT = 1.0
_RESERVED_TOP = RESERVED_PREFIX.rstrip("/")
#: write-back mode: closes whose upload may be pending at once (more wait for their upload)
WRITEBACK_MAX = 10_000
#: seconds a closed file waits before its background upload: temp files renamed or
#: deleted right away (rsync, editors, tar's own rewrites) are uploaded once, at their
#: final name, and uploads do not compete with a burst of writes for the CPU
WRITEBACK_DELAY = 2.0
#: seconds before a failed upload is tried again in the background, doubling per failure...
UPLOAD_RETRY = 2.0
#: ... up to this (a store that answers again is used within about this long)
UPLOAD_RETRY_MAX = 15.0
#: write-back uploads wait for this many seconds without FUSE requests: a burst of
#: writes (tar x, cp -r) is not slowed by uploads competing for the CPU and the GIL,
#: like the kernel's own idle-time writeback ...
WRITEBACK_QUIET = 0.3
#: ... but never longer than this after the close (a mount that is never idle)
WRITEBACK_MAX_DELAY = 30.0
#: seconds a read may use the inode an earlier read of its handle looked up, when this
#: mount changed nothing since: other processes' catalog changes (an import, the
#: daemon) are seen this late at most, like the kernel's attribute cache (ATTR_TIMEOUT)
INODE_TTL = ATTR_TIMEOUT
#: xattr namespaces not kept: SELinux labels, capabilities, POSIX ACLs
_UNSUPPORTED_XATTRS = (b"security.", b"system.")


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


def _may_write(h: Handle) -> bool:
    """Whether closing ``h`` may have to publish: it could write, truncated or created."""
    return h.flags & os.O_ACCMODE != os.O_RDONLY or bool(h.flags & os.O_TRUNC) or h.created


def _writes_catalog(handler):
    """A handler that changes the catalog waits for another process's write lock in a worker
    thread, never on the event loop (mountfs/catalog_wait.py)."""

    @functools.wraps(handler)
    async def waiting(self, *args):
        await catalog_writable(self.cat)
        return await handler(self, *args)

    return waiting


@wrap_handlers
class Operations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False

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
            stores.attach_health(MountHealth(catalog.path))
        self.publisher = Publisher(catalog, stores, self.staging, config)
        #: reads: disk cache, fastest replica (``read_via``: see CachedStoreReader)
        self.reader = CachedStoreReader(catalog, stores, config, read_via=read_via)
        #: published files' staging bytes on their way into the block cache
        self.written = Kept(self.reader.path.cache, config.cache_dir / "written")
        #: publishes under way (their staging files are freed when they end)
        self._publishing = 0
        #: [cache] size with staging counted, the disks' free-space reserve, deletes on a full disk
        self.space = DiskBudget(limit=config.cache_size, free_space_ratio=config.free_space_ratio,
                                staging=self.staging, written=self.written,
                                cache=self.reader.path.cache, catalog_path=catalog.path,
                                in_flight=lambda: self._publishing + len(self._queued))
        self.open_files: dict[int, OpenFile] = {}
        self.handles: dict[int, Handle] = {}
        self._next_fh = 1
        self.lookups: dict[int, int] = {}
        #: trio time of the last namespace/content request (write-back waits for quiet)
        self.busy_at = 0.0

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

    def _new_owner(self, parent: Inode, ctx: pyfuse3.RequestContext, mode: int) -> tuple[int, int, int]:
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
                import hashlib

                st.size, st.hasher, st.hashed = 0, hashlib.sha256(), 0
            elif reuse:
                st.size = os.fstat(fd).st_size
                st.dirty = True
            elif inode.size > 0:
                # the hash of the bytes so far: an append continues it (no rehash at close);
                # the copy takes room as it goes (a sparse file only its data)
                st.hasher = await self.reader.fetch_whole(inode, fd,
                                                          before_write=self.space.copy_guard())
                st.size = st.hashed = os.fstat(fd).st_size
            else:
                import hashlib

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

    async def _publish(self, st: OpenFile) -> None:
        """Publish ``st`` now; when no quorum of stores takes it, the error reaches the caller
        (EIO) and the bytes stay staged, durable, for the background uploader."""
        self._publishing += 1
        try:
            async with st.lock:
                try:
                    await self.publisher.publish(st)
                except OmnifsError as e:
                    if not e.transient or not st.dirty:
                        raise
                    await self._make_durable(st)
                    self._retry_later(st)
                    raise
        finally:
            self._publishing -= 1

    async def _make_durable(self, st: OpenFile) -> None:
        """The staging file and its directory entry reach the disk (a crash keeps them)."""
        await trio.to_thread.run_sync(self.staging.sync, st.ino, st.fd)

    def _retry_later(self, st: OpenFile) -> None:
        """Queue a failed publish for the background uploader, backing off per failure."""
        n = self._failures[st.ino] = self._failures.get(st.ino, 0) + 1
        if n == 1:
            log.warning("%s stays staged until a store answers", self._name_of(st.ino))
        if st.ino not in self._queued:  # else the uploader retrying it queues it again
            self._queued.add(st.ino)
            self._uploads_send.send_nowait((st.ino, trio.current_time() + self._backoff(st.ino)))
        if st.opens <= 0 and st.fd is not None:
            os.close(st.fd)  # kept staged, not open: a later open reuses the staging file
            st.fd = None

    def _close_state(self, st: OpenFile) -> None:
        """Forget an inode's open state once nothing holds it (staging stays if unpublished)."""
        if st.fd is not None:
            os.close(st.fd)
            st.fd = None
        self.open_files.pop(st.ino, None)
        inode = self.cat.ns.get(st.ino)
        if inode is not None and inode.nlink == 0:
            self._discard(st.ino)
        elif not st.dirty and not self._keep_written(inode):
            self.staging.remove(st.ino)

    def _keep_written(self, inode: Inode | None) -> bool:
        """Hand a published staging file to the block cache (mountfs/written.py)."""
        if inode is None or inode.staged:
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
        self.staging.remove(ino)

    def _unlinked(self, ino: int) -> None:
        st = self.open_files.get(ino)
        if st is not None and (st.opens > 0 or st.fd is not None):
            return  # readable until the last close
        if st is not None:
            self.open_files.pop(ino, None)
        self._discard(ino)

    # -- lifecycle -------------------------------------------------------------
    async def recover(self) -> None:
        """After a crash: publish unfinished staging files, drop orphans.

        A file no quorum of stores takes now stays staged and is queued for
        :meth:`run_uploads`: the mount starts anyway, within about one
        ``timeout`` when the stores do not answer (later files skip the
        stores the first one found down).
        """
        for inode in self.cat.ns.orphans():
            self._discard(inode.id)
            self.cat.ns.delete(inode.id)
        staged = self.cat.ns.staged_ids()
        for ino in self.staging.inodes():
            if ino not in staged:
                self.staging.remove(ino)
        for ino in staged:
            if not self.staging.exists(ino):
                self.cat.ns.update(ino, staged=0)
                continue
            st = self._state(ino)
            await self._ensure_staging(st)
            st.dirty = True
            st.marked = True
            try:
                await self._publish(st)
            except Exception as e:  # noqa: BLE001 - stays staged, queued for the uploader
                log.warning("could not upload unfinished file %s yet: %s",
                            self.cat.ns.path_of(ino), e)
                if st.fd is not None:
                    os.close(st.fd)
                    st.fd = None
                if ino not in self._queued:
                    self._retry_later(st)
                continue
            self._close_state(st)

    async def shutdown(self) -> None:
        """Publish what is still dirty (release may not come at unmount, write-back queue)."""
        for st in list(self.open_files.values()):
            if st.dirty:
                try:
                    await self._publish(st)
                except Exception as e:  # noqa: BLE001
                    log.warning("unmount: %s stays staged: %s", st.ino, e)
            await trio.lowlevel.checkpoint()
        await self.written.finish()
        for h in list(self.handles.values()):
            await self.reader.drop(h)
        await trio.to_thread.run_sync(self.reader.close)

    # -- metadata ----------------------------------------------------------------
    async def lookup(self, parent_inode, name, ctx):
        if name == b".":
            return self._entry(self._dir(parent_inode))
        if name == b"..":
            d = self._dir(parent_inode)
            return self._entry(self._get(d.parent if d.parent is not None else ROOT_INODE))
        inode = self.cat.ns.lookup(parent_inode, self._name(name))
        if inode is None:
            raise fuse_error(errno.ENOENT)
        return self._entry(inode)

    @_writes_catalog
    async def forget(self, inode_list):
        for ino, n in inode_list:
            left = self.lookups.get(ino, 0) - n
            if left > 0:
                self.lookups[ino] = left
                continue
            self.lookups.pop(ino, None)
            if ino == ROOT_INODE or ino in self.open_files:
                continue
            inode = self.cat.ns.get(ino)
            if inode is not None and inode.parent is None:
                self._discard(ino)

    async def getattr(self, inode, ctx):
        return self._attrs(self._get(inode))

    @_writes_catalog
    async def setattr(self, inode, attr, fields, fh, ctx):
        self.busy_at = trio.current_time()
        cur = self._get(inode)
        changes: dict[str, int] = {}
        t = now_ns()
        if fields.update_size:
            if cur.kind == "dir":
                raise fuse_error(errno.EISDIR)
            if cur.kind != "file":
                raise fuse_error(errno.EINVAL)
            async with self._locked(inode) as st:
                await self._ensure_staging(st)
                os.ftruncate(st.fd, attr.st_size)
                self.staging.note(inode, st.fd)
                st.note_truncate(attr.st_size)
                st.size = attr.st_size
                self._mark_dirty(st)
        if fields.update_mode:
            changes["mode"] = stat.S_IFMT(cur.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            changes["uid"] = attr.st_uid
        if fields.update_gid:
            changes["gid"] = attr.st_gid
        if fields.update_atime:
            changes["atime_ns"] = attr.st_atime_ns
        if fields.update_mtime:
            changes["mtime_ns"] = attr.st_mtime_ns
        changes["ctime_ns"] = attr.st_ctime_ns if fields.update_ctime else t
        st = self.open_files.get(inode)
        if st is not None:
            if "mtime_ns" in changes:
                st.mtime_ns = changes["mtime_ns"]
            st.ctime_ns = changes["ctime_ns"]
        with self.cat.transaction():
            self.cat.ns.update(inode, **changes)
            if cur.kind == "file" and not (st is not None and st.dirty) and (
                    changes.keys() & {"mode", "uid", "gid", "mtime_ns"}):
                queue_attrs(self.cat, inode)  # the objects' metadata follows (omnifs import)
        if fields.update_size and st is not None and st.opens == 0:
            # truncate(1) without an open file: no close will come to publish it
            await self._publish(st)
            self._close_state(st)
        elif fields.update_size and st is not None and fh is None:
            # truncate(2) by path while the file is open elsewhere (if only by a reader
            # whose release has not arrived yet): its 0 promises the stores hold it, as
            # close does; an ftruncate's is kept by its own close
            await self._publish(st)
        return self._attrs(self._get(inode))

    async def readlink(self, inode, ctx):
        cur = self._get(inode)
        if cur.kind != "symlink":
            raise fuse_error(errno.EINVAL)
        return os.fsencode(cur.target or "")

    async def opendir(self, inode, ctx):
        self._dir(inode)
        return inode

    async def readdir(self, fh, start_id, token):
        after = start_id
        while True:
            batch = self.cat.ns.entries(fh, after=after, limit=500)
            if not batch:
                return
            for offset, name, child in batch:
                if not pyfuse3.readdir_reply(token, os.fsencode(name), self._attrs(child),
                                             offset):
                    return
                self.lookups[child.id] = self.lookups.get(child.id, 0) + 1
                after = offset

    async def releasedir(self, fh):
        return None

    async def fsyncdir(self, fh, datasync):
        return None  # every catalog change is committed when it is made

    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        v = os.statvfs(self.staging.dir)
        # what writers may use: the disk's free-space reserve is not theirs (`df` shows it)
        reserve = int(self.config.free_space_ratio * v.f_blocks)
        s.f_bsize = v.f_bsize
        s.f_frsize = v.f_frsize
        s.f_blocks = v.f_blocks
        s.f_bfree = max(0, v.f_bfree - reserve)
        s.f_bavail = max(0, v.f_bavail - reserve)
        used = self.cat.ns.count_inodes()
        s.f_files = used + 1_000_000_000
        s.f_ffree = 1_000_000_000
        s.f_favail = 1_000_000_000
        s.f_namemax = NAME_MAX
        return s

    async def access(self, inode, mode, ctx):
        self._get(inode)
        return True  # default_permissions: the kernel already checked

    # -- namespace changes ----------------------------------------------------------
    @_writes_catalog
    async def mkdir(self, parent_inode, name, mode, ctx):
        self.busy_at = trio.current_time()
        return self._entry(self._create_entry(parent_inode, name, stat.S_IFDIR | stat.S_IMODE(mode), ctx))

    @_writes_catalog
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        if stat.S_IFMT(mode) == stat.S_IFREG:
            self._check_placement(parent_inode, name)
            inode = self._create_entry(parent_inode, name, mode, ctx)
            st = self._state(inode.id)
            await self._ensure_staging(st, empty=True)
            self._mark_dirty(st)
            await self._publish(st)
            self._close_state(st)
            return self._entry(self._get(inode.id))
        return self._entry(self._create_entry(parent_inode, name, mode, ctx, rdev=rdev))

    @_writes_catalog
    async def symlink(self, parent_inode, name, target, ctx):
        return self._entry(self._create_entry(parent_inode, name, stat.S_IFLNK | 0o777, ctx,
                                              target=os.fsdecode(target)))

    @_writes_catalog
    async def link(self, inode, new_parent_inode, new_name, ctx):
        text = self._new_name(new_parent_inode, new_name)
        cur = self._get(inode)
        if cur.kind == "dir":
            raise fuse_error(errno.EPERM)
        if cur.parent is None:
            raise fuse_error(errno.ENOENT)  # unlinked while open: no new names
        self._dir(new_parent_inode)
        try:
            with self.cat.transaction():
                linked = self.cat.ns.add_link(inode, new_parent_inode, text)
                self.cat.ns.touch_dir(new_parent_inode)
        except Conflict:
            raise fuse_error(errno.EEXIST) from None
        return self._entry(linked)

    def _remove(self, parent: int, name: str) -> None:
        """One name goes (in the caller's transaction); an inode with no names left
        is an orphan, one whose primary name went has its objects' move queued."""
        removed = self.cat.ns.remove_name(parent, name)
        if removed is None:
            return
        inode, promoted = removed
        if promoted:
            self._queue_moves(inode.id)

    @_writes_catalog
    async def unlink(self, parent_inode, name, ctx):
        text = self._name(name)
        inode = self.cat.ns.lookup(parent_inode, text)
        if inode is None:
            raise fuse_error(errno.ENOENT)
        if inode.kind == "dir":
            raise fuse_error(errno.EISDIR)
        self.space.before_delete()  # a full disk: deletes are how the user makes room
        with self.cat.transaction():
            self._remove(parent_inode, text)
            self.cat.ns.touch_dir(parent_inode)
        self._after_unlink(inode.id)
        self.space.after_delete()

    def _after_unlink(self, ino: int) -> None:
        inode = self.cat.ns.get(ino)
        if inode is not None and inode.nlink == 0:
            self._unlinked(ino)

    @_writes_catalog
    async def rmdir(self, parent_inode, name, ctx):
        inode = self.cat.ns.lookup(parent_inode, self._name(name))
        if inode is None:
            raise fuse_error(errno.ENOENT)
        if inode.kind != "dir":
            raise fuse_error(errno.ENOTDIR)
        if self.cat.ns.has_children(inode.id):
            raise fuse_error(errno.ENOTEMPTY)
        self.space.before_delete()
        with self.cat.transaction():
            self.cat.ns.detach(inode.id)
            self.cat.ns.touch_dir(parent_inode)
            if self.lookups.get(inode.id, 0) == 0:
                self.cat.ns.delete(inode.id)
        self.space.after_delete()

    @_writes_catalog
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        known = pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE
        if flags & ~known or flags == known:
            raise fuse_error(errno.EINVAL)
        self.space.before_delete()  # on a full disk, tidying up must still work
        old_name = self._name(name_old)
        new_name = self._new_name(parent_inode_new, name_new)
        self._dir(parent_inode_new)
        src = self.cat.ns.lookup(parent_inode_old, old_name)
        if src is None:
            raise fuse_error(errno.ENOENT)
        dst = self.cat.ns.lookup(parent_inode_new, new_name)
        if src.kind == "dir" and self.cat.ns.is_ancestor(src.id, parent_inode_new):
            raise fuse_error(errno.EINVAL)
        if flags & pyfuse3.RENAME_EXCHANGE:
            if dst is None:
                raise fuse_error(errno.ENOENT)
            if dst.kind == "dir" and self.cat.ns.is_ancestor(dst.id, parent_inode_old):
                raise fuse_error(errno.EINVAL)
            if dst.id == src.id:
                return
            with self.cat.transaction():
                self.cat.ns.exchange_names(parent_inode_old, old_name, parent_inode_new, new_name)
                self.cat.ns.touch_dir(parent_inode_old)
                self.cat.ns.touch_dir(parent_inode_new)
                self._queue_moves(src.id)
                self._queue_moves(dst.id)
            return
        if dst is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise fuse_error(errno.EEXIST)
            if dst.id == src.id:
                return  # two names of one file: POSIX says do nothing
            if src.kind == "dir":
                if dst.kind != "dir":
                    raise fuse_error(errno.ENOTDIR)
                if self.cat.ns.has_children(dst.id):
                    raise fuse_error(errno.ENOTEMPTY)
            elif dst.kind == "dir":
                raise fuse_error(errno.EISDIR)
        with self.cat.transaction():
            if dst is not None:
                self._remove(parent_inode_new, new_name)
                if dst.kind == "dir" and self.lookups.get(dst.id, 0) == 0:
                    self.cat.ns.delete(dst.id)
            _, primary = self.cat.ns.rename_name(parent_inode_old, old_name, parent_inode_new,
                                                 new_name)
            self.cat.ns.touch_dir(parent_inode_old)
            if parent_inode_new != parent_inode_old:
                self.cat.ns.touch_dir(parent_inode_new)
            if primary:
                self._queue_moves(src.id)
        if dst is not None and dst.kind != "dir":
            self._after_unlink(dst.id)

    def _queue_moves(self, ino: int) -> None:
        """Every object under the renamed entry is to move to its new key (queued)."""
        for fid, path in self.cat.ns.files_under(ino):
            for r in self.cat.replicas.of(fid):
                key = object_key(self.stores[r.provider], path) if r.provider in self.stores \
                    else path
                if r.key != key:
                    enqueue(self.cat.work, Move(inode=fid, provider=r.provider, src=r.key))

    # -- file contents ----------------------------------------------------------------
    def _new_handle(self, ino: int, flags: int, *, created: bool = False) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = Handle(ino, flags, created=created)
        return fh

    def _check_placement(self, parent: int, name: bytes) -> None:
        """Governance: refuse (EACCES) a new file no configured provider may hold."""
        placer = self.publisher.placer
        if placer.rules:
            placer.check(f"{self.cat.ns.path_of(parent) or ''}/{os.fsdecode(name)}")

    @_writes_catalog
    async def create(self, parent_inode, name, mode, flags, ctx):
        self.busy_at = trio.current_time()
        self._check_placement(parent_inode, name)
        inode = self._create_entry(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        st = self._state(inode.id)
        await self._ensure_staging(st, empty=True)
        self._mark_dirty(st)
        st.mtime_ns = inode.mtime_ns
        st.opens += 1
        fh = self._new_handle(inode.id, flags, created=True)
        return pyfuse3.FileInfo(fh=fh), self._entry(self._get(inode.id))

    @_writes_catalog
    async def open(self, inode, flags, ctx):
        cur = self._get(inode)
        if cur.kind == "dir":
            raise fuse_error(errno.EISDIR)
        st = self._state(inode)
        st.opens += 1
        try:
            if flags & os.O_TRUNC:  # O_RDONLY|O_TRUNC truncates too on Linux (write was checked)
                async with st.lock:
                    await self._ensure_staging(st, empty=True)
                    self._mark_dirty(st)
            elif cur.staged and st.fd is None and self.staging.exists(inode):
                async with st.lock:
                    await self._ensure_staging(st)
        except BaseException:
            st.opens -= 1
            if st.opens == 0 and st.fd is None:
                self.open_files.pop(inode, None)
            raise
        keep = st.fd is None and self.reader.keep_cache(cur)
        return pyfuse3.FileInfo(fh=self._new_handle(inode, flags), keep_cache=keep)

    async def read(self, fh, off, size):
        h = self.handles[fh]
        st = self.open_files.get(h.ino)
        if st is not None and st.fd is not None:
            return os.pread(st.fd, size, off)
        return await self.reader.read(h, self._read_inode(h), off, size)

    def _read_inode(self, h: Handle) -> Inode:
        """The inode for a read of ``h``, without a catalog query per FUSE read.

        A sequential read is 1 MiB requests on the event loop thread; a query
        each (which also gives up the GIL to the read-ahead threads) costs 5-8%
        of that thread. Every change this mount makes (write, setattr,
        publish, rename, unlink) goes through its one catalog connection and
        moves its change count, which ends the cached copy at once.
        """
        changes = self.cat.change_count()
        now = time.monotonic()
        if h.inode is None or changes != h.changes or now - h.at > INODE_TTL:
            h.inode, h.changes, h.at = self._get(h.ino), changes, now
        return h.inode

    async def write(self, fh, off, buf):
        self.busy_at = trio.current_time()
        h = self.handles[fh]
        st = self._state(h.ino)
        # room on local disk first (a first copy of the file is checked as it is made)
        await self.space.admit(len(buf))
        if not st.marked:
            await catalog_writable(self.cat)  # the first write records it as staged
        async with st.lock:
            if st.fd is None:
                await self._ensure_staging(st)
            n = os.pwrite(st.fd, buf, off)
            self.staging.note(h.ino, st.fd)
            st.note_write(off, buf if n == len(buf) else memoryview(buf)[:n])
            st.size = max(st.size, off + n)
            self._mark_dirty(st)
        return n

    async def flush(self, fh):
        h = self.handles[fh]
        if not _may_write(h):
            return  # a reader's close does not publish (nor fail on) other handles' writes
        st = self.open_files.get(h.ino)
        if st is not None and st.dirty:
            if self._defer(st):
                await self._make_durable(st)
                return
            await self._publish(st)

    async def fsync(self, fh, datasync):
        st = self.open_files.get(self.handles[fh].ino)
        if st is not None and st.dirty:
            await self._publish(st)

    @_writes_catalog
    async def fallocate(self, inode, mode, offset, length):
        """fallocate(2): preallocate, extend, punch or zero a range of the staging file.

        The same call is made on the staging file, so what reads back is what
        a local disk gives; a change of size or content is published at close
        like a write. pyfuse3 has no slot for it: mountfs/fallocate.py installs it.
        """
        self.busy_at = trio.current_time()
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise fuse_error(errno.EOPNOTSUPP)
        if offset < 0 or length <= 0:
            raise fuse_error(errno.EINVAL)
        if self._get(inode).kind != "file":
            raise fuse_error(errno.ENODEV)
        clears = bool(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
        st = self._state(inode)
        await self.space.admit(0 if mode & FALLOC_FL_PUNCH_HOLE else length)
        async with st.lock:
            if st.fd is None:
                await self._ensure_staging(st)
            try:
                await trio.to_thread.run_sync(fallocate, st.fd, mode, offset, length)
            finally:
                self.staging.note(inode, st.fd)
            changed = clears and offset < st.size
            if clears:
                st.note_truncate(offset)  # the running hash no longer covers what follows
            if not mode & FALLOC_FL_KEEP_SIZE and offset + length > st.size:
                st.size = offset + length
                changed = True
            if changed:
                self._mark_dirty(st)

    async def release(self, fh):
        h = self.handles.pop(fh, None)
        if h is None:
            return
        await self.reader.drop(h)
        st = self.open_files.get(h.ino)
        if st is None:
            return
        st.opens -= 1
        try:
            if (st.dirty and st.ino not in self._queued and (_may_write(h) or st.opens <= 0)
                    and not self._defer(st)):
                await self._publish(st)
        finally:
            if st.opens <= 0:
                # under the lock: the kernel sends release after close returned, so a
                # truncate may still be copying the file into staging; closing the state
                # under it would hand its staging file to the block cache and lose its work
                async with st.lock:
                    if st.opens <= 0 and self.open_files.get(st.ino) is st:
                        self._last_release(st)

    def _last_release(self, st: OpenFile) -> None:
        if st.ino not in self._queued:
            self._close_state(st)
        elif st.fd is not None:
            # waiting for its background upload: keep the state (size, mtime)
            # but not the descriptor; a new open reuses the staging file
            os.close(st.fd)
            st.fd = None

    # -- write-back mode ------------------------------------------------------------
    def _defer(self, st: OpenFile) -> bool:
        """Write-back: queue the upload instead of waiting for it (bounded queue).

        The caller then makes the staging file durable before close returns:
        with ``inodes.staged = 1`` (committed at the first write) that is the
        promise write-back's success code makes.
        """
        if not self.writeback:
            return False
        if st.ino in self._queued:
            return True
        if len(self._queued) >= WRITEBACK_MAX:
            return False  # back-pressure: this close uploads itself
        self._queued.add(st.ino)
        self._uploads_send.send_nowait((st.ino, trio.current_time() + WRITEBACK_DELAY))
        return True

    async def run_uploads(self, workers: int = 4) -> None:
        """Background uploaders; run in the mount's nursery, in every mode.

        They upload what write-back closes left staged, and retry every
        publish that failed (no quorum of stores answered: the caller got
        EIO and the bytes stayed staged) with backoff until a store takes
        them, so the running mount catches up by itself once a store answers.

        Why write-back is still safe against kill -9: the staging file (fsynced)
        and ``inodes.staged = 1`` were written before close returned, and a
        remount uploads every staged file (:meth:`recover`). Only losing
        the local disk itself can lose a closed-but-not-uploaded file.
        """
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(self._upload_worker, self._uploads_recv.clone())

    def _name_of(self, ino: int) -> str:
        return self.cat.ns.path_of(ino) or f"inode {ino} (unlinked)"

    def _backoff(self, ino: int) -> float:
        return min(UPLOAD_RETRY * 2 ** max(self._failures.get(ino, 1) - 1, 0), UPLOAD_RETRY_MAX)

    async def _upload_worker(self, recv) -> None:
        async for ino, ready_at in recv:
            await trio.sleep_until(ready_at)
            deadline = ready_at - WRITEBACK_DELAY + WRITEBACK_MAX_DELAY
            while len(self._queued) < WRITEBACK_MAX // 2:
                quiet_at = self.busy_at + WRITEBACK_QUIET
                now = trio.current_time()
                if now >= quiet_at or now >= deadline:
                    break
                await trio.sleep_until(min(quiet_at, deadline))
            st = self.open_files.get(ino)
            try:
                if st is not None and st.dirty:
                    await self._publish(st)
            except Exception as e:  # noqa: BLE001 - stays staged; retried below if it may work
                if not (isinstance(e, OmnifsError) and e.transient):
                    log.warning("%s stays staged, no store takes it (retried at the next "
                                "mount): %s", self._name_of(ino), e)
                    self._queued.discard(ino)
                    continue
                log.info("upload of %s failed, will retry: %s", self._name_of(ino), e)
                self._uploads_send.send_nowait((ino, trio.current_time() + self._backoff(ino)))
                continue
            self._queued.discard(ino)
            if self._failures.pop(ino, 0):
                log.warning("%s uploaded after all", self._name_of(ino))
            if st is not None and st.opens <= 0 and self.open_files.get(ino) is st:
                self._close_state(st)

    # -- extended attributes ------------------------------------------------------------
    async def getxattr(self, inode, name, ctx):
        if name.startswith(_UNSUPPORTED_XATTRS):
            # EOPNOTSUPP (not ENODATA): ls, cp and friends then stop asking for
            # SELinux labels and ACLs on this filesystem, so `ls -l` of a large
            # directory is not one FUSE round trip per entry. (ENOSYS would make
            # the kernel drop every xattr, user.omnifs.replicas included.)
            raise fuse_error(errno.EOPNOTSUPP)
        cur = self._get(inode)
        if name == XATTR_REPLICAS and cur.kind == "file":
            return format_replicas(self.cat, cur).encode()
        value = self.cat.ns.get_xattr(inode, name)
        if value is None:
            raise fuse_error(pyfuse3.ENOATTR)
        return value

    @_writes_catalog
    async def setxattr(self, inode, name, value, ctx):
        self._get(inode)
        if name == XATTR_REPLICAS:
            raise fuse_error(errno.EPERM)
        if name.startswith(_UNSUPPORTED_XATTRS):
            raise fuse_error(errno.EOPNOTSUPP)
        with self.cat.transaction():
            self.cat.ns.set_xattr(inode, name, value)
            self.cat.ns.update(inode, ctime_ns=now_ns())

    async def listxattr(self, inode, ctx):
        cur = self._get(inode)
        names = self.cat.ns.list_xattrs(inode)
        if cur.kind == "file":
            names.append(XATTR_REPLICAS)
        return names

    @_writes_catalog
    async def removexattr(self, inode, name, ctx):
        self._get(inode)
        if name == XATTR_REPLICAS:
            raise fuse_error(errno.EPERM)
        if not self.cat.ns.remove_xattr(inode, name):
            raise fuse_error(pyfuse3.ENOATTR)
