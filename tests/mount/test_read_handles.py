"""Reads through an open handle see what other handles of this mount wrote and closed.

The mount keeps the inode a handle's last read looked up instead of asking
the catalog on every FUSE read (mountfs/contents.py ``_read_inode``); a
change made through the mount must end that copy at once. O_DIRECT makes
every read reach the mount (no kernel page cache in between).
"""

from __future__ import annotations

import mmap
import os


def _direct_read(fd: int, size: int, off: int = 0) -> bytes:
    buf = mmap.mmap(-1, size)  # page aligned, as O_DIRECT wants
    n = os.preadv(fd, [buf], off)
    return bytes(buf[:n])


def test_open_reader_sees_a_rewrite_and_a_truncate_by_another_handle(mnt):
    path = mnt.mp / "f.bin"
    first = os.urandom(3 << 20)
    path.write_bytes(first)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        assert _direct_read(fd, 1 << 20) == first[: 1 << 20]
        second = os.urandom(2 << 20)
        path.write_bytes(second)  # another handle: truncate, write, close (publish)
        assert _direct_read(fd, 1 << 20) == second[: 1 << 20]
        assert _direct_read(fd, 1 << 20, 2 << 20) == b""
        os.truncate(path, 4096)
        assert _direct_read(fd, 1 << 20) == second[:4096]
    finally:
        os.close(fd)


def test_reads_on_one_handle_stay_right_across_many_requests(mnt):
    path = mnt.mp / "g.bin"
    data = os.urandom(9 << 20)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        for off in (0, 5 << 20, 1 << 20, 8 << 20, 0):
            assert _direct_read(fd, 1 << 20, off) == data[off: off + (1 << 20)]
    finally:
        os.close(fd)
