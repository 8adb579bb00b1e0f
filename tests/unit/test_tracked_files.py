"""What git tracks is the source, never a machine's state: no symlinks and no venvs.

A worktree's `.venv-lint` symlink was once committed; every fresh clone then
failed `make lint` before a single test ran.
"""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracked() -> list[tuple[str, str]]:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-s"],
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    rows = []
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        rows.append((meta.split()[0], path))
    return rows


def test_no_symlink_is_tracked() -> None:
    links = [path for mode, path in _tracked() if mode == "120000"]
    assert links == []


def test_no_local_state_is_tracked() -> None:
    local = (".venv", ".venv-lint", "node_modules", ".omnifs-data", "mnt")
    bad = [path for _, path in _tracked() if path.split("/", 1)[0] in local]
    assert bad == []
