"""An fsx-style random operation run: the mount must always agree with a local file.

Not fsx itself (not packaged here), but its idea: seeded random writes,
truncates, fallocates (plain, keep-size, punch-hole, zero-range), reads, mmap
reads, fsyncs and close/reopen on one file in the mount and on a reference
file, comparing contents after every read.
"""

from __future__ import annotations

import mmap
import os
import random

import pytest

from omnifs.mountfs.fallocate import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    fallocate,
)

MAX = 300_000
FALLOCATE_MODES = (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_match_a_local_file(mnt, tmp_path, seed):
    rnd = random.Random(seed)
    ref_path, path = tmp_path / "ref", mnt.mp / f"fsx{seed}"
    flags = os.O_RDWR | os.O_CREAT
    ref, fd = os.open(ref_path, flags, 0o644), os.open(path, flags, 0o644)
    size = 0
    try:
        for step in range(300):
            op = rnd.choice(["write", "write", "read", "truncate", "fallocate", "mmap", "fsync",
                             "reopen"])
            if op == "write":
                off = rnd.randrange(0, MAX)
                data = rnd.randbytes(rnd.randrange(1, 20_000))
                assert os.pwrite(fd, data, off) == os.pwrite(ref, data, off)
                size = max(size, off + len(data))
            elif op == "truncate":
                size = rnd.randrange(0, MAX)
                os.ftruncate(fd, size)
                os.ftruncate(ref, size)
            elif op == "fallocate":
                mode = rnd.choice(FALLOCATE_MODES)
                off, n = rnd.randrange(0, MAX), rnd.randrange(1, 40_000)
                fallocate(fd, mode, off, n)
                fallocate(ref, mode, off, n)
                if not mode & FALLOC_FL_KEEP_SIZE:
                    size = max(size, off + n)
            elif op == "read":
                off = rnd.randrange(0, max(size, 1))
                n = rnd.randrange(1, 70_000)
                assert os.pread(fd, n, off) == os.pread(ref, n, off), f"step {step}"
            elif op == "mmap" and size > 0:
                with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:
                    off = rnd.randrange(0, size)
                    assert m[off:off + 5000] == os.pread(ref, 5000, off)[: size - off]
            elif op == "fsync":
                os.fsync(fd)
            elif op == "reopen":
                os.close(fd)
                fd = os.open(path, os.O_RDWR)
            assert os.fstat(fd).st_size == os.fstat(ref).st_size == size, f"step {step} {op}"
    finally:
        os.close(fd)
        os.close(ref)
    assert path.read_bytes() == ref_path.read_bytes()
    mnt.replicate()
    for name in mnt.names:
        assert mnt.provider(name).read_bytes(path.name) == ref_path.read_bytes()
