"""A mount on a PostgreSQL catalog: the POSIX basics through the kernel, a remount, and an
outage of the catalog's server (EIO on metadata, nothing corrupted, back by itself).

The whole mount suite runs on both engines (tests/conftest.py EVERY_ENGINE); these tests
are PostgreSQL's own: a cluster of their own, which the outage test stops.
"""

from __future__ import annotations

import errno
import os
import time

import pytest

from tests.servers import PostgresCluster, postgres_missing

pytestmark = pytest.mark.one_engine  # each test brings a database of its own cluster


@pytest.fixture(scope="module")
def own_cluster():
    """A cluster of this module's own: the outage test stops it."""
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster()
    yield cluster
    cluster.destroy()


def test_posix_basics_and_remount_on_postgresql(make_mount, own_cluster):
    m = make_mount(catalog=own_cluster.database("posix"))
    d = m.mp / "dir"
    d.mkdir()
    (d / "a.txt").write_bytes(b"hello world")
    os.rename(d / "a.txt", d / "b.txt")
    os.link(d / "b.txt", m.mp / "hard")
    os.truncate(d / "b.txt", 5)
    os.setxattr(d / "b.txt", "user.k", b"v")
    os.symlink("dir/b.txt", m.mp / "ln")
    for i in range(100):
        (d / f"f{i:03d}").write_bytes(b"x" * i)
    os.unlink(d / "f000")
    assert (m.mp / "hard").read_bytes() == b"hello"
    assert os.stat(m.mp / "hard").st_nlink == 2
    m.umount()
    m.mount()
    assert sorted(os.listdir(d)) == sorted(["b.txt"] + [f"f{i:03d}" for i in range(1, 100)])
    assert (m.mp / "ln").read_bytes() == b"hello"
    assert os.getxattr(d / "b.txt", "user.k") == b"v"
    assert os.stat(d / "f099").st_size == 99
    st = os.stat(d / "b.txt")
    assert st.st_ino == os.stat(m.mp / "hard").st_ino and st.st_nlink == 2


def test_catalog_outage_answers_eio_then_resumes_by_itself(make_mount, own_cluster):
    m = make_mount(catalog=own_cluster.database("outage"))
    (m.mp / "before").write_bytes(b"kept")
    own_cluster.stop()
    try:
        with pytest.raises(OSError) as failed:
            (m.mp / "during").write_bytes(b"x")
        assert failed.value.errno == errno.EIO
        with pytest.raises(OSError) as failed:
            os.mkdir(m.mp / "newdir")
        assert failed.value.errno == errno.EIO
        assert m.pid is not None and os.path.exists(f"/proc/{m.pid}")  # still serving
    finally:
        own_cluster.start()
    # back by itself: no remount
    deadline = time.monotonic() + 30
    while not _writes(m.mp / "after"):
        assert time.monotonic() < deadline, "the mount did not resume after the outage"
        time.sleep(0.2)
    assert (m.mp / "before").read_bytes() == b"kept"
    assert sorted(os.listdir(m.mp)) == ["after", "before"]
    cat = m.catalog()
    try:
        assert cat.ns.resolve("before").size == 4 and cat.ns.resolve("after").size == 5
    finally:
        cat.close()


def _writes(path) -> bool:
    try:
        path.write_bytes(b"after")
    except OSError:
        return False
    return True
