"""Disaster recovery through a real mount: point-in-time restores and a ransomware rewrite.

Three backups are taken of a tree built through the mount (modes, owners,
symlinks, hard links, xattrs, a FIFO), with files created, overwritten and
deleted between them; restoring each point into a fresh directory gives the
tree exactly as ``find -printf`` and the xattrs saw it then. Every file then
rewritten through the mount (ransomware) comes back by an in-place restore,
as new versions.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from omnifs.cli import main

from .conftest import Mounted
from .test_rebuild import build_tree, xattrs

#: what must come back: type, mode, owner, size (not of directories: each file system
#: counts those its own way), mtime, symlink target, link count; and the xattrs
FIND = "%p %y %m %U %G %s %T@ %l %n\n"


def state(root: Path) -> tuple[list[str], dict]:
    out = subprocess.run(["find", ".", "-printf", FIND], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    lines = [re.sub(r"^(\S+ d \S+ \S+ \S+) \d+", r"\1 -", line) for line in out.splitlines()]
    return sorted(lines), xattrs(root)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def omnifs(*args: str, config: Path | None = None, check: bool = True) -> Ran:
    """``omnifs ARGS`` run in this process (the dr commands need no mount of their own):
    a second each saved on starting Python."""
    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main([*(["--config", str(config)] if config else []), *args])
    finally:
        os.umask(umask)  # main makes it 077 for the command
    if check and rc != 0:
        raise AssertionError(f"omnifs {' '.join(args)} failed ({rc}): "
                             f"{out.getvalue()}{err.getvalue()}")
    return Ran(rc, out.getvalue(), err.getvalue())


def add_dr(m: Mounted, target: Path, extra: str = "") -> None:
    target.mkdir(exist_ok=True)
    with open(m.config, "a") as f:
        f.write(f'\n[[dr.backups]]\nname = "vault"\nuri = "file://{target}"\nkeep_last = 10\n'
                f"{extra}")


def backup(m: Mounted) -> str:
    out = omnifs("dr", "backup", "--now", config=m.config).stdout
    found = re.search(r"backup (\d{8}T\d{6}\.\d{6}Z) to vault", out)
    assert found, out
    return found.group(1)


@pytest.mark.parametrize("kinds", [pytest.param(("file", "file"), id="file"),
                                   pytest.param(("s3", "az"), id="s3-az")])
def test_point_in_time_restores_across_three_backups(make_mount, tmp_path, kinds):
    m = make_mount(kinds)
    add_dr(m, tmp_path / "vault")
    build_tree(m.mp)
    points = [(backup(m), state(m.mp))]

    (m.mp / "secret").write_bytes(b"second version of the secret\n")
    (m.mp / "d/sub/file").write_bytes(b"new linked content\n")
    (m.mp / "new").write_bytes(os.urandom(5000))
    os.chmod(m.mp / "new", 0o604)
    (m.mp / "tool").unlink()
    os.setxattr(m.mp / "secret", "user.note", b"changed")
    points.append((backup(m), state(m.mp)))

    (m.mp / "new").write_bytes(b"third")
    (m.mp / "hard1").unlink()
    os.unlink(m.mp / "link")
    os.symlink("new", m.mp / "link")
    (m.mp / "d/sub/deeper/x").write_bytes(b"x" * 70000)
    points.append((backup(m), state(m.mp)))

    out = omnifs("dr", "list", config=m.config).stdout
    assert all(bid in out for bid, _ in points), out
    for i, (bid, want) in enumerate(points):
        dest = tmp_path / f"at{i}"
        out = omnifs("dr", "restore", "--at", bid, "--to", str(dest), config=m.config).stdout
        assert "verified" in out, out
        assert state(dest) == want, f"point {i}"
    # one file as it was at the first point
    one = tmp_path / "one"
    omnifs("dr", "restore", "--at", points[0][0], "--path", "/secret", "--to", str(one),
           config=m.config)
    assert (one / "secret").read_bytes() == b"TOPSECRET\n"
    assert sorted(os.listdir(one)) == ["secret"]


def test_ransomware_rewrite_is_undone_in_place(make_mount, tmp_path):
    m = make_mount()
    add_dr(m, tmp_path / "vault")
    for i in range(12):
        (m.mp / f"docs/{i % 3}").mkdir(parents=True, exist_ok=True)
        (m.mp / f"docs/{i % 3}/f{i}.txt").write_bytes(f"precious {i}\n".encode() * (i + 1))
    before = state(m.mp)
    backup(m)
    for dirpath, _, names in os.walk(m.mp / "docs"):
        for name in names:
            p = Path(dirpath, name)
            p.write_bytes(b"ENCRYPTED" + os.urandom(64))
    (m.mp / "docs/README-TO-DECRYPT.txt").write_bytes(b"pay up\n")
    (m.mp / "docs/1/more").mkdir()
    (m.mp / "docs/1/more/note").write_bytes(b"pay up\n")
    assert state(m.mp) != before
    cat = m.catalog()
    versions = cat.ns.resolve("docs/0/f0.txt").version
    cat.close()
    out = omnifs("dr", "restore", "--at", "latest", "--path", "/docs", "--in-place", "--delete",
                 config=m.config).stdout
    assert "restored 12 files" in out and "2 entries not in the backup removed" in out, out
    assert state(m.mp) == before
    cat = m.catalog()
    assert cat.ns.resolve("docs/0/f0.txt").version > versions  # a new version: undoable
    cat.close()
