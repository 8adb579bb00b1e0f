"""rename(2) through the handlers: a catalog update, whatever the stores hold."""

from __future__ import annotations

import errno

import pyfuse3
import pytest

from .conftest import STORE_PAIRS, raises_errno


async def _rename(fs, old: str, new: str, flags: int = 0) -> None:
    pa, na = await fs.parent_and_name(old)
    pb, nb = await fs.parent_and_name(new)
    await fs.ops.rename(pa, na, pb, nb, flags, fs.ctx)


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_rename_over_an_existing_file_reads_the_moved_bytes(make_fs, kinds):
    files = {"a.txt": b"the new bytes\n" * 1000, "b.txt": b"the old bytes\n"}
    async with make_fs(kinds, files=files) as fs:
        old_b = await fs.lookup("/b.txt")
        a = await fs.ino("/a.txt")
        await _rename(fs, "/a.txt", "/b.txt")
        assert await fs.ino("/b.txt") == a
        await raises_errno(errno.ENOENT, fs.lookup("/a.txt"))
        # read from the stores (nothing cached): the bytes are still under the old key
        assert await fs.read_file("/b.txt") == files["a.txt"]
        assert sum(p.calls["open_read"] for p in fs.stores.values()) > 0
        assert sorted(await fs.listdir("/")) == ["b.txt"]
        # the replaced file has no name left; the kernel still knows its inode until forget
        assert (await fs.ops.getattr(old_b.st_ino, fs.ctx)).st_nlink == 0
        await fs.ops.forget([(old_b.st_ino, 2)])
        await raises_errno(errno.ENOENT, fs.ops.getattr(old_b.st_ino, fs.ctx))


async def test_rename_of_a_directory_moves_its_tree(make_fs):
    async with make_fs() as fs:
        await fs.mkdir("/d")
        await fs.mkdir("/d/e")
        await fs.write_file("/d/e/f.txt", b"deep\n")
        await fs.mkdir("/empty")
        await _rename(fs, "/d", "/empty")  # over an empty directory
        assert await fs.read_file("/empty/e/f.txt") == b"deep\n"
        assert sorted(await fs.listdir("/")) == ["empty"]
        await fs.mkdir("/x")
        await fs.write_file("/x/keep", b"")
        await raises_errno(errno.ENOTEMPTY, _rename(fs, "/empty", "/x"))
        await raises_errno(errno.EINVAL, _rename(fs, "/empty", "/empty/e/inside"))
        await raises_errno(errno.ENOTDIR, _rename(fs, "/empty", "/x/keep"))
        await raises_errno(errno.EISDIR, _rename(fs, "/x/keep", "/empty"))
        await raises_errno(errno.ENOENT, _rename(fs, "/missing", "/y"))
        await raises_errno(errno.ENOTDIR, _rename(fs, "/x/keep", "/x/keep/y"))


async def test_rename_noreplace_and_exchange(make_fs):
    async with make_fs() as fs:
        a = await fs.write_file("/a", b"A")
        b = await fs.write_file("/b", b"B")
        d = await fs.mkdir("/d")
        await raises_errno(errno.EEXIST, _rename(fs, "/a", "/b", pyfuse3.RENAME_NOREPLACE))
        await _rename(fs, "/a", "/c", pyfuse3.RENAME_NOREPLACE)
        assert await fs.ino("/c") == a
        await _rename(fs, "/c", "/b", pyfuse3.RENAME_EXCHANGE)
        assert (await fs.ino("/b"), await fs.ino("/c")) == (a, b)
        assert (await fs.read_file("/b"), await fs.read_file("/c")) == (b"A", b"B")
        await _rename(fs, "/b", "/d", pyfuse3.RENAME_EXCHANGE)  # a file and a directory
        assert (await fs.ino("/d"), await fs.ino("/b")) == (a, d)
        await raises_errno(errno.ENOENT, _rename(fs, "/c", "/nothing", pyfuse3.RENAME_EXCHANGE))
        both = pyfuse3.RENAME_EXCHANGE | pyfuse3.RENAME_NOREPLACE
        await raises_errno(errno.EINVAL, _rename(fs, "/c", "/d", both))


async def test_rename_between_two_names_of_one_file_does_nothing(make_fs):
    async with make_fs() as fs:
        ino = await fs.write_file("/a", b"one file")
        await fs.ops.link(ino, pyfuse3.ROOT_INODE, b"b", fs.ctx)
        await _rename(fs, "/a", "/b")
        assert sorted(await fs.listdir("/")) == ["a", "b"]
        assert (await fs.ops.getattr(ino, fs.ctx)).st_nlink == 2


async def test_rename_names_the_reserved_prefix_or_too_long(make_fs):
    async with make_fs() as fs:
        await fs.write_file("/a", b"")
        await raises_errno(errno.EPERM, _rename(fs, "/a", "/.omnifs"))
        await raises_errno(errno.ENAMETOOLONG, _rename(fs, "/a", "/" + "n" * 256))
        await fs.mkdir("/sub")
        await _rename(fs, "/a", "/sub/.omnifs")  # reserved at the top only
        assert await fs.read_file("/sub/.omnifs") == b""
