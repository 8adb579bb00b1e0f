"""link(2) and unlink(2), including a file unlinked while open: readable until its last close."""

from __future__ import annotations

import errno
import os

import pyfuse3
import pytest

from .conftest import STORE_PAIRS, raises_errno

ROOT = pyfuse3.ROOT_INODE


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_hard_links_share_one_inode_and_outlive_the_first_name(make_fs, kinds):
    async with make_fs(kinds, files={"a.txt": b"linked bytes\n" * 5000}) as fs:
        ino = await fs.ino("/a.txt")
        d = await fs.mkdir("/d")
        attr = await fs.ops.link(ino, d, b"b.txt", fs.ctx)
        assert (attr.st_ino, attr.st_nlink) == (ino, 2)
        assert await fs.read_file("/d/b.txt") == b"linked bytes\n" * 5000
        await fs.ops.unlink(ROOT, b"a.txt", fs.ctx)  # the primary name goes first
        assert (await fs.ops.getattr(ino, fs.ctx)).st_nlink == 1
        assert await fs.read_file("/d/b.txt") == b"linked bytes\n" * 5000
        await fs.write_file("/d/b.txt", b"rewritten under the remaining name\n")
        assert await fs.read_file("/d/b.txt") == b"rewritten under the remaining name\n"
        # the remaining name is the primary now: a new version is stored under it
        assert fs.held_by("d/b.txt")


async def test_link_errors(make_fs):
    async with make_fs() as fs:
        f = await fs.write_file("/f", b"")
        await fs.write_file("/g", b"")
        d = await fs.mkdir("/d")
        await raises_errno(errno.EPERM, fs.ops.link(d, ROOT, b"d2", fs.ctx))
        await raises_errno(errno.EEXIST, fs.ops.link(f, ROOT, b"g", fs.ctx))
        await raises_errno(errno.ENOTDIR, fs.ops.link(f, f, b"x", fs.ctx))
        await raises_errno(errno.ENOENT, fs.ops.link(10_000, ROOT, b"x", fs.ctx))
        await raises_errno(errno.EPERM, fs.ops.link(f, ROOT, b".omnifs", fs.ctx))


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_unlinked_published_file_stays_readable_through_its_handle(make_fs, kinds):
    data = os.urandom(300_000)
    async with make_fs(kinds, files={"gone.bin": data}) as fs:
        ino = await fs.ino("/gone.bin")
        fh = (await fs.ops.open(ino, os.O_RDONLY, fs.ctx)).fh
        await fs.ops.unlink(ROOT, b"gone.bin", fs.ctx)
        await raises_errno(errno.ENOENT, fs.lookup("/gone.bin"))
        assert (await fs.ops.getattr(ino, fs.ctx)).st_nlink == 0
        assert await fs.read_handle(fh) == data  # from the stores, after the unlink
        # no new name for it
        await raises_errno(errno.ENOENT, fs.ops.link(ino, ROOT, b"back", fs.ctx))
        await fs.ops.release(fh)
        await fs.ops.forget([(ino, 1)])
        await raises_errno(errno.ENOENT, fs.ops.getattr(ino, fs.ctx))


async def test_unlinked_file_being_written_keeps_its_bytes_until_closed(make_fs):
    async with make_fs() as fs:
        fh, ino = await fs.create("/tmp.bin", os.O_RDWR)
        await fs.write_all(fh, b"first part,")
        await fs.ops.unlink(ROOT, b"tmp.bin", fs.ctx)
        await fs.write_all(fh, b" written after the unlink", offset=11)
        assert await fs.read_handle(fh) == b"first part, written after the unlink"
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == 36
        await fs.close(fh)
        await fs.ops.forget([(ino, 1)])
        await raises_errno(errno.ENOENT, fs.ops.getattr(ino, fs.ctx))
        assert await fs.listdir("/") == []
        assert fs.held_by("tmp.bin") == []  # a file nobody can reach is not uploaded


async def test_unlink_and_rmdir_errors(make_fs):
    async with make_fs() as fs:
        await fs.mkdir("/d")
        await fs.write_file("/d/f", b"")
        await raises_errno(errno.ENOENT, fs.ops.unlink(ROOT, b"missing", fs.ctx))
        await raises_errno(errno.EISDIR, fs.ops.unlink(ROOT, b"d", fs.ctx))
        await raises_errno(errno.ENOTEMPTY, fs.ops.rmdir(ROOT, b"d", fs.ctx))
        d = await fs.ino("/d")
        await raises_errno(errno.ENOTDIR, fs.ops.rmdir(d, b"f", fs.ctx))
        await fs.ops.unlink(d, b"f", fs.ctx)
        await fs.ops.rmdir(ROOT, b"d", fs.ctx)
        assert await fs.listdir("/") == []
