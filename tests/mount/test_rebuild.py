"""The catalog can be lost without losing the tree.

A tree with modes, owners, symlinks, hard links, xattrs, empty and setgid
directories, a FIFO and a sparse file is built through a real mount and
replicated; then the catalog is lost (the SQLite file with its -wal and -shm
deleted, or the PostgreSQL database dropped and made again empty) and rebuilt
from the stores alone: by ``omnifs import``, by the mount's own import of a
new catalog, and by ``omnifs dump``/``omnifs load``. ``find -printf`` and
every xattr must come back identical. Changes made after the last snapshot
come back from the objects' metadata where the objects can say them.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from omnifs.config import load_config
from omnifs.layout import SNAPSHOT_PREFIX
from tests import servers

from .conftest import Mounted, omnifs

MiB = 1 << 20
FIND = "%p %m %U %G %s %T@ %l %n\n"
#: the mount's own xattr: replica states, not the tree
OWN_XATTR = "user.omnifs.replicas"


def find(mp: Path) -> list[str]:
    out = subprocess.run(["find", ".", "-printf", FIND], cwd=mp, capture_output=True,
                         text=True, check=True).stdout
    return sorted(out.splitlines())


def xattrs(mp: Path) -> dict[str, dict[str, bytes]]:
    found: dict[str, dict[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(mp):
        for name in [*dirnames, *filenames, ""]:
            path = os.path.join(dirpath, name) if name else dirpath
            if name and os.path.islink(path):
                continue  # user xattrs are not allowed on symlinks
            values = {n: os.getxattr(path, n) for n in os.listxattr(path) if n != OWN_XATTR}
            if values:
                found[os.path.relpath(path, mp)] = values
    return found


def state(mp: Path) -> tuple[list[str], dict]:
    return find(mp), xattrs(mp)


def build_tree(mp: Path) -> None:
    os.makedirs(mp / "d/sub/deeper")
    (mp / "d/empty").mkdir()
    (mp / "empty-top").mkdir(mode=0o700)
    os.chmod(mp / "empty-top", 0o700)
    (mp / "setgid").mkdir()
    os.chown(mp / "setgid", 0, 4321)
    os.chmod(mp / "setgid", 0o2775)
    (mp / "setgid/inherits").write_bytes(b"group from the directory\n")
    (mp / "sticky").mkdir()
    os.chmod(mp / "sticky", 0o1777)
    (mp / "secret").write_bytes(b"TOPSECRET\n")
    os.chmod(mp / "secret", 0o600)
    (mp / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(mp / "tool", 0o755)
    (mp / "theirs").write_bytes(b"someone else's\n")
    os.chown(mp / "theirs", 1234, 5678)
    os.chmod(mp / "theirs", 0o640)
    (mp / "d/sub/file").write_bytes(b"linked content\n" * 100)
    os.link(mp / "d/sub/file", mp / "hard1")
    os.link(mp / "d/sub/file", mp / "d/hard2")
    os.symlink("d/sub/file", mp / "link")
    os.symlink("/nowhere/at/all", mp / "d/dangling")
    os.symlink("..", mp / "d/sub/up")
    os.mkfifo(mp / "d/fifo", 0o620)
    with open(mp / "sparse", "wb") as f:
        f.seek(3 * MiB)
        f.write(b"the end")
    (mp / "empty-file").write_bytes(b"")
    (mp / "old").write_bytes(b"old times\n")
    os.utime(mp / "old", ns=(1_000_000_000_123_456_789, 1_000_000_000_987_654_321))
    os.setxattr(mp / "secret", "user.note", b"hello")
    os.setxattr(mp / "secret", "user.bin", bytes(range(256)))
    os.setxattr(mp / "d", "user.dir", b"on a directory")
    os.setxattr(mp / "d/sub/file", "user.shared", b"one inode, three names")
    os.setxattr(mp / "empty-file", "user.empty", b"")


def lose_catalog(m: Mounted) -> None:
    m.umount()
    servers.lose_catalog(load_config(m.config).catalog_target())


def settle(m: Mounted) -> None:
    """Replicate everything queued (metadata rewrites wait a second to batch)."""
    time.sleep(1.2)
    out = m.replicate()
    assert "failed 0" in out, out


def snapshots(m: Mounted, name: str) -> list[str]:
    return sorted(i.key for i in m.provider(name).list(SNAPSHOT_PREFIX))


STORES = [pytest.param(("file", "file"), id="file"),
          pytest.param(("s3", "az"), id="s3-az")]


@pytest.mark.parametrize("kinds", STORES)
def test_import_rebuilds_the_tree_from_a_snapshot(make_mount, kinds):
    m = make_mount(kinds)
    build_tree(m.mp)
    settle(m)
    out = omnifs("snapshot", config=m.config).stdout
    assert "written to" in out, out
    for name in m.names:
        assert len(snapshots(m, name)) == 1
    before = state(m.mp)
    lose_catalog(m)

    out = omnifs("import", config=m.config).stdout
    assert "restored" in out and ", 0 replicas missing" in out, out
    m.mount()
    assert state(m.mp) == before
    assert (m.mp / "link").read_bytes() == b"linked content\n" * 100
    with open(m.mp / "sparse", "rb") as f:
        f.seek(3 * MiB)
        assert f.read() == b"the end"
    assert os.stat(m.mp / "hard1").st_ino == os.stat(m.mp / "d/hard2").st_ino
    assert stat.S_ISFIFO(os.lstat(m.mp / "d/fifo").st_mode)


@pytest.mark.parametrize("kinds", STORES)
def test_a_mount_on_a_new_catalog_restores_it_and_changes_since_come_from_metadata(
        make_mount, kinds):
    m = make_mount(kinds)
    build_tree(m.mp)
    settle(m)
    omnifs("snapshot", config=m.config)
    # after the last snapshot: a new private file, a chmod, a chown and an utime, an edit
    (m.mp / "new-secret").write_bytes(b"made after the snapshot\n")
    os.chmod(m.mp / "new-secret", 0o600)
    os.chown(m.mp / "new-secret", 2222, 3333)
    os.chmod(m.mp / "tool", 0o700)
    os.chown(m.mp / "theirs", 4444, 5555)
    os.utime(m.mp / "old", ns=(2_000_000_000_000_000_001, 2_000_000_000_000_000_002))
    (m.mp / "secret").write_bytes(b"TOPSECRET, edited\n")
    settle(m)
    before = {p: os.stat(m.mp / p) for p in ("new-secret", "tool", "theirs", "old", "secret")}
    lose_catalog(m)

    m.mount()  # a new catalog: the mount imports before it serves
    for path, was in before.items():
        now = os.stat(m.mp / path)
        assert (stat.filemode(now.st_mode), now.st_uid, now.st_gid, now.st_size,
                now.st_mtime_ns) == (stat.filemode(was.st_mode), was.st_uid, was.st_gid,
                                     was.st_size, was.st_mtime_ns), path
    assert (m.mp / "secret").read_bytes() == b"TOPSECRET, edited\n"
    assert os.getxattr(m.mp / "secret", "user.note") == b"hello"  # from the snapshot


def test_without_any_snapshot_files_keep_their_mode_and_owner(make_mount):
    """A private file must not come back world-readable."""
    m = make_mount()
    (m.mp / "secret").write_bytes(b"TOPSECRET\n")
    os.chmod(m.mp / "secret", 0o600)
    (m.mp / "theirs").write_bytes(b"x")
    os.chown(m.mp / "theirs", 1234, 5678)
    os.utime(m.mp / "theirs", ns=(1, 1_500_000_000_000_000_007))
    settle(m)
    for name in m.names:
        assert snapshots(m, name) == []
    lose_catalog(m)
    omnifs("import", config=m.config)
    m.mount()
    st = os.stat(m.mp / "secret")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    st = os.stat(m.mp / "theirs")
    assert (st.st_uid, st.st_gid, st.st_mtime_ns) == (1234, 5678, 1_500_000_000_000_000_007)


def test_renames_after_snapshot_follow_the_moved_objects(make_mount):
    m = make_mount()
    (m.mp / "dir").mkdir()
    (m.mp / "dir/a").write_bytes(b"a's bytes\n")
    os.chmod(m.mp / "dir/a", 0o604)
    (m.mp / "dir/c").write_bytes(b"c, twice linked\n")
    os.link(m.mp / "dir/c", m.mp / "c-link")
    (m.mp / "doc").write_bytes(b"first draft\n")
    (m.mp / "gone").write_bytes(b"removed after the snapshot\n")
    settle(m)
    omnifs("snapshot", config=m.config)
    os.rename(m.mp / "dir/a", m.mp / "dir/b")
    os.unlink(m.mp / "dir/c")  # its other name becomes the one its objects are under
    (m.mp / ".doc.swp").write_bytes(b"second draft\n")  # an editor's save: write, rename over
    os.chmod(m.mp / ".doc.swp", 0o640)
    os.rename(m.mp / ".doc.swp", m.mp / "doc")
    os.unlink(m.mp / "gone")
    settle(m)
    lose_catalog(m)
    out = omnifs("import", config=m.config, check=False)
    assert "2 renamed" in out.stdout, out.stdout + out.stderr
    # a file removed after the snapshot is kept (unreadable) and named, never dropped silently
    assert out.returncode == 1 and "gone" in out.stderr and "no copy" in out.stderr, out.stderr
    assert "doc" not in out.stderr, out.stderr
    m.mount()
    assert sorted(os.listdir(m.mp / "dir")) == ["b"]
    assert stat.S_IMODE(os.stat(m.mp / "dir/b").st_mode) == 0o604
    assert (m.mp / "dir/b").read_bytes() == b"a's bytes\n"
    assert (m.mp / "c-link").read_bytes() == b"c, twice linked\n"
    assert os.stat(m.mp / "c-link").st_nlink == 1
    assert (m.mp / "doc").read_bytes() == b"second draft\n"
    assert stat.S_IMODE(os.stat(m.mp / "doc").st_mode) == 0o640
    assert not (m.mp / ".doc.swp").exists()
    # no store holds it; this host's block cache may still (content-addressed, so checked)
    try:
        assert (m.mp / "gone").read_bytes() == b"removed after the snapshot\n"
    except OSError as e:
        assert e.errno == errno.EIO, e


def test_dump_and_load_round_trip(make_mount, tmp_path):
    m = make_mount()
    build_tree(m.mp)
    settle(m)
    before = state(m.mp)
    dump = tmp_path / "catalog.json"
    omnifs("dump", "-o", str(dump), config=m.config)
    refused = omnifs("load", str(dump), config=m.config, check=False)
    assert refused.returncode == 2 and "not empty" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    lose_catalog(m)
    out = omnifs("load", str(dump), config=m.config).stdout
    assert "counts verified" in out, out
    m.mount()
    assert state(m.mp) == before
