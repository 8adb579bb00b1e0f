"""A sparse file written through the mount costs its data on local disk, not its size.

Each local copy is measured by its allocated blocks (st_blocks): the staging
file of a rewrite, the block cache copy of the written file, and each
``file://`` store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

MiB = 1 << 20
SIZE = 200 * MiB
#: what a copy may allocate beyond the data written (metadata blocks, one page per write)
SLACK = 1 * MiB


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def tree_allocated(root: Path) -> int:
    return sum(allocated(Path(d) / f) for d, _, fs in os.walk(root) for f in fs)


def test_sparse_file_stays_sparse_on_every_local_copy(mnt):
    blocks_before = tree_allocated(mnt.root / "cache" / "blocks")
    path = mnt.mp / "sparse.img"
    with open(path, "wb") as f:
        f.write(b"start")
        f.seek(SIZE - 64 * 1024)
        f.write(os.urandom(64 * 1024))
    assert os.path.getsize(path) == SIZE
    mnt.replicate()
    for name in mnt.names:
        obj = mnt.root / f"store-{name[-1]}" / "sparse.img"
        assert os.path.getsize(obj) == SIZE
        assert allocated(obj) < 64 * 1024 + SLACK, f"{name}: {allocated(obj)} bytes on disk"
    # the written file went into the block cache (within a second or two of its close)
    cached = 0
    for _ in range(100):
        cached = tree_allocated(mnt.root / "cache" / "blocks") - blocks_before
        if cached > 64 * 1024:
            break
        time.sleep(0.05)
    assert 0 < cached < 64 * 1024 + SLACK + 1 * MiB, f"cache: {cached} bytes on disk"
    # a rewrite starts a staging file from the stored bytes: holes stay holes there too
    staging = mnt.root / "cache" / "staging"
    with open(path, "r+b") as f:
        f.seek(10)
        f.write(b"rewrite")
        f.flush()
        files = list(staging.iterdir())
        assert len(files) == 1
        assert os.path.getsize(files[0]) == SIZE
        assert allocated(files[0]) < 64 * 1024 + SLACK, f"staging: {allocated(files[0])}"
    with open(path, "rb") as f:
        assert f.read(20) == b"start\0\0\0\0\0rewrite\0\0\0"
        f.seek(SIZE // 2)
        assert f.read(MiB) == bytes(MiB)
