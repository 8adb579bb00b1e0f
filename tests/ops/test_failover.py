"""Reads fail over to another replica; with none left they answer EIO, and the names stay.

Every file here is put in both stores before the filesystem starts, so it is
imported with two replicas and its first read goes to the stores (the cache
is empty).
"""

from __future__ import annotations

import errno
import os

import pytest

from .conftest import STORE_PAIRS, raises_errno

A = os.urandom(200_000)
B = os.urandom(200_000)


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_a_store_down_reads_come_from_the_other(make_fs, kinds):
    async with make_fs(kinds, files={"a.bin": A, "b.bin": B}) as fs:
        first, second = fs.names
        fs.stores[first].outage = True
        assert await fs.read_file("/a.bin") == A
        assert fs.stores[second].calls["open_read"] > 0
        fs.stores[first].outage = False
        fs.stores[second].outage = True
        assert await fs.read_file("/b.bin") == B


@pytest.mark.parametrize("kinds", STORE_PAIRS)
async def test_every_store_down_is_eio_and_metadata_still_answers(make_fs, kinds):
    async with make_fs(kinds, files={"a.bin": A}) as fs:
        for p in fs.stores.values():
            p.outage = True
        ino = await fs.ino("/a.bin")  # the catalog answers: no store is asked
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == len(A)
        assert await fs.listdir("/") == ["a.bin"]
        await raises_errno(errno.EIO, fs.read_file("/a.bin"))
        # an append needs the current bytes first: EIO too, and nothing changes
        fh = (await fs.ops.open(ino, os.O_WRONLY | os.O_APPEND, fs.ctx)).fh
        await raises_errno(errno.EIO, fs.ops.write(fh, len(A), b"more"))
        await fs.ops.release(fh)
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == len(A)
        for p in fs.stores.values():
            p.outage = False
        assert await fs.read_file("/a.bin") == A


async def test_every_server_cut_is_eio(make_fs):
    async with make_fs(("s3", "az"), files={"a.bin": A, "b.bin": B}, proxied=True) as fs:
        fs.proxies[fs.names[0]].cut()
        assert await fs.read_file("/a.bin") == A
        fs.proxies[fs.names[1]].cut()
        await raises_errno(errno.EIO, fs.read_file("/b.bin"))
        assert await fs.read_file("/a.bin") == A  # what was read is cached


async def test_objects_gone_from_every_store_is_eio_not_enoent(make_fs):
    async with make_fs(files={"a.bin": A}) as fs:
        for p in fs.stores.values():
            p.inner.delete("a.bin")
        await fs.ino("/a.bin")  # the name is the catalog's: it exists
        await raises_errno(errno.EIO, fs.read_file("/a.bin"))


async def test_missing_on_one_store_and_the_other_down_is_eio(make_fs):
    async with make_fs(files={"a.bin": A}) as fs:
        first, second = fs.names
        fs.stores[first].inner.delete("a.bin")
        fs.stores[second].outage = True
        await raises_errno(errno.EIO, fs.read_file("/a.bin"))
        fs.stores[second].outage = False
        assert await fs.read_file("/a.bin") == A  # the other replica still has it
