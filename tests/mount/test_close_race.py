"""A truncate's 0 is kept, whatever other handles of the file do meanwhile.

The kernel sends FUSE ``release`` after ``close`` has returned, so
``truncate`` can arrive first. While the truncate is still copying the file
into staging, the release must not close the file's state and hand the
staging file to the block cache under it: the truncate returns 0, and its
result must survive a remount. The stress run (test_stress.py) meets this by
chance; here it is driven through :class:`Operations` directly, without a
mount, so the interleaving is exact. Also: a truncate by path while a reader
has the file open is answered only once a store holds it (the reader's
close, which cannot report a failure, must not be the one to upload it).
And: a release after another mount published the file does not queue this
mount's bytes for the block cache under the other mount's hash.
"""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace

import pyfuse3
import trio
import trio.testing

from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.config import parse_config
from omnifs.mountfs.mount import open_stores
from omnifs.mountfs.operations import Operations

FIELDS = ("update_size", "update_mode", "update_uid", "update_gid", "update_atime",
          "update_mtime", "update_ctime")


CTX = SimpleNamespace(uid=0, gid=0, umask=0o022, pid=0)


def _setup(tmp_path):
    """A config over two ``file`` stores, its catalog and its stores."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    cfg = parse_config({"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
                        "cache": {"dir": str(tmp_path / "cache")},
                        "providers": {"a": {"uri": f"file://{tmp_path}/a"},
                                      "b": {"uri": f"file://{tmp_path}/b"}}})
    return cfg, Catalog(cfg.catalog_target()), open_stores(cfg)


def test_a_release_waits_for_a_truncate_in_progress(tmp_path):
    cfg, cat, stores = _setup(tmp_path)
    ctx = CTX

    async def main():
        ops = Operations(cfg, cat, stores)
        fi, entry = await ops.create(ROOT_INODE, b"f", 0o644, os.O_WRONLY, ctx)
        await ops.write(fi.fh, 0, os.urandom(100_000))
        await ops.flush(fi.fh)
        await ops.release(fi.fh)
        ino = entry.st_ino
        reader = await ops.open(ino, os.O_RDONLY, ctx)  # `cat f` whose release comes late

        gate = trio.Event()
        fetch = ops.reader.fetch_whole

        async def slow_fetch(inode, fd, before_write=None, written=None):
            await gate.wait()
            return await fetch(inode, fd, before_write, written)

        ops.reader.fetch_whole = slow_fetch
        attr = pyfuse3.EntryAttributes()
        attr.st_size = 0
        fields = SimpleNamespace(**{f: f == "update_size" for f in FIELDS})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ops.setattr, ino, attr, fields, None, ctx)  # truncate(f, 0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ops.release, reader.fh)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        inode = cat.ns.get(ino)
        assert (inode.size, inode.version, inode.staged) == (0, 2, 0)

        # truncate(2) by path while a reader still has the file open: its 0 comes once the
        # stores hold it, not at the reader's close (which cannot report a failed upload)
        reader = await ops.open(ino, os.O_RDONLY, ctx)
        attr.st_size = 5
        await ops.setattr(ino, attr, fields, None, ctx)
        inode = cat.ns.get(ino)
        assert (inode.size, inode.version, inode.staged) == (5, 3, 0)
        await ops.release(reader.fh)
        await ops.shutdown()

    try:
        trio.run(main)
    finally:
        stores.close()
        cat.close()


def test_a_release_after_another_writers_publish_queues_nothing_under_their_hash(tmp_path):
    """Another mount publishes the file between this one's publish (the flush) and its
    release: the staging file holds this mount's bytes, not the version the catalog
    records now, so it is not queued for the cache (nor read, mountfs/reader.py) as that."""
    cfg, cat, stores = _setup(tmp_path)

    async def write(ops, name: bytes, data: bytes, between=None) -> int:
        fi, entry = await ops.create(ROOT_INODE, name, 0o644, os.O_WRONLY, CTX)
        await ops.write(fi.fh, 0, data)
        await ops.flush(fi.fh)
        if between is not None:
            between(entry.st_ino)
        await ops.release(fi.fh)
        return entry.st_ino

    theirs = hashlib.sha256(b"theirs").hexdigest()

    def other_mount_publishes(ino: int) -> None:
        other = Catalog(cfg.catalog_target())
        try:
            version = other.ns.get(ino).version
            other.ns.update(ino, version=version + 1, sha256=theirs, size=6, staged=0)
        finally:
            other.close()

    async def main():
        ops = Operations(cfg, cat, stores)
        await write(ops, b"f", b"ours" * 1000, other_mount_publishes)
        assert ops.written.open_queued(theirs) is None
        assert ops.written.pending_bytes == 0
        ino = await write(ops, b"g", b"only ours" * 1000)  # no other writer: queued
        fd = ops.written.open_queued(cat.ns.get(ino).sha256)
        assert fd is not None
        os.close(fd)
        await ops.shutdown()

    try:
        trio.run(main)
    finally:
        stores.close()
        cat.close()
