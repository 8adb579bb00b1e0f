"""The tier itself: no kernel involved, and its stand-ins for pyfuse3's types are faithful."""

from __future__ import annotations

import dataclasses
import stat

import pyfuse3
import pytest

from omnifs.mountfs import fallocate

from .conftest import KERNEL_CALLS, Ctx, Fields, Listing


def _public(obj) -> set[str]:
    return {a for a in dir(obj) if not a.startswith("_")}


def test_stand_ins_carry_exactly_pyfuse3s_attributes():
    assert {f.name for f in dataclasses.fields(Fields)} == _public(pyfuse3.SetattrFields())
    assert {f.name for f in dataclasses.fields(Ctx)} == _public(pyfuse3.RequestContext())
    defaults = pyfuse3.SetattrFields()
    assert all(getattr(Fields(), a) == getattr(defaults, a) for a in _public(defaults))


def test_kernel_calls_fail_the_test(_no_kernel):
    for name in KERNEL_CALLS:
        with pytest.raises(AssertionError):
            getattr(pyfuse3, name)()
    with pytest.raises(AssertionError):
        fallocate.install(None, None)
    assert _no_kernel == [f"pyfuse3.{n}" for n in KERNEL_CALLS] + ["mountfs.fallocate.install"]
    _no_kernel.clear()  # called on purpose here


async def test_a_filesystem_runs_without_the_kernel(make_fs, _no_kernel):
    async with make_fs() as fs:
        attr = await fs.lookup("/")
        assert stat.S_ISDIR(attr.st_mode)
        await fs.write_file("/a.txt", b"hello\n")
        assert await fs.read_file("/a.txt") == b"hello\n"
        assert await fs.replicas("/a.txt") == {"file0": "synced"}  # write_quorum = 1
    assert _no_kernel == []


async def test_readdir_pages_with_stable_offsets(make_fs):
    async with make_fs() as fs:
        names = [f"f{i:02}" for i in range(10)]
        for name in names:
            await fs.write_file(f"/{name}", b"")
        assert sorted(await fs.listdir("/", page=3)) == names
        assert sorted(await fs.listdir("/", page=100)) == names
        token = Listing(1)
        fh = await fs.ops.opendir(pyfuse3.ROOT_INODE, fs.ctx)
        await fs.ops.readdir(fh, 0, token)
        assert len(token.entries) == 1
