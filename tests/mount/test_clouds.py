"""The mount over two different real stores (moto S3 + Azurite), checked in both stores."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from omnifs.providers import META_MTIME, META_SHA256

from .conftest import ROOT, omnifs
from .test_tools import GIT, run, tree_digest

KINDS = ("s3", "az")


@pytest.fixture
def cloud(make_mount):
    return make_mount(KINDS)


def check_both(m, key: str, data: bytes) -> None:
    for name in m.names:
        p = m.provider(name)
        assert p.read_bytes(key) == data, f"{name}:{key}"
        meta = p.head(key).metadata
        assert meta[META_SHA256] == hashlib.sha256(data).hexdigest()
        assert META_MTIME in meta


def test_tools_over_s3_and_azure(cloud, tmp_path):
    m = cloud
    src = ROOT / "providers"
    run("cp", "-a", str(src), str(m.mp / "tree"))
    assert tree_digest(m.mp / "tree") == tree_digest(src)
    repo = m.mp / "repo"
    run(*GIT, "init", "-q", str(repo))
    (repo / "a.txt").write_text("x\n")
    run(*GIT, "add", ".", cwd=repo)
    run(*GIT, "commit", "-qm", "c", cwd=repo)
    assert run(*GIT, "status", "--porcelain", cwd=repo).stdout == ""
    big = os.urandom(40 << 20)  # above the multipart threshold
    (tmp_path / "big").write_bytes(big)
    run("cp", str(tmp_path / "big"), str(m.mp / "big.bin"))
    run("sqlite3", str(m.mp / "db"), "create table t(x); insert into t values (1),(2);")
    run("mv", str(m.mp / "tree"), str(m.mp / "moved"))
    out = m.replicate()
    assert "failed 0" in out, out
    check_both(m, "moved/base.py", (src / "base.py").read_bytes())
    check_both(m, "big.bin", big)
    check_both(m, "db", (m.mp / "db").read_bytes())
    check_both(m, "repo/a.txt", b"x\n")
    for name in m.names:
        assert not m.provider(name).exists("tree/base.py")
    text = os.getxattr(m.mp / "big.bin", "user.omnifs.replicas").decode()
    assert all(f"{n} synced" in text for n in m.names)
    out = subprocess.run(["cat", str(m.mp / "big.bin")], capture_output=True, check=True).stdout
    assert out == big


def test_import_existing_objects(make_mount):
    m = make_mount(KINDS, mount=False)
    s3, az = (m.provider(n) for n in m.names)
    body = b"written by another tool"
    s3.write_bytes("docs/readme.txt", body)  # no omnifs metadata at all
    meta = {META_SHA256: hashlib.sha256(b"both").hexdigest(), META_MTIME: "1000000000.5"}
    s3.write_bytes("both.txt", b"both", meta)
    az.write_bytes("both.txt", b"both", meta)
    az.write_bytes("only-az/deep/x.bin", b"az", {META_MTIME: "1234567890"})
    s3.write_bytes(".omnifs/internal", b"hidden")
    m.mount()  # first mount of an empty catalog imports
    assert (m.mp / "docs" / "readme.txt").read_bytes() == body
    assert (m.mp / "both.txt").read_bytes() == b"both"
    assert (m.mp / "both.txt").stat().st_mtime == 1000000000.5
    assert (m.mp / "only-az" / "deep" / "x.bin").read_bytes() == b"az"
    assert int((m.mp / "only-az" / "deep" / "x.bin").stat().st_mtime) == 1234567890
    assert not (m.mp / ".omnifs").exists()
    text = os.getxattr(m.mp / "both.txt", "user.omnifs.replicas").decode()
    assert all(f"{n} synced" in text for n in m.names)
    m.replicate()
    assert s3.read_bytes("only-az/deep/x.bin") == b"az"
    assert az.read_bytes("docs/readme.txt") == body
    # a new object appears behind the mount's back: `omnifs import` picks it up
    s3.write_bytes("later.txt", b"later")
    out = omnifs("import", config=m.config).stdout
    assert "imported 1 file," in out


def test_files_written_through_the_mount_carry_a_content_type(make_mount):
    """The upload at close and the daemon's copies set the type guessed from the name."""
    m = make_mount(("s3", "az", "gs"), copies=3)
    (m.mp / "site").mkdir()
    (m.mp / "site" / "index.html").write_bytes(b"<p>hi</p>")
    (m.mp / "site" / "main.css").write_bytes(b"p { }\n")
    (m.mp / "site" / "blob.no-such-extension").write_bytes(b"?")
    out = m.replicate()
    assert "failed 0" in out, out
    expected = {"site/index.html": "text/html", "site/main.css": "text/css",
                "site/blob.no-such-extension": "application/octet-stream"}
    for name in m.names:
        for key, ctype in expected.items():
            assert m.provider(name).head(key).content_type == ctype, (name, key)
