"""POSIX edge cases through a real mount: rename, unlink, open flags, permissions, limits."""

from __future__ import annotations

import ctypes
import errno
import os
import pwd
import stat
import subprocess
import sys

import pytest

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
#: a python other users can execute (the venv may sit under /root)
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def renameat2(src, dst, flags: int) -> None:
    if libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def test_rename_over_existing_file(mnt):
    a, b = mnt.mp / "a", mnt.mp / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    ino = a.stat().st_ino
    os.rename(a, b)
    assert not a.exists()
    assert b.read_bytes() == b"A" and b.stat().st_ino == ino
    mnt.replicate()
    for name in mnt.names:
        assert mnt.provider(name).read_bytes("b") == b"A"
        assert not mnt.provider(name).exists("a")


def test_rename_directories(mnt):
    (mnt.mp / "d1" / "x").mkdir(parents=True)
    (mnt.mp / "d1" / "x" / "f").write_bytes(b"f")
    (mnt.mp / "empty").mkdir()
    (mnt.mp / "full").mkdir()
    (mnt.mp / "full" / "g").write_bytes(b"g")
    os.rename(mnt.mp / "d1", mnt.mp / "empty")  # over an empty dir: allowed
    assert (mnt.mp / "empty" / "x" / "f").read_bytes() == b"f"
    assert errno_of(os.rename, mnt.mp / "full", mnt.mp / "empty") == errno.ENOTEMPTY
    assert errno_of(os.rename, mnt.mp / "empty", mnt.mp / "empty" / "x" / "inside") == errno.EINVAL
    assert errno_of(os.rename, mnt.mp / "empty", mnt.mp / "full" / "g") == errno.ENOTDIR
    assert errno_of(os.rename, mnt.mp / "full" / "g", mnt.mp / "empty") == errno.EISDIR
    assert os.stat(mnt.mp).st_nlink == 4  # ., .., empty, full


def test_renameat2_noreplace_and_exchange(mnt):
    a, b = mnt.mp / "a", mnt.mp / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    assert errno_of(renameat2, a, b, RENAME_NOREPLACE) == errno.EEXIST
    renameat2(a, mnt.mp / "c", RENAME_NOREPLACE)
    renameat2(mnt.mp / "c", b, RENAME_EXCHANGE)
    assert (mnt.mp / "c").read_bytes() == b"B" and b.read_bytes() == b"A"
    assert errno_of(renameat2, mnt.mp / "c", mnt.mp / "nope", RENAME_EXCHANGE) == errno.ENOENT
    mnt.replicate()
    assert mnt.provider(mnt.names[0]).read_bytes("c") == b"B"
    assert mnt.provider(mnt.names[1]).read_bytes("b") == b"A"


def test_rmdir_and_unlink_errors(mnt):
    (mnt.mp / "d").mkdir()
    (mnt.mp / "d" / "f").write_bytes(b"x")
    assert errno_of(os.rmdir, mnt.mp / "d") == errno.ENOTEMPTY
    assert errno_of(os.rmdir, mnt.mp / "d" / "f") == errno.ENOTDIR
    assert errno_of(os.unlink, mnt.mp / "d") in (errno.EISDIR, errno.EPERM)
    assert errno_of(os.unlink, mnt.mp / "missing") == errno.ENOENT
    os.unlink(mnt.mp / "d" / "f")
    os.rmdir(mnt.mp / "d")
    assert not (mnt.mp / "d").exists()
    assert errno_of(os.mkdir, mnt.mp / "missing" / "x") == errno.ENOENT


def test_open_flags(mnt):
    p = mnt.mp / "f"
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"hello")
    os.close(fd)
    assert errno_of(os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b" world")
    os.close(fd)
    assert p.read_bytes() == b"hello world"
    fd = os.open(p, os.O_RDWR | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"new")
    os.lseek(fd, 0, os.SEEK_SET)
    assert os.read(fd, 10) == b"new"
    os.close(fd)
    assert p.read_bytes() == b"new"
    # random writes past the end leave a hole of zeros
    fd = os.open(p, os.O_RDWR)
    os.pwrite(fd, b"Z", 10)
    os.pwrite(fd, b"a", 1)
    os.fsync(fd)
    os.close(fd)
    assert p.read_bytes() == b"naw" + b"\0" * 7 + b"Z"


