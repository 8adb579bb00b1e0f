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
"""

from __future__ import annotations

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


def test_a_release_waits_for_a_truncate_in_progress(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    cfg = parse_config({"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
                        "cache": {"dir": str(tmp_path / "cache")},
                        "providers": {"a": {"uri": f"file://{tmp_path}/a"},
                                      "b": {"uri": f"file://{tmp_path}/b"}}})
    ctx = SimpleNamespace(uid=0, gid=0, umask=0o022, pid=0)
    cat = Catalog(cfg.catalog_target())
    stores = open_stores(cfg)

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
