"""close(2) succeeds once ``write_quorum`` stores hold the bytes, and fails (EIO) when they cannot.

A failed close leaves the bytes staged: a later fsync, or the background uploader, publishes
them once a store answers again.
"""

from __future__ import annotations

import errno
import os

import pytest
import trio

from omnifs.mountfs.stores import LOCAL_DOWN_FOR
from tests.poll import wait_until

from .conftest import raises_errno


async def test_quorum_of_every_copy_writes_every_store(make_fs):
    async with make_fs(("file", "file", "file"), copies=3, quorum=3) as fs:
        await fs.write_file("/a.txt", b"three copies\n")
        assert await fs.replicas("/a.txt") == dict.fromkeys(fs.names, "synced")
        assert sorted(fs.held_by("a.txt")) == sorted(fs.names)


async def test_a_store_down_is_replaced_by_the_next_one(make_fs):
    async with make_fs(("file", "file", "file"), copies=3, quorum=2) as fs:
        down = fs.names[0]  # the one placement likes best
        fs.stores[down].outage = True
        await fs.write_file("/a.txt", b"two of three\n")
        up = [n for n in fs.names if n != down]
        assert await fs.replicas("/a.txt") == dict.fromkeys(up, "synced")
        assert sorted(fs.held_by("a.txt")) == sorted(up)


async def test_close_fails_without_a_quorum_and_fsync_publishes_once_it_is_back(make_fs):
    async with make_fs(copies=2, quorum=2) as fs:
        down = fs.names[1]
        fs.stores[down].outage = True
        fh, ino = await fs.create("/a.txt")
        await fs.write_all(fh, b"needs two stores\n")
        await raises_errno(errno.EIO, fs.ops.flush(fh))
        assert (await fs.ops.getattr(ino, fs.ctx)).st_size == 17  # staged, not lost
        fs.stores[down].outage = False
        fs.clock.advance(LOCAL_DOWN_FOR)  # the mount no longer counts it down
        await fs.ops.fsync(fh, False)
        await fs.ops.release(fh)
        assert await fs.replicas("/a.txt") == dict.fromkeys(fs.names, "synced")
        assert fs.stores[down].inner.read_bytes("a.txt") == b"needs two stores\n"


async def test_every_store_down_close_is_eio_and_the_uploader_catches_up(make_fs):
    async with make_fs(copies=1, quorum=1) as fs:
        for p in fs.stores.values():
            p.outage = True
        fh, _ = await fs.create("/a.txt")
        await fs.write_all(fh, b"nobody takes it yet\n")
        await raises_errno(errno.EIO, fs.ops.flush(fh))
        await fs.ops.release(fh)
        assert await fs.read_file("/a.txt") == b"nobody takes it yet\n"  # from staging
        for p in fs.stores.values():
            p.outage = False
        fs.clock.advance(LOCAL_DOWN_FOR)
        with trio.fail_after(30):
            # the background uploader retries with backoff
            await wait_until(lambda: fs.held_by("a.txt"), every=0.1)
        assert list((await fs.replicas("/a.txt")).values()) == ["synced"]  # copies = 1


@pytest.mark.parametrize("kinds", [("s3", "az"), ("gs", "minio")], ids=["s3+az", "gs+minio"])
async def test_quorum_over_real_servers_one_cut(make_fs, kinds):
    async with make_fs(kinds, copies=2, quorum=2, proxied=True) as fs:
        await fs.write_file("/a.txt", b"both\n")
        assert await fs.replicas("/a.txt") == dict.fromkeys(fs.names, "synced")
        fs.proxies[fs.names[1]].cut()  # the server is gone: connections refused
        fh = (await fs.ops.open(await fs.ino("/a.txt"), os.O_WRONLY | os.O_TRUNC,
                                fs.ctx)).fh
        await fs.write_all(fh, b"only one store answers\n")
        await raises_errno(errno.EIO, fs.ops.flush(fh))
        await fs.ops.release(fh)
        assert await fs.read_file("/a.txt") == b"only one store answers\n"  # staged


async def test_quorum_one_over_real_servers_survives_a_cut_store(make_fs):
    async with make_fs(("s3", "az"), copies=2, quorum=1, proxied=True) as fs:
        fs.proxies[fs.names[0]].cut()
        await fs.write_file("/a.txt", b"the other store takes it\n")
        assert await fs.replicas("/a.txt") == {fs.names[1]: "synced"}