def test_unlink_open_file_then_reuse_name(mnt):
    p = mnt.mp / "f"
    p.write_bytes(b"old" * 10000)
    mnt.replicate()
    fh = open(p, "rb")  # noqa: SIM115 - closed after the unlink, on purpose
    try:
        os.unlink(p)
        p.write_bytes(b"new content")
        assert fh.read() == b"old" * 10000
    finally:
        fh.close()
    assert p.read_bytes() == b"new content"
    mnt.replicate()
    for name in mnt.names:
        assert mnt.provider(name).read_bytes("f") == b"new content"


def test_write_through_unlinked_handle(mnt):
    p = mnt.mp / "tmpfile"
    with open(p, "w+b") as fh:
        os.unlink(p)
        fh.write(b"scratch")
        fh.flush()
        fh.seek(0)
        assert fh.read() == b"scratch"
    assert not p.exists()


def test_name_too_long_and_reserved(mnt):
    assert errno_of(open, mnt.mp / ("x" * 256), "w") == errno.ENAMETOOLONG
    (mnt.mp / ("y" * 255)).write_bytes(b"ok")
    assert errno_of(os.mkdir, mnt.mp / ".omnifs") == errno.EPERM


def test_hard_links_share_data_and_count(mnt):
    a, b, d = mnt.mp / "a", mnt.mp / "b", mnt.mp / "d"
    d.mkdir()
    a.write_bytes(b"one")
    before = a.stat()
    dir_before = os.stat(mnt.mp)
    os.link(a, b)
    os.link(a, d / "c")
    st = a.stat()
    assert st.st_nlink == 3 and b.stat().st_ino == st.st_ino == (d / "c").stat().st_ino
    assert st.st_ctime_ns > before.st_ctime_ns
    assert os.stat(mnt.mp).st_mtime_ns > dir_before.st_mtime_ns
    assert sorted(os.listdir(mnt.mp)) == ["a", "b", "d"]
    with open(b, "r+b") as f:  # written through one name, read through another
        f.write(b"TWO")
    assert a.read_bytes() == b"TWO" == (d / "c").read_bytes()
    assert errno_of(os.link, a, d / "c") == errno.EEXIST
    assert errno_of(os.link, d, mnt.mp / "d2") == errno.EPERM
    assert errno_of(os.link, mnt.mp / "nope", mnt.mp / "x") == errno.ENOENT
    assert errno_of(os.rmdir, d) == errno.ENOTEMPTY  # a link is an entry
    os.unlink(a)  # the primary name goes: the bytes stay, the key follows
    assert b.read_bytes() == b"TWO" and b.stat().st_nlink == 2
    mnt.replicate()
    for name in mnt.names:
        p = mnt.provider(name)
        assert not p.exists("a")
        assert p.read_bytes("b") == b"TWO"
    os.unlink(d / "c")
    os.unlink(b)
    mnt.replicate()
    for name in mnt.names:
        assert not mnt.provider(name).exists("b")


