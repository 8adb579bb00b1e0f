"""Two mounts of one namespace (one catalog, the same stores) on one host: docs/multi-mount.md.

What one mount changes shows on the other within :data:`BOUND` seconds (the
change log, mountfs/coherence.py); an open after a close sees the closed
bytes at once (close-to-open); two closes of one file keep both versions;
inode numbers are the catalog's, the same on both mounts.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from omnifs.config import load_config
from tests import servers as S
from tests.mount.conftest import Mounted, write_config

#: seconds within which a change on one mount shows on the other (docs/multi-mount.md)
BOUND = 1.0
#: what the change log delivers well before the kernel's 1 s attribute timeout would
FEED_BOUND = 0.75


def within(check: Callable[[], bool], bound: float = BOUND) -> float:
    """Seconds until ``check()`` held; fails after ``bound``."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except OSError:
            pass
        elapsed = time.monotonic() - start
        if elapsed > bound:
            raise AssertionError(f"not visible on the other mount after {elapsed:.2f} s")
        time.sleep(0.01)


def content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def two_mounts(root: Path, catalog: Path | str) -> tuple[Mounted, Mounted]:
    """Two mounts on one catalog (a SQLite file or a PostgreSQL URL) and the same two ``file``
    stores, each with its own config, cache directory and mount point (as two hosts would
    have)."""
    from omnifs.providers import ProviderSettings

    settings = {}
    for i in range(2):
        (root / f"store-{i}").mkdir()
        settings[f"file{i}"] = ProviderSettings(name=f"file{i}", uri=f"file://{root}/store-{i}")
    made = []
    for side in ("a", "b"):
        (root / side / "mnt").mkdir(parents=True)
        cfg = write_config(root / side, settings, catalog=catalog, extra={"file0": {"weight": 2}})
        made.append(Mounted(root / side, root / side / "mnt", cfg, list(settings), settings))
    return made[0], made[1]


@pytest.fixture(scope="module", params=S.catalog_engines())
def mounts(tmp_path_factory, request):
    """One pair of mounts for the module on each catalog engine (mounting takes seconds);
    tests work in their own directory of it (``pair``)."""
    root = tmp_path_factory.mktemp("multi")
    catalog = S.fresh_catalog(request.param, request, root / "catalog.db", "multi")
    a, b = two_mounts(root, catalog)
    try:
        a.mount()
        b.mount()
        yield a, b
    finally:
        for m in (b, a):
            try:
                m.umount()
            except AssertionError:
                subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], check=False)
            m.close()


@pytest.fixture
def pair(mounts, request) -> tuple[Path, Path]:
    """A fresh directory of the namespace, as mount a and mount b show it."""
    a, b = mounts
    name = request.node.name.replace("[", "-").replace("]", "")
    (a.mp / name).mkdir()
    return a.mp / name, b.mp / name


def test_inode_numbers_are_the_same_on_both_mounts(pair):
    a, b = pair
    (a / "d").mkdir()
    (a / "d" / "f").write_bytes(b"x")
    os.link(a / "d" / "f", a / "g")
    (a / "s").symlink_to("d/f")
    for name in ("d", "d/f", "g", "s"):
        assert os.lstat(a / name).st_ino == os.lstat(b / name).st_ino, name
    assert os.stat(b / "g").st_ino == os.stat(b / "d" / "f").st_ino


def test_a_closed_file_shows_on_the_other_mount_within_the_bound(pair):
    a, b = pair
    (a / "f").write_bytes(b"first")
    assert within(lambda: content(b / "f") == b"first") <= BOUND
    with open(b / "f", "rb") as held:  # pages and attributes cached on b, handle open
        assert held.read() == b"first"
        assert os.stat(b / "f").st_size == 5
        (a / "f").write_bytes(b"second, longer")
        # no new open on b: the kernel's cached size and pages go through the change log
        took = within(lambda: os.stat(b / "f").st_size == 14, FEED_BOUND)
        within(lambda: os.pread(held.fileno(), 100, 0) == b"second, longer", FEED_BOUND)
    print(f"size visible on the other mount after {took:.3f} s")


