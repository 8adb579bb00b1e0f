"""fallocate through the mount: posix_fallocate, fallocate(1) modes, punched holes read zeros."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from omnifs.mountfs.fallocate import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    fallocate,
)

MiB = 1 << 20


def test_fallocate_tool_preallocates_and_extends(mnt):
    path = mnt.mp / "pre.bin"
    subprocess.run(["fallocate", "-l", "10M", str(path)], check=True, capture_output=True)
    assert os.path.getsize(path) == 10 * MiB
    assert path.read_bytes() == bytes(10 * MiB)
    assert mnt.home("pre.bin").head("pre.bin").size == 10 * MiB


def test_keep_size_allocates_without_growing(mnt):
    path = mnt.mp / "keep.txt"
    path.write_bytes(b"hello\n")
    subprocess.run(["fallocate", "-n", "-l", "1M", str(path)], check=True, capture_output=True)
    assert path.read_bytes() == b"hello\n"
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 4 * MiB, MiB)  # beyond the end: size stays
        assert os.fstat(fd).st_size == 6
    finally:
        os.close(fd)
    assert path.read_bytes() == b"hello\n"


def test_posix_fallocate_sets_the_size_and_keeps_the_data(mnt):
    path = mnt.mp / "db"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"header")
        os.posix_fallocate(fd, 0, 8 * MiB)
        assert os.fstat(fd).st_size == 8 * MiB
        os.pwrite(fd, b"tail", 8 * MiB - 4)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert data[:6] == b"header" and data[-4:] == b"tail" and data[6:-4] == bytes(8 * MiB - 10)


@pytest.mark.parametrize("mode", [FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                  FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE])
def test_punched_or_zeroed_range_reads_back_zeros(mnt, mode):
    path = mnt.mp / "punch.bin"
    data = bytearray(os.urandom(300_000))
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, mode, 4096, 65536)
        data[4096:4096 + 65536] = bytes(65536)
        assert os.pread(fd, 300_000, 0) == bytes(data)
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(data)
    mnt.replicate()
    for name in mnt.names:
        assert mnt.provider(name).read_bytes("punch.bin") == bytes(data)


def test_punch_hole_with_the_tool(mnt):
    path = mnt.mp / "tool.bin"
    path.write_bytes(b"x" * 20_000)
    subprocess.run(["fallocate", "-p", "-o", "4096", "-l", "8192", str(path)], check=True,
                   capture_output=True)
    assert path.read_bytes() == b"x" * 4096 + bytes(8192) + b"x" * (20_000 - 12288)


def test_unknown_modes_and_read_only_descriptors_are_refused(mnt):
    path = mnt.mp / "ro.bin"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            fallocate(fd, 0, 0, MiB)
        assert info.value.errno == errno.EBADF
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(OSError) as info:
            fallocate(fd, 0x08, 0, 4096)  # COLLAPSE_RANGE: not something FUSE passes on
        assert info.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    assert path.read_bytes() == b"data"