def test_hard_link_rename_semantics(mnt):
    a, b, c = mnt.mp / "a", mnt.mp / "b", mnt.mp / "c"
    a.write_bytes(b"A")
    os.link(a, b)
    os.rename(a, b)  # two names of one file: nothing happens
    assert a.exists() and b.exists() and a.stat().st_nlink == 2
    c.write_bytes(b"C")
    os.rename(c, b)  # over a hard link: only that name goes
    assert b.read_bytes() == b"C" and a.read_bytes() == b"A" and a.stat().st_nlink == 1
    os.link(a, c)
    ctime = a.stat().st_ctime_ns
    os.rename(c, mnt.mp / "c2")  # renaming an extra name
    assert (mnt.mp / "c2").read_bytes() == b"A" and a.stat().st_ctime_ns >= ctime
    os.rename(a, mnt.mp / "a2")  # renaming the primary name moves the objects
    renameat2(mnt.mp / "c2", b, RENAME_EXCHANGE)
    assert b.read_bytes() == b"A" and (mnt.mp / "c2").read_bytes() == b"C"
    mnt.replicate()
    for name in mnt.names:
        p = mnt.provider(name)
        assert p.read_bytes("a2") == b"A" and p.read_bytes("c2") == b"C"
        assert not p.exists("a")
    with open(mnt.mp / "a2", "rb") as held:
        os.unlink(mnt.mp / "a2")
        os.unlink(b)  # last name gone while open: still readable
        assert held.read() == b"A"


def test_hard_links_survive_remount(mnt):
    (mnt.mp / "a").write_bytes(b"x")
    os.link(mnt.mp / "a", mnt.mp / "b")
    mnt.umount()
    mnt.mount()
    assert (mnt.mp / "b").stat().st_nlink == 2 and (mnt.mp / "b").read_bytes() == b"x"


def test_user_xattrs(mnt):
    p = mnt.mp / "x"
    p.write_bytes(b"x")
    os.setxattr(p, "user.color", b"blue")
    assert os.getxattr(p, "user.color") == b"blue"
    assert "user.color" in os.listxattr(p)
    assert "user.omnifs.replicas" in os.listxattr(p)
    os.removexattr(p, "user.color")
    assert errno_of(os.getxattr, p, "user.color") == errno.ENODATA


def test_mode_times_and_statfs(mnt):
    p = mnt.mp / "f"
    p.write_bytes(b"x")
    os.chmod(p, 0o4711)
    assert stat.S_IMODE(p.stat().st_mode) == 0o4711
    os.utime(p, ns=(1_000_000_123, 2_000_000_456))
    st = p.stat()
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_123, 2_000_000_456)
    os.mkfifo(mnt.mp / "fifo")
    assert stat.S_ISFIFO((mnt.mp / "fifo").stat().st_mode)
    v = os.statvfs(mnt.mp)
    assert v.f_namemax == 255 and v.f_bsize > 0