def test_close_to_open(pair):
    """An open on b after a close on a sees a's bytes, though b's kernel cached the old ones."""
    a, b = pair
    for i in range(5):
        data = f"version {i} ".encode() * (i + 1)
        (a / "f").write_bytes(data)
        assert (b / "f").read_bytes() == data  # no waiting
        assert os.stat(b / "f").st_size == len(data)


def test_close_to_open_through_a_rename_over_the_name(pair):
    """The atomic-save pattern: write a temporary file, rename it over the name."""
    a, b = pair
    (a / "conf").write_bytes(b"old")
    assert within(lambda: content(b / "conf") == b"old")
    for i in range(3):
        (a / "conf.tmp").write_bytes(f"new {i}".encode())
        os.rename(a / "conf.tmp", a / "conf")
        assert (b / "conf").read_bytes() == f"new {i}".encode()  # ESTALE -> new lookup


def _change(a: Path) -> dict[str, tuple[Callable[[], None], Callable[[Path], bool]]]:
    """name -> (the change made on mount ``a``, what the other mount then shows)."""
    def xattr_set():
        os.setxattr(a / "f", b"user.color", b"blue")

    def xattr_removed():
        os.setxattr(a / "f", b"user.gone", b"1")
        os.removexattr(a / "f", b"user.gone")

    return {
        "create": (lambda: (a / "new").write_bytes(b"n"),
                   lambda m: content(m / "new") == b"n"),
        "rename": (lambda: os.rename(a / "f", a / "d" / "moved"),
                   lambda m: not (m / "f").exists() and content(m / "d" / "moved") == b"12345"),
        "unlink": (lambda: os.unlink(a / "f"), lambda m: not (m / "f").exists()),
        "truncate": (lambda: os.truncate(a / "f", 2),
                     lambda m: os.stat(m / "f").st_size == 2 and content(m / "f") == b"12"),
        "link": (lambda: os.link(a / "f", a / "d" / "hard"),
                 lambda m: os.stat(m / "f").st_nlink == 2
                 and content(m / "d" / "hard") == b"12345"),
        "mkdir": (lambda: (a / "d" / "sub").mkdir(), lambda m: (m / "d" / "sub").is_dir()),
        "rmdir": (lambda: (a / "e").rmdir(), lambda m: not (m / "e").exists()),
        "chmod": (lambda: os.chmod(a / "f", 0o600),
                  lambda m: os.stat(m / "f").st_mode & 0o777 == 0o600),
        "xattr": (xattr_set, lambda m: os.getxattr(m / "f", b"user.color") == b"blue"),
        "removexattr": (xattr_removed, lambda m: b"user.gone" not in os.listxattr(m / "f")),
    }


@pytest.mark.parametrize("what", ["create", "rename", "unlink", "truncate", "link", "mkdir",
                                  "rmdir", "chmod", "xattr", "removexattr"])
def test_a_change_shows_on_the_other_mount(pair, what):
    a, b = pair
    (a / "d").mkdir()
    (a / "e").mkdir()
    (a / "f").write_bytes(b"12345")
    assert within(lambda: content(b / "f") == b"12345")
    # b's kernel caches what it just looked at
    os.stat(b / "f"), os.stat(b / "e"), os.listdir(b / "d"), os.listxattr(b / "f")
    change, shows = _change(a)[what]
    change()
    took = within(lambda: shows(b), FEED_BOUND)
    print(f"{what}: visible on the other mount after {took:.3f} s")


def test_the_same_file_closed_on_both_mounts_keeps_both_versions(mounts, pair):
    """The later close wins; the earlier version stays in the history."""
    a, b = pair
    ma = mounts[0]
    rel = f"{a.name}/f"
    (a / "f").write_bytes(b"base")
    assert within(lambda: content(b / "f") == b"base")
    fa = os.open(a / "f", os.O_WRONLY | os.O_TRUNC)
    fb = os.open(b / "f", os.O_WRONLY | os.O_TRUNC)
    os.write(fa, b"from a")
    os.write(fb, b"from b, later")
    os.close(fa)
    os.close(fb)
    for m in (a, b):
        assert within(lambda m=m: content(m / "f") == b"from b, later")
    cat = ma.catalog()
    try:
        inode = cat.ns.resolve(rel)
        shas = [v[1] for v in cat.replicas.versions(inode.id)]
        assert inode.sha256 == hashlib.sha256(b"from b, later").hexdigest()
        assert hashlib.sha256(b"from a").hexdigest() in shas
        assert len({v[0] for v in cat.replicas.versions(inode.id)}) == len(shas) == 3
    finally:
        cat.close()
    for name in ma.homes(rel):  # the stores hold the winner under the file's key
        assert ma.provider(name).open_read(rel).read() == b"from b, later"


