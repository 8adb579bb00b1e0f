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


def test_every_package_is_installed() -> None:
    """A package missing from pyproject's list is left out of a normal (non-editable) install."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: Path(folder) for name, folder in conf["package-dir"].items()}
    folders.setdefault("omnifs", Path("omnifs"))
    found = set()
    for top, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            name = ".".join((top, *rel))
            if not any(name.startswith(other + ".") or name == other
                       for other in folders if other != top and len(other) > len(top)):
                found.add(name)
    assert found - set(conf["packages"]) == set()
