"""The file-content handlers: open, create, read, write, flush, fsync, fallocate, release.

Writes go to the inode's staging file (:mod:`.staging`), one per inode
however many handles hold it; reads of a staged inode read that file, and
reads of any other come from the block cache or the fastest replica
(:mod:`.reader`). A close (flush and release) or an fsync of a handle that
may have written publishes the staging file (:mod:`.uploads`); a reader's
close publishes nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import time

import pyfuse3
import trio

from omnifs.catalog import Inode

from .catalog_wait import catalog_writable
from .fallocate import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, fallocate
from .fuse_errors import wrap_handlers
from .handler_base import ATTR_TIMEOUT, Handle, fuse_error, writes_catalog
from .staging import OpenFile
from .uploads import Uploads

#: seconds a read may use the inode an earlier read of its handle looked up, when this
#: mount changed nothing since: other processes' catalog changes (an import, the
#: daemon) are seen this late at most, like the kernel's attribute cache (ATTR_TIMEOUT)
INODE_TTL = ATTR_TIMEOUT


def _may_write(h: Handle) -> bool:
    """Whether closing ``h`` may have to publish: it could write, truncated or created."""
    return h.flags & os.O_ACCMODE != os.O_RDONLY or bool(h.flags & os.O_TRUNC) or h.created


@wrap_handlers
class ContentHandlers(Uploads):
    """The FUSE requests that open, read, write and close files."""

    def _new_handle(self, ino: int, flags: int, *, created: bool = False, ctx=None,
                    path: str | None = None) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = Handle(ino, flags, created=created, path=path,
                                  uid=getattr(ctx, "uid", None), pid=getattr(ctx, "pid", None))
        return fh

    @writes_catalog
    async def create(self, parent_inode, name, mode, flags, ctx):
        self.busy_at = trio.current_time()
        path = self._check_placement(parent_inode, name, ctx)
        inode = self._create_entry(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        if self.guard.audit.enabled:
            path = path or self.guard.child(parent_inode, inode.name or "")
            self.guard.record("create", path, ctx)
        st = self._state(inode.id)
        await self._ensure_staging(st, empty=True)
        self._mark_dirty(st)
        st.mtime_ns = inode.mtime_ns
        st.opens += 1
        fh = self._new_handle(inode.id, flags, created=True, ctx=ctx, path=path)
        return pyfuse3.FileInfo(fh=fh), self._entry(self._get(inode.id))

    @writes_catalog
    async def open(self, inode, flags, ctx):
        cur = self.cat.ns.get(inode)
        if cur is None or (cur.parent is None and inode not in self.open_files):
            # removed or replaced by another mount since the kernel looked the name up:
            # ESTALE makes it look the path up again (close-to-open, mountfs/coherence.py)
            raise fuse_error(errno.ESTALE)
        if cur.kind == "dir":
            raise fuse_error(errno.EISDIR)
        self.coherence.opened(cur)
        writes = flags & os.O_ACCMODE != os.O_RDONLY or bool(flags & os.O_TRUNC)
        if writes:
            self.guard.check("write", cur, ctx)
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
        fh = self._new_handle(inode, flags, ctx=ctx if writes else None)
        if keep and flags & os.O_ACCMODE != os.O_WRONLY:
            self.access_log.opened_cached(self.handles[fh])  # the page cache may serve every read
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep)

    async def read(self, fh, off, size):
        h = self.handles[fh]
        st = self.open_files.get(h.ino)
        if st is not None and st.fd is not None:
            data = os.pread(st.fd, size, off)
        else:
            data = await self.reader.read(h, self._read_inode(h), off, size)
        self.access_log.read(h, len(data))
        return data

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
        h.wrote = True
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

    @writes_catalog
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
        if h.wrote or h.created or h.flags & os.O_TRUNC:
            self.access_log.wrote(h.ino)
            if h.wrote or h.flags & os.O_TRUNC:
                self.guard.record("write", h.path, h, ino=h.ino)
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