def test_concurrent_closes_of_one_file_from_both_mounts(mounts, pair):
    """Many closes racing: every one is its own version, the stores agree with the catalog."""
    a, b = pair
    ma = mounts[0]
    rel = f"{a.name}/f"
    (a / "f").write_bytes(b"0")
    script = ("import sys\nfor i in range(15):\n"
              "    open(sys.argv[1], 'wb').write(f'{sys.argv[2]} {i}'.encode() * 100)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(m / "f"), tag])
             for m, tag in ((a, "a"), (b, "b"))]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    cat = ma.catalog()
    try:
        inode = cat.ns.resolve(rel)
        assert len(cat.replicas.versions(inode.id)) == 31
        assert inode.version == 31
    finally:
        cat.close()
    final = (a / "f").read_bytes()
    assert hashlib.sha256(final).hexdigest() == inode.sha256
    assert within(lambda: content(b / "f") == final)
    for name in ma.homes(rel):
        assert ma.provider(name).open_read(rel).read() == final


def test_a_mount_starting_leaves_alone_what_a_live_mount_holds(mounts, pair):
    """A file unlinked on a while a holds it open stays readable there when a third mount of
    the catalog starts (its recovery would drop a lone mount's orphans)."""
    a, _ = pair
    ma = mounts[0]
    (a / "held").write_bytes(b"still mine")
    fd = os.open(a / "held", os.O_RDONLY)
    try:
        os.unlink(a / "held")
        third = Mounted(ma.root.parent / "c", ma.root.parent / "c" / "mnt", ma.config,
                        ma.names, ma.settings)
        third.mp.mkdir(parents=True)
        third.config = write_config(third.root, ma.settings,
                                    catalog=load_config(ma.config).catalog_target(),
                                    extra={"file0": {"weight": 2}})
        third.mount()
        try:
            assert (third.mp / a.name).is_dir()
        finally:
            third.umount()
            third.close()
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the read goes to the mount
        assert os.pread(fd, 100, 0) == b"still mine"
    finally:
        os.close(fd)


def test_flock_excludes_between_processes_on_one_mount(pair):
    """flock/fcntl locks are the kernel's: they exclude processes on one mount (one host);
    another mount does not see them (docs/multi-mount.md)."""
    mnt, other = pair
    (mnt / "lock").write_bytes(b"")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\nf = open(sys.argv[1])\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)\n",
         str(mnt / "lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with open(mnt / "lock") as f:
            with pytest.raises(OSError) as e:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert e.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
            with pytest.raises(OSError):
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        with open(other / "lock") as g:  # the other mount: the kernel's locks do not reach it
            fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.kill()
        holder.wait()
        with open(mnt / "lock") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the holder is gone
    finally:
        holder.kill()
        holder.wait()


def test_a_file_the_other_mount_changed_is_not_read_from_the_old_written_file(mounts, pair):
    """a's written file of the old version still waits for a's block cache
    (mountfs/written.py) when b changes the file: a reads b's bytes, never its own."""
    a, b = pair
    rng = random.Random(5)
    (a / "filler").write_bytes(rng.randbytes(160 * 1024 * 1024))  # a's queue is busy a while
    old, new = rng.randbytes(5 * 1024 * 1024), rng.randbytes(5 * 1024 * 1024)
    (a / "f").write_bytes(old)
    (b / "f").write_bytes(new)
    assert (a / "f").read_bytes() == new
    assert not mounts[0].cached(hashlib.sha256(old).hexdigest(), len(old)), "cached too soon"
