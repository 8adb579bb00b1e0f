"""The namespace handlers: names, directories and links, answered from the catalog.

lookup, forget, readlink, opendir, readdir, releasedir and fsyncdir read
the tree; mkdir, mknod, symlink, link, unlink, rmdir and rename change it
in one catalog transaction each. No store is asked: an entry's objects
follow through queued work, a ``move`` for every object whose key no
longer matches its primary name and a ``delete`` for every replica of an
inode nobody can reach any more. ``readdir`` answers carry the attributes
(READDIRPLUS), so ``ls -l`` costs no getattr per entry.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import trio

from omnifs.catalog import ROOT_INODE
from omnifs.layout import object_key
from omnifs.providers.errors import Conflict
from omnifs.work import Move, enqueue

from .fuse_errors import wrap_handlers
from .handler_base import fuse_error, writes_catalog
from .uploads import Uploads


@wrap_handlers
class NameHandlers(Uploads):
    """The FUSE requests that read or change the tree of names."""

    # -- looking up and listing --------------------------------------------------
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

    @writes_catalog
    async def forget(self, inode_list):
        for ino, n in inode_list:
            left = self.lookups.get(ino, 0) - n
            if left > 0:
                self.lookups[ino] = left
                continue
            self.lookups.pop(ino, None)
            self.coherence.forgotten(ino)
            if ino == ROOT_INODE or ino in self.open_files:
                continue
            inode = self.cat.ns.get(ino)
            if inode is not None and inode.parent is None and (
                    ino in self.orphaned or not self.coherence.peers()):
                self._discard(ino)
                self.orphaned.discard(ino)

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

    # -- namespace changes ----------------------------------------------------------
    @writes_catalog
    async def mkdir(self, parent_inode, name, mode, ctx):
        self.busy_at = trio.current_time()
        mode = stat.S_IFDIR | stat.S_IMODE(mode)
        entry = self._entry(self._create_entry(parent_inode, name, mode, ctx))
        self.guard.record("mkdir", None, ctx, ino=entry.st_ino)
        return entry

    @writes_catalog
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        if stat.S_IFMT(mode) == stat.S_IFREG:
            self._check_placement(parent_inode, name, ctx)
            inode = self._create_entry(parent_inode, name, mode, ctx)
            self.guard.record("create", None, ctx, ino=inode.id)
            st = self._state(inode.id)
            await self._ensure_staging(st, empty=True)
            self._mark_dirty(st)
            await self._publish(st)
            self._close_state(st)
            return self._entry(self._get(inode.id))
        return self._entry(self._create_entry(parent_inode, name, mode, ctx, rdev=rdev))

    @writes_catalog
    async def symlink(self, parent_inode, name, target, ctx):
        entry = self._entry(self._create_entry(parent_inode, name, stat.S_IFLNK | 0o777, ctx,
                                               target=os.fsdecode(target)))
        self.guard.record("symlink", None, ctx, ino=entry.st_ino)
        return entry

    @writes_catalog
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
        self.guard.record("link", self.guard.child(new_parent_inode, text), ctx)
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

    @writes_catalog
    async def unlink(self, parent_inode, name, ctx):
        text = self._name(name)
        inode = self.cat.ns.lookup(parent_inode, text)
        if inode is None:
            raise fuse_error(errno.ENOENT)
        if inode.kind == "dir":
            raise fuse_error(errno.EISDIR)
        path = self.guard.child(parent_inode, text) if self.guard.audit.enabled or \
            self.guard.gov.protects else None
        self.guard.check("delete", inode, ctx, path)
        self.space.before_delete()  # a full disk: deletes are how the user makes room
        with self.cat.transaction():
            self._remove(parent_inode, text)
            self.cat.ns.touch_dir(parent_inode)
        self._after_unlink(inode.id)
        self.space.after_delete()
        self.guard.record("delete", path, ctx)

    def _after_unlink(self, ino: int) -> None:
        inode = self.cat.ns.get(ino)
        if inode is not None and inode.nlink == 0:
            self._unlinked(ino)

    @writes_catalog
    async def rmdir(self, parent_inode, name, ctx):
        inode = self.cat.ns.lookup(parent_inode, self._name(name))
        if inode is None:
            raise fuse_error(errno.ENOENT)
        if inode.kind != "dir":
            raise fuse_error(errno.ENOTDIR)
        if self.cat.ns.has_children(inode.id):
            raise fuse_error(errno.ENOTEMPTY)
        self.guard.record("rmdir", None, ctx, ino=inode.id)
        self.space.before_delete()
        with self.cat.transaction():
            self.cat.ns.detach(inode.id)
            self.cat.ns.touch_dir(parent_inode)
            if self.lookups.get(inode.id, 0) == 0:
                self.cat.ns.delete(inode.id)
            else:
                self.orphaned.add(inode.id)
        self.space.after_delete()

    @writes_catalog
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
        self.guard.check("rename", src, ctx)
        if dst is not None and dst.id != src.id:  # replaced (or exchanged): changed too
            self.guard.check("rename" if flags & pyfuse3.RENAME_EXCHANGE else "delete", dst, ctx)
        what = (self.guard.child(parent_inode_old, old_name) + " -> "
                + self.guard.child(parent_inode_new, new_name)) if self.guard.audit.enabled else ""
        self._rename(parent_inode_old, old_name, parent_inode_new, new_name, flags, src, dst)
        self.guard.record("rename", what, ctx)

    def _rename(self, parent_inode_old: int, old_name: str, parent_inode_new: int,
                new_name: str, flags: int, src, dst) -> None:
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
