"""With another mount live on the catalog, a close publishes under the file's publish lease
(mountfs/coherence.py): its errors stay plain errnos, and the lease goes when it ends."""

from __future__ import annotations

import errno
import os

from .conftest import raises_errno


async def test_a_failed_close_under_the_lease_is_eio_and_frees_the_lease(make_fs):
    async with make_fs(copies=1, quorum=1) as fs:
        cat = fs.ops.cat
        cat.leases.take("mount:elsewhere", "elsewhere", 60)  # another mount is live
        assert fs.ops.coherence.peers() == 1
        ino = await fs.write_file("/ok.txt", b"published under the lease\n")
        assert cat.leases.holder(f"publish:{ino}") is None
        for p in fs.stores.values():
            p.outage = True
        fh, _ = await fs.create("/a.txt")
        await fs.write_all(fh, b"nobody takes it\n")
        await raises_errno(errno.EIO, fs.ops.flush(fh))  # not an ExceptionGroup
        await fs.ops.release(fh)
        assert cat.leases.live("publish:") == []


async def test_another_mounts_publish_waits_for_the_lease(make_fs):
    async with make_fs(copies=1, quorum=1) as fs:
        cat = fs.ops.cat
        cat.leases.take("mount:elsewhere", "elsewhere", 60)
        ino = await fs.write_file("/f.txt", b"one\n")
        cat.leases.take(f"publish:{ino}", "elsewhere", 0.5)  # the other mount is publishing
        fh = (await fs.ops.open(ino, os.O_WRONLY | os.O_TRUNC, fs.ctx)).fh
        await fs.write_all(fh, b"two\n")
        await fs.ops.flush(fh)  # waits until that lease ran out, then publishes
        await fs.ops.release(fh)
        assert cat.ns.get(ino).version == 2
