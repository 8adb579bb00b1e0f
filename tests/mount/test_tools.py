"""Ordinary tools inside a real mount over two local stores, checked in the stores after."""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
from pathlib import Path

import pytest

from omnifs.providers import META_MTIME, META_SHA256

from .conftest import ROOT, Mounted, omnifs

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
       "-c", "init.defaultBranch=main"]


def run(*argv, cwd=None, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)
    assert proc.returncode == 0, f"{argv} -> {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".git", ".venv")]
        for f in filenames:
            p = Path(dirpath) / f
            if p.is_symlink() or f.endswith(".pyc"):
                continue
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_in_stores(m: Mounted, rel: str, data: bytes, providers=None) -> None:
    for name in providers or m.names:
        p = m.provider(name)
        assert p.read_bytes(rel) == data, f"{name}:{rel}"
        meta = p.head(rel).metadata
        assert meta.get(META_SHA256) == sha(data)
        assert META_MTIME in meta


SRC = ROOT / "providers"


def test_cp_a_and_rsync_then_stores(mnt):
    run("cp", "-a", str(SRC), str(mnt.mp / "cpa"))
    run("rsync", "-a", f"{SRC}/", str(mnt.mp / "rs") + "/")
    want = tree_digest(SRC)
    assert tree_digest(mnt.mp / "cpa") == want
    assert tree_digest(mnt.mp / "rs") == want
    st_src = (SRC / "base.py").stat()
    assert (mnt.mp / "cpa" / "base.py").stat().st_mtime_ns == st_src.st_mtime_ns
    out = mnt.replicate()
    assert "failed 0" in out
    data = (SRC / "base.py").read_bytes()
    assert_in_stores(mnt, "rs/base.py", data)
    assert_in_stores(mnt, "cpa/base.py", data)


def test_tar_x_find_du_ls(mnt, tmp_path):
    tarball = tmp_path / "t.tar"
    run("tar", "-C", str(ROOT), "-cf", str(tarball), "providers", "omnifs")
    (mnt.mp / "x").mkdir()
    run("tar", "-C", str(mnt.mp / "x"), "-xf", str(tarball))
    assert tree_digest(mnt.mp / "x" / "providers") == tree_digest(SRC)
    found = run("find", str(mnt.mp / "x"), "-name", "*.py").stdout.split()
    assert len(found) >= 10
    assert run("du", "-s", str(mnt.mp / "x")).stdout.split()[0] != "0"
    listing = run("ls", "-lR", str(mnt.mp)).stdout
    assert "base.py" in listing


def test_git_init_commit_status_log_and_clone(mnt, tmp_path):
    repo = mnt.mp / "repo"
    run(*GIT, "init", "-q", str(repo))
    (repo / "a.txt").write_text("one\n")
    run(*GIT, "add", "a.txt", cwd=repo)
    run(*GIT, "commit", "-qm", "first", cwd=repo)
    (repo / "a.txt").write_text("two\n")
    run(*GIT, "commit", "-qam", "second", cwd=repo)
    assert run(*GIT, "status", "--porcelain", cwd=repo).stdout == ""
    assert len(run(*GIT, "log", "--oneline", cwd=repo).stdout.splitlines()) == 2
    # clone a local repo into the mount
    src = tmp_path / "src"
    run(*GIT, "init", "-q", str(src))
    for i in range(20):
        (src / f"f{i}.txt").write_text(f"file {i}\n" * 50)
    run(*GIT, "add", ".", cwd=src)
    run(*GIT, "commit", "-qm", "init", cwd=src)
    run(*GIT, "clone", "-q", str(src), str(mnt.mp / "clone"))
    assert run(*GIT, "status", "--porcelain", cwd=mnt.mp / "clone").stdout == ""
    run(*GIT, "fsck", "--no-progress", cwd=mnt.mp / "clone")
    assert (mnt.mp / "clone" / "f7.txt").read_text() == "file 7\n" * 50


def test_mv_files_and_directories_reach_the_stores(mnt):
    d = mnt.mp / "d" / "sub"
    d.mkdir(parents=True)
    (d / "f.txt").write_bytes(b"payload")
    (mnt.mp / "top.txt").write_bytes(b"top")
    mnt.replicate()
    run("mv", str(mnt.mp / "d"), str(mnt.mp / "d2"))
    run("mv", str(mnt.mp / "top.txt"), str(mnt.mp / "d2" / "top2.txt"))
    (mnt.mp / "top.txt").write_bytes(b"a new file at the old name")
    assert (mnt.mp / "d2" / "sub" / "f.txt").read_bytes() == b"payload"
    assert (mnt.mp / "d2" / "top2.txt").read_bytes() == b"top"
    mnt.replicate()
    assert_in_stores(mnt, "d2/sub/f.txt", b"payload")
    assert_in_stores(mnt, "d2/top2.txt", b"top")
    assert_in_stores(mnt, "top.txt", b"a new file at the old name")
    for name in mnt.names:
        assert not mnt.provider(name).exists("d/sub/f.txt")


