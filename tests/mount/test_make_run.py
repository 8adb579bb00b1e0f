"""``make run`` in a fresh clone: it mounts, its daemon runs, and what it writes is private."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAMP = ".venv/.installed"

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not (ROOT / STAMP).exists(),
    reason="needs make and an installed .venv (make install)")


def make(clone: Path, target: str) -> subprocess.CompletedProcess:
    """``make TARGET`` in ``clone``, never reinstalling (-o): the .venv is shared."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the venv's omnifs is this checkout's
    env.pop("OMNIFS_CONFIG", None)
    return subprocess.run(["make", "-o", STAMP, target], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def test_make_run_writes_nothing_others_can_read(tmp_path):
    clone = tmp_path / "omnifs"
    clone.mkdir()
    shutil.copy(ROOT / "Makefile", clone / "Makefile")
    (clone / ".venv").symlink_to(ROOT / ".venv")
    # left by an older omnifs under umask 022
    (clone / ".omnifs-data").mkdir()
    (clone / ".omnifs-data" / "daemon.log").write_text("old log\n")
    os.chmod(clone / ".omnifs-data", 0o755)
    os.chmod(clone / ".omnifs-data" / "daemon.log", 0o644)
    try:
        proc = make(clone, "run")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert os.path.ismount(clone / "mnt")
        (clone / "mnt" / "s").write_text("TOPSECRET")
        data = clone / ".omnifs-data"
        for path in [data, *data.rglob("*")]:
            try:
                mode = stat.S_IMODE(path.lstat().st_mode)
            except FileNotFoundError:
                continue  # gone meanwhile: a written file cached (mountfs/written.py)
            assert not mode & 0o077, f"{path} is {mode:o}"
        assert "old log" not in (data / "daemon.log").read_text()
    finally:
        proc = make(clone, "stop")
        if os.path.ismount(clone / "mnt"):
            subprocess.run(["fusermount3", "-u", "-z", str(clone / "mnt")], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (clone / ".omnifs-data" / "daemon.pid").exists()