def _as_nobody(code: str, cwd) -> subprocess.CompletedProcess:
    nobody = pwd.getpwnam("nobody")

    def demote():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return subprocess.run([SYSTEM_PYTHON, "-c", code], check=False, cwd=cwd, preexec_fn=demote,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_permissions_enforced_for_other_users(make_mount):
    m = make_mount(allow_other=True)
    secret = m.mp / "secret"
    secret.write_bytes(b"s")
    os.chmod(secret, 0o600)
    public = m.mp / "public"
    public.write_bytes(b"p")
    os.chmod(public, 0o644)
    os.chmod(m.mp, 0o755)
    code = (
        "import errno, os, sys\n"
        "def code(f):\n"
        "    try:\n        f()\n    except OSError as e:\n        return e.errno\n    return 0\n"
        f"print(code(lambda: open({str(secret)!r}).read()))\n"
        f"print(code(lambda: open({str(public)!r}).read()))\n"
        f"print(code(lambda: open({str(public)!r}, 'w')))\n"
        f"print(code(lambda: os.mkdir({str(m.mp / 'newdir')!r})))\n"
        f"print(code(lambda: os.chmod({str(public)!r}, 0o777)))\n"
    )
    proc = _as_nobody(code, "/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(errno.EACCES), "0", str(errno.EACCES),
                                   str(errno.EACCES), str(errno.EPERM)]
    # a directory the user owns: it can create files there, owned by it
    d = m.mp / "home"
    d.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    proc = _as_nobody(f"open({str(d / 'mine')!r}, 'w').write('m')", "/")
    assert proc.returncode == 0, proc.stderr
    assert (d / "mine").stat().st_uid == nobody.pw_uid


def test_large_directory_listing_offsets(mnt):
    d = mnt.mp / "big"
    d.mkdir()
    names = {f"f{i:04d}" for i in range(1200)}
    for n in names:
        (d / n).touch()
    seen = []
    with os.scandir(d) as it:
        for i, entry in enumerate(it):
            seen.append(entry.name)
            if i == 100:  # removing and adding entries mid-listing: no repeats
                for gone in sorted(names)[600:700]:
                    os.unlink(d / gone)
                (d / "new-one").touch()
    assert len(seen) == len(set(seen))
    assert set(sorted(names)[:600]) <= set(seen)
    assert sorted(os.listdir(d)) == sorted((names - set(sorted(names)[600:700])) | {"new-one"})


def test_ctime_moves_with_every_status_change(mnt):
    """pjdfstest checks ctime after chmod, chown, link, unlink, rename, truncate, utimes."""
    f, g = mnt.mp / "f", mnt.mp / "g"
    f.write_bytes(b"x")
    steps = [lambda: os.chmod(f, 0o600), lambda: os.chown(f, 1, 1),
             lambda: os.link(f, mnt.mp / "f2"), lambda: os.unlink(mnt.mp / "f2"),
             lambda: os.rename(f, g), lambda: os.truncate(g, 10), lambda: os.utime(g, (1, 2))]
    for step in steps:
        before = (g if g.exists() else f).stat().st_ctime_ns
        step()
        assert (g if g.exists() else f).stat().st_ctime_ns > before, step
    assert g.read_bytes() == b"x" + b"\0" * 9
    os.close(os.open(g, os.O_RDONLY | os.O_TRUNC))  # Linux truncates this too
    assert g.stat().st_size == 0


def test_links_of_special_files(mnt):
    os.mknod(mnt.mp / "chr", stat.S_IFCHR | 0o644, os.makedev(1, 7))
    os.mkfifo(mnt.mp / "fifo")
    os.symlink("nowhere", mnt.mp / "sl")
    for name in ("chr", "fifo", "sl"):
        os.link(mnt.mp / name, mnt.mp / f"{name}.l", follow_symlinks=False)
        assert os.lstat(mnt.mp / name).st_nlink == 2
    assert os.lstat(mnt.mp / "chr.l").st_rdev == os.makedev(1, 7)
    assert os.readlink(mnt.mp / "sl.l") == "nowhere"
    assert errno_of(os.mkdir, mnt.mp / "sl") == errno.EEXIST
    assert errno_of(os.open, mnt.mp / "sl", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_sticky_dirs_and_links_for_other_users(make_mount):
    m = make_mount(allow_other=True)
    os.chmod(m.mp, 0o777)
    sticky = m.mp / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    (sticky / "roots").write_bytes(b"r")
    shared = m.mp / "shared"
    shared.write_bytes(b"s")
    os.chmod(shared, 0o666)
    code = (
        "import os\n"
        "def code(f):\n"
        "    try:\n        f()\n    except OSError as e:\n        return e.errno\n    return 0\n"
        f"print(code(lambda: os.unlink({str(sticky / 'roots')!r})))\n"
        f"print(code(lambda: os.rename({str(sticky / 'roots')!r}, {str(sticky / 'x')!r})))\n"
        f"open({str(sticky / 'mine')!r}, 'w').write('m')\n"
        f"print(code(lambda: os.link({str(sticky / 'mine')!r}, {str(sticky / 'mine2')!r})))\n"
        f"print(code(lambda: os.unlink({str(sticky / 'mine')!r})))\n"
        f"print(code(lambda: os.link({str(shared)!r}, {str(m.mp / 'shared2')!r})))\n"
    )
    proc = _as_nobody(code, "/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(errno.EPERM), str(errno.EPERM), "0", "0", "0"]
    assert (sticky / "mine2").read_text() == "m" and (sticky / "mine2").stat().st_nlink == 1
    assert (m.mp / "shared2").stat().st_nlink == 2
