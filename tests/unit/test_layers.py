"""The one-way dependencies of shared/DESIGN.md, read from the import statements.

policy and providers import no other part; the core (omnifs/ without its CLI)
imports neither the mount nor the daemon; the mount and the daemon never
import each other. Everything installs under the one ``omnifs`` namespace.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("mountfs", "daemon", "providers", "policy")

#: part -> the parts it must never import
FORBIDDEN = {
    "policy": {"mountfs", "daemon", "providers", "core", "cli"},
    "providers": {"mountfs", "daemon", "policy", "core", "cli"},
    "core": {"mountfs", "daemon", "cli"},
    "mountfs": {"daemon", "cli"},
    "daemon": {"mountfs", "cli"},
}


def part_of_module(name: str) -> str | None:
    """Which part an absolute module name belongs to (None: not ours)."""
    head, _, rest = name.partition(".")
    if head in PARTS:
        return "top-level " + head  # an import outside the namespace: always wrong
    if head != "omnifs":
        return None
    sub = rest.partition(".")[0]
    if sub in PARTS:
        return sub
    return "cli" if sub == "cli" else "core"


def source_files(part: str) -> list[Path]:
    if part == "core":
        return [p for p in (ROOT / "omnifs").rglob("*.py") if "cli" not in p.relative_to(
            ROOT / "omnifs").parts]
    return list((ROOT / part).rglob("*.py"))


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_each_part_imports_only_what_the_design_allows(part):
    wrong = []
    for path in source_files(part):
        for name in imported(path):
            other = part_of_module(name)
            if other is not None and (other in FORBIDDEN[part] or other.startswith("top-level")):
                wrong.append(f"{path.relative_to(ROOT)}: {name}")
    assert wrong == []


def test_the_replicas_command_does_not_load_the_fuse_library(tmp_path):
    """`omnifs replicas` reads the catalog; pyfuse3 (and the mount's handlers) stay unloaded."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "a.txt").write_text("hi\n")
    conf = tmp_path / "omnifs.toml"
    conf.write_text(f'[cache]\ndir = "{tmp_path / "cache"}"\n'
                    f'[providers.one]\nuri = "file://{store}"\n')
    omnifs = [sys.executable, "-m", "omnifs", "--config", str(conf)]
    subprocess.run([*omnifs, "import"], check=True, capture_output=True, timeout=60)
    code = ("import sys\n"
            "from omnifs.cli import main\n"
            "status = main(['--config', sys.argv[1], 'replicas', 'a.txt'])\n"
            "print(status, sorted(m for m in sys.modules\n"
            "                     if m in ('pyfuse3', 'omnifs.mountfs.operations')))\n")
    out = subprocess.run([sys.executable, "-c", code, str(conf)], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.splitlines() == ["one synced v1 current a.txt", "0 []"], out.stderr
