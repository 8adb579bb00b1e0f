"""What each handler answers the kernel, errno by errno (mountfs/fuse_errors.py maps them)."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

from omnifs.mountfs.stores import LOCAL_DOWN_FOR
from omnifs.providers.errors import NoSpace, PermissionDenied

from .conftest import raises_errno

ROOT = pyfuse3.ROOT_INODE
MiB = 1 << 20


async def test_enoent_only_for_names_and_inodes_the_catalog_lacks(make_fs):
    async with make_fs() as fs:
        await raises_errno(errno.ENOENT, fs.ops.lookup(ROOT, b"missing", fs.ctx))
        await raises_errno(errno.ENOENT, fs.ops.getattr(10_000, fs.ctx))
        # an inode gone from the catalog (another mount removed it): ESTALE makes the kernel
        # look the path up again (close-to-open, mountfs/coherence.py)
        await raises_errno(errno.ESTALE, fs.ops.open(10_000, os.O_RDONLY, fs.ctx))
        await raises_errno(errno.ENOENT, fs.ops.opendir(10_000, fs.ctx))
        f = await fs.write_file("/f", b"")
        await raises_errno(errno.ENOENT, fs.ops.lookup(f, b"x", fs.ctx))


async def test_eexist_for_every_way_of_making_a_taken_name(make_fs):
    async with make_fs() as fs:
        f = await fs.write_file("/f", b"")
        mode = stat.S_IFREG | 0o644
        await raises_errno(errno.EEXIST, fs.ops.create(ROOT, b"f", mode, os.O_WRONLY, fs.ctx))
        await raises_errno(errno.EEXIST, fs.ops.mkdir(ROOT, b"f", stat.S_IFDIR | 0o755, fs.ctx))
        await raises_errno(errno.EEXIST, fs.ops.symlink(ROOT, b"f", b"t", fs.ctx))
        await raises_errno(errno.EEXIST, fs.ops.mknod(ROOT, b"f", stat.S_IFIFO | 0o644, 0,
                                                      fs.ctx))
        await raises_errno(errno.EEXIST, fs.ops.link(f, ROOT, b"f", fs.ctx))


async def test_directory_kinds(make_fs):
    async with make_fs() as fs:
        d = await fs.mkdir("/d")
        f = await fs.write_file("/d/f", b"")
        await raises_errno(errno.ENOTEMPTY, fs.ops.rmdir(ROOT, b"d", fs.ctx))
        await raises_errno(errno.EISDIR, fs.ops.open(d, os.O_RDONLY, fs.ctx))
        await raises_errno(errno.EISDIR, fs.ops.unlink(ROOT, b"d", fs.ctx))
        await raises_errno(errno.ENOTDIR, fs.ops.rmdir(d, b"f", fs.ctx))
        await raises_errno(errno.ENOTDIR, fs.ops.mkdir(f, b"x", stat.S_IFDIR | 0o755, fs.ctx))
        await raises_errno(errno.ENOTDIR, fs.ops.opendir(f, fs.ctx))
        await raises_errno(errno.EINVAL, fs.ops.readlink(f, fs.ctx))


async def test_names_and_xattrs(make_fs):
    async with make_fs() as fs:
        f = await fs.write_file("/f", b"")
        mode = stat.S_IFREG | 0o644
        await raises_errno(errno.ENAMETOOLONG,
                           fs.ops.create(ROOT, b"n" * 256, mode, os.O_WRONLY, fs.ctx))
        await raises_errno(errno.EPERM, fs.ops.create(ROOT, b".omnifs", mode, os.O_WRONLY,
                                                      fs.ctx))
        await raises_errno(pyfuse3.ENOATTR, fs.ops.getxattr(f, b"user.none", fs.ctx))
        await raises_errno(pyfuse3.ENOATTR, fs.ops.removexattr(f, b"user.none", fs.ctx))
        await raises_errno(errno.EOPNOTSUPP, fs.ops.getxattr(f, b"security.selinux", fs.ctx))
        await raises_errno(errno.EOPNOTSUPP, fs.ops.setxattr(f, b"system.posix_acl_access",
                                                             b"", fs.ctx))
        await raises_errno(errno.EPERM, fs.ops.setxattr(f, b"user.omnifs.replicas", b"x",
                                                        fs.ctx))
        await fs.ops.setxattr(f, b"user.note", b"kept", fs.ctx)
        assert await fs.ops.getxattr(f, b"user.note", fs.ctx) == b"kept"
        assert b"user.omnifs.replicas" in await fs.ops.listxattr(f, fs.ctx)


async def test_eacces_when_governance_allows_no_store(make_fs):
    regions = {"file0": {"region": "eu-west-1"}, "file1": {"region": "us-east-1"}}
    async with make_fs(extra=regions, rules=[{"paths": ["/vault/**"], "regions": ["ap-*"]}],
                       copies=1) as fs:
        await fs.mkdir("/vault")
        await raises_errno(errno.EACCES, fs.create("/vault/secret"))
        await raises_errno(errno.ENOENT, fs.lookup("/vault/secret"))
        await fs.write_file("/free", b"other paths are unaffected")


async def test_stores_refusing_access_is_eio_for_close_and_read(make_fs):
    """A close no store accepts is EIO and the bytes stay staged (release tries again, and
    the stores, now counted down, leave it to the uploader); a read every replica refuses
    is EIO as well: the file exists, its bytes cannot be had."""
    async with make_fs(copies=1, files={"r": b"readable once allowed"}) as fs:
        for p in fs.stores.values():
            p.error_types, p.error_rate = (PermissionDenied,), 1.0
        fh, ino = await fs.create("/f")
        await fs.write_all(fh, b"refused")
        await raises_errno(errno.EIO, fs.ops.flush(fh))
        await raises_errno(errno.EIO, fs.ops.release(fh))
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == 7
        await raises_errno(errno.EIO, fs.read_file("/r"))
        for p in fs.stores.values():
            p.error_rate = 0.0
        fs.clock.advance(LOCAL_DOWN_FOR)
        assert await fs.read_file("/r") == b"readable once allowed"


async def test_enospc_when_the_cache_cannot_hold_a_write(make_fs):
    async with make_fs(cache={"size": "4MiB"}) as fs:
        fh, _ = await fs.create("/big")
        await raises_errno(errno.ENOSPC, fs.ops.write(fh, 0, bytes(8 * MiB)))
        await fs.close(fh)


async def test_enospc_when_every_store_is_full(make_fs):
    async with make_fs(copies=1) as fs:
        for p in fs.stores.values():
            p.error_types, p.error_rate = (NoSpace,), 1.0
        fh, _ = await fs.create("/f")
        await fs.write_all(fh, b"no room anywhere")
        await raises_errno(errno.ENOSPC, fs.ops.flush(fh))
        await fs.ops.release(fh)
        for p in fs.stores.values():
            p.error_rate = 0.0


async def test_eio_for_an_unexpected_failure_and_the_filesystem_goes_on(make_fs, caplog):
    async with make_fs() as fs:
        await fs.write_file("/f", b"bytes")
        await raises_errno(errno.EIO, fs.ops.read(999, 0, 10))  # a handle never given out
        assert any("internal error" in r.message for r in caplog.records)
        assert await fs.read_file("/f") == b"bytes"
