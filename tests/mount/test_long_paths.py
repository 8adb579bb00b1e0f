"""Paths too long for a store's keys: a fallback key, never a success code with data lost.

pjdfstest's truncate/03.t and ftruncate/03.t in small: a file at the end of a
path of thousands of bytes is written, truncated to 123 bytes and read back,
through a remount; in the stores its bytes sit under ``.omnifs/long/`` with
the path in their metadata or a sidecar, and a rename to a short path moves
them to a plain key.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from omnifs.layout import META_PATH, SIDECAR_SUFFIX, long_key

NAME = "d" * 250


@contextlib.contextmanager
def inside(directory):
    """chdir for the duration: paths under a long one are only reachable relatively."""
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def make_deep(mp, depth: int) -> str:
    """``depth`` nested directories of 250-byte names under ``mp``; the path of the last."""
    with inside(mp):
        for _ in range(depth):
            with contextlib.suppress(FileExistsError):
                os.mkdir(NAME)
            os.chdir(NAME)
    return "/".join([NAME] * depth)


def chdir_deep(mp, depth: int) -> None:
    os.chdir(mp)
    for _ in range(depth):
        os.chdir(NAME)


def write_truncate_read(m, depth: int) -> str:
    rel = make_deep(m.mp, depth) + "/file"
    data = os.urandom(5000)
    with inside(m.mp):
        chdir_deep(m.mp, depth)
        with open("file", "wb") as f:
            f.write(data)
        os.truncate("file", 123)  # pjdfstest truncate/03.t: returns 0, and keeps the bytes
        assert os.stat("file").st_size == 123
        with open("file", "rb") as f:
            assert f.read() == data[:123]
        fd = os.open("file", os.O_RDWR)  # ftruncate/03.t
        try:
            os.ftruncate(fd, 100)
        finally:
            os.close(fd)
    m.umount()
    m.mount()
    with inside(m.mp):
        chdir_deep(m.mp, depth)
        with open("file", "rb") as f:
            assert f.read() == data[:100]
    return rel


def check_store(p, rel: str, size: int, *, sidecar: bool) -> None:
    key = long_key(rel)
    assert p.head(key).size == size
    meta = p.head(key).metadata
    if sidecar:
        assert META_PATH not in meta
        assert p.read_bytes(key + SIDECAR_SUFFIX) == rel.encode()
    else:
        assert meta[META_PATH] == rel


def test_a_file_whose_path_is_too_long_for_file_stores(mnt):
    rel = write_truncate_read(mnt, 17)  # 4,272 bytes: beyond PATH_MAX with the store's root
    mnt.replicate()
    for name in mnt.names:
        check_store(mnt.provider(name), rel, 100, sidecar=True)
    # renamed to a short path: the bytes move to a plain key, the long key and sidecar go
    with inside(mnt.mp):
        chdir_deep(mnt.mp, 17)
        os.rename("file", "../" * 17 + "short")
    assert len((mnt.mp / "short").read_bytes()) == 100
    mnt.replicate()
    for name in mnt.names:
        p = mnt.provider(name)
        assert p.head("short").size == 100
        assert META_PATH not in p.head("short").metadata
        assert not p.exists(long_key(rel)) and not p.exists(long_key(rel) + SIDECAR_SUFFIX)


def test_import_places_long_paths(mnt):
    """A fresh catalog (a lost one) is rebuilt from the stores: long paths included."""
    rel = make_deep(mnt.mp, 17) + "/file"
    with inside(mnt.mp):
        chdir_deep(mnt.mp, 17)
        with open("file", "wb") as f:
            f.write(b"kept under a fallback key\n")
    mnt.replicate()
    mnt.umount()
    for leftover in mnt.root.glob("catalog.db*"):
        leftover.unlink()
    mnt.mount()  # a new catalog: the mount imports what the stores hold
    with inside(mnt.mp):
        chdir_deep(mnt.mp, 17)
        with open("file", "rb") as f:
            assert f.read() == b"kept under a fallback key\n"
    cat = mnt.catalog()
    try:
        inode = cat.ns.resolve(rel)
        assert {r.key for r in cat.replicas.of(inode.id)} == {long_key(rel)}
    finally:
        cat.close()


@pytest.mark.parametrize("kind", ["s3", "az"])
def test_a_file_whose_path_is_too_long_for_cloud_keys(make_mount, make_settings, kind):
    s = {"one": make_settings(kind, name="one", prefix="ns"),
         "two": make_settings("file", name="two")}
    m = make_mount(settings=s, copies=2)
    rel = write_truncate_read(m, 5)  # 1,255 bytes: beyond 1,024 with "ns/"
    m.replicate()
    check_store(m.provider("one"), rel, 100, sidecar=False)
    assert m.provider("two").head(rel).size == 100  # file:// keys take it as it is
    deeper = write_truncate_read(m, 9)  # a path beyond the 2 KiB of S3 metadata: a sidecar
    m.replicate()
    check_store(m.provider("one"), deeper, 100, sidecar=kind == "s3")