def test_sqlite3_database(mnt):
    db = mnt.mp / "data.db"
    run("sqlite3", str(db), "create table t(a integer primary key, b blob);")
    for _ in range(5):
        run("sqlite3", str(db),
            "insert into t(b) select randomblob(3000) from (select 1 union all select 2 "
            "union all select 3); update t set b = randomblob(100) where a % 2 = 0;")
    out = run("sqlite3", str(db), "select count(*) from t; pragma integrity_check;").stdout
    assert out.split() == ["15", "ok"]
    mnt.replicate()
    assert_in_stores(mnt, "data.db", db.read_bytes())


def test_truncate_symlink_chmod_touch(mnt):
    f = mnt.mp / "f"
    f.write_bytes(b"0123456789")
    run("truncate", "-s", "4", str(f))
    assert f.read_bytes() == b"0123"
    run("truncate", "-s", "100000", str(f))
    assert f.stat().st_size == 100000 and f.read_bytes()[:4] == b"0123"
    run("ln", "-s", "f", str(mnt.mp / "link"))
    assert os.readlink(mnt.mp / "link") == "f"
    assert (mnt.mp / "link").read_bytes()[:4] == b"0123"
    run("chmod", "640", str(f))
    assert f.stat().st_mode & 0o777 == 0o640
    run("touch", "-d", "2001-02-03 04:05:06 UTC", str(f))
    assert int(f.stat().st_mtime) == 981173106
    assert_in_stores(mnt, "f", b"0123" + b"\0" * 99996, [mnt.names[0]])


def test_large_file_dd_cat_and_mmap(mnt, tmp_path):
    src = tmp_path / "big"
    data = os.urandom(1 << 20) * 24 + os.urandom(12345)
    src.write_bytes(data)
    run("dd", f"if={src}", f"of={mnt.mp / 'big'}", "bs=1M", "status=none")
    out = subprocess.run(["cat", str(mnt.mp / "big")], capture_output=True, check=True).stdout
    assert sha(out) == sha(data)
    with open(mnt.mp / "big", "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as mm:
        assert sha(mm[:]) == sha(data)
        assert mm[5_000_000:5_000_010] == data[5_000_000:5_000_010]
    assert_in_stores(mnt, "big", data, [mnt.names[0]])


def test_read_file_unlinked_while_open(mnt):
    f = mnt.mp / "gone.txt"
    f.write_bytes(b"still here" * 1000)
    mnt.replicate()
    with open(f, "rb") as fh:
        os.unlink(f)
        assert not f.exists()
        assert fh.read() == b"still here" * 1000
        assert os.fstat(fh.fileno()).st_size == 10000
    mnt.replicate()
    for name in mnt.names:
        assert not mnt.provider(name).exists("gone.txt")


def test_replicas_xattr_and_command(mnt):
    f = mnt.mp / "r.txt"
    f.write_bytes(b"replicated")
    text = os.getxattr(f, "user.omnifs.replicas").decode()
    assert f"{mnt.names[0]} synced v" in text
    mnt.replicate()
    text = os.getxattr(f, "user.omnifs.replicas").decode()
    for name in mnt.names:
        assert f"{name} synced" in text
    out = omnifs("replicas", str(f), config=mnt.config).stdout
    assert out == text
    out = omnifs("replicas", "/r.txt", config=mnt.config).stdout
    assert out == text
    with pytest.raises(OSError):
        os.setxattr(f, "user.omnifs.replicas", b"x")


def test_remount_keeps_everything(mnt):
    (mnt.mp / "keep").mkdir()
    (mnt.mp / "keep" / "k.txt").write_bytes(b"kept")
    os.symlink("k.txt", mnt.mp / "keep" / "l")
    mnt.umount()
    assert not os.path.ismount(mnt.mp)
    mnt.mount()
    assert (mnt.mp / "keep" / "k.txt").read_bytes() == b"kept"
    assert os.readlink(mnt.mp / "keep" / "l") == "k.txt"
