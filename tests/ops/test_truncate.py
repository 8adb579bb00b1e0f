"""truncate(2) and ftruncate(2) through setattr: grow, shrink, to zero, on an open handle."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import pytest

from .conftest import STORE_PAIRS, raises_errno

ROOT = pyfuse3.ROOT_INODE
DATA = bytes(range(256)) * 2048  # 512 KiB


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_truncate_by_path_is_published_at_once(make_fs, kinds):
    async with make_fs(kinds, files={"f.bin": DATA}) as fs:
        ino = await fs.ino("/f.bin")
        assert await fs.truncate(ino, 1000) == 1000  # shrink: the stores' copy comes first
        assert await fs.read_file("/f.bin") == DATA[:1000]
        # no close follows a truncate(2): the stores hold the new size when it returns
        primary = fs.names[0]
        assert fs.stores[primary].inner.head("f.bin").size == 1000
        assert await fs.truncate(ino, 5000) == 5000  # grow: zeros
        assert await fs.read_file("/f.bin") == DATA[:1000] + bytes(4000)
        assert fs.stores[primary].inner.read_bytes("f.bin") == DATA[:1000] + bytes(4000)
        assert await fs.truncate(ino, 0) == 0
        assert await fs.read_file("/f.bin") == b""
        assert fs.stores[primary].inner.head("f.bin").size == 0


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_ftruncate_on_an_open_handle_is_published_by_its_close(make_fs, kinds):
    async with make_fs(kinds, files={"f.bin": DATA}) as fs:
        ino = await fs.ino("/f.bin")
        fh = (await fs.ops.open(ino, os.O_RDWR, fs.ctx)).fh
        assert await fs.truncate(ino, 100, fh) == 100
        assert await fs.read_handle(fh) == DATA[:100]
        await fs.write_all(fh, b"tail", offset=200)  # past the end: a hole before it
        assert await fs.truncate(ino, 300, fh) == 300
        assert await fs.read_handle(fh) == DATA[:100] + bytes(100) + b"tail" + bytes(96)
        primary = fs.names[0]
        assert fs.stores[primary].inner.head("f.bin").size == len(DATA)  # not yet
        await fs.close(fh)
        assert fs.stores[primary].inner.read_bytes("f.bin") == \
            DATA[:100] + bytes(100) + b"tail" + bytes(96)


async def test_truncate_while_a_reader_has_it_open(make_fs):
    async with make_fs(files={"f.bin": DATA}) as fs:
        ino = await fs.ino("/f.bin")
        reader = (await fs.ops.open(ino, os.O_RDONLY, fs.ctx)).fh
        assert await fs.read_handle(reader, 10) == DATA[:10]
        assert await fs.truncate(ino, 10) == 10
        assert await fs.read_handle(reader) == DATA[:10]
        await fs.ops.release(reader)
        assert fs.stores[fs.names[0]].inner.head("f.bin").size == 10


async def test_open_with_o_trunc_empties_the_file(make_fs):
    async with make_fs(files={"f.bin": DATA}) as fs:
        ino = await fs.ino("/f.bin")
        fh = (await fs.ops.open(ino, os.O_WRONLY | os.O_TRUNC, fs.ctx)).fh
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == 0
        await fs.close(fh)
        assert await fs.read_file("/f.bin") == b""


async def test_truncate_of_what_is_no_file(make_fs):
    async with make_fs() as fs:
        d = await fs.mkdir("/d")
        await raises_errno(errno.EISDIR, fs.truncate(d, 0))
        link = await fs.ops.symlink(ROOT, b"l", b"target", fs.ctx)
        assert stat.S_ISLNK(link.st_mode)
        await raises_errno(errno.EINVAL, fs.truncate(link.st_ino, 0))
        await raises_errno(errno.ENOENT, fs.truncate(10_000, 0))
