"""The attribute handlers: stat, chmod/chown/utimes/truncate, statfs and extended attributes.

Attributes come from the catalog; an open file's size and times come from
its open state, which is ahead of the catalog until it is published. A
truncate goes through the file's staging file like a write and is
published when no open handle will do it at close. ``user.omnifs.replicas``
is a read-only xattr computed from the catalog (:mod:`.xattrs`); SELinux
labels, capabilities and POSIX ACLs (``security.*``, ``system.*``) are not
kept.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import trio

from omnifs.catalog import now_ns
from omnifs.replication import queue_attrs

from .fuse_errors import wrap_handlers
from .handler_base import NAME_MAX, fuse_error, writes_catalog
from .uploads import Uploads
from .xattrs import XATTR_REPLICAS, format_replicas

#: xattr namespaces not kept: SELinux labels, capabilities, POSIX ACLs
_UNSUPPORTED_XATTRS = (b"security.", b"system.")


@wrap_handlers
class AttributeHandlers(Uploads):
    """The FUSE requests that read or change attributes and extended attributes."""

    async def getattr(self, inode, ctx):
        return self._attrs(self._get(inode))

    @writes_catalog
    async def setattr(self, inode, attr, fields, fh, ctx):
        self.busy_at = trio.current_time()
        cur = self._get(inode)
        if self.guard.gov.protects and not self._creating(inode):
            if fields.update_size:
                self.guard.check("truncate", cur, ctx)
            if fields.update_mode or fields.update_uid or fields.update_gid:
                self.guard.check("chmod", cur, ctx)
        changes = {}  # catalog column -> new value
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
        if self.guard.audit.enabled:
            what = [k for k in ("size", "mode", "uid", "gid", "atime", "mtime")
                    if getattr(fields, f"update_{k}")]
            self.guard.record("setattr " + ",".join(what), None, ctx, ino=inode)
        return self._attrs(self._get(inode))

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

    @writes_catalog
    async def setxattr(self, inode, name, value, ctx):
        cur = self._get(inode)
        if name == XATTR_REPLICAS:
            raise fuse_error(errno.EPERM)
        if name.startswith(_UNSUPPORTED_XATTRS):
            raise fuse_error(errno.EOPNOTSUPP)
        if not self._creating(inode):
            self.guard.check("setxattr", cur, ctx)
        with self.cat.transaction():
            self.cat.ns.set_xattr(inode, name, value)
            self.cat.ns.update(inode, ctime_ns=now_ns())
        self.guard.record("setxattr " + os.fsdecode(name), None, ctx, ino=inode)

    async def listxattr(self, inode, ctx):
        cur = self._get(inode)
        names = self.cat.ns.list_xattrs(inode)
        if cur.kind == "file":
            names.append(XATTR_REPLICAS)
        return names

    @writes_catalog
    async def removexattr(self, inode, name, ctx):
        cur = self._get(inode)
        if name == XATTR_REPLICAS:
            raise fuse_error(errno.EPERM)
        if not self._creating(inode):
            self.guard.check("setxattr", cur, ctx)
        if not self.cat.ns.remove_xattr(inode, name):
            raise fuse_error(pyfuse3.ENOATTR)
        self.guard.record("removexattr " + os.fsdecode(name), None, ctx, ino=inode)
