"""Local data is private: the umask the CLI sets, and the start-time tightening of old trees."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

from omnifs.config import default_config_text, load_config
from omnifs.private import tighten, tighten_owned
from tests.cli import OMNIFS

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def wide_tree(root: Path) -> Path:
    """A data directory as an older omnifs under umask 022 left it."""
    for d in ("cache/blocks/ab", "cache/staging", "store-a/dir", "store-b"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in ("cache/blocks/ab/1.val", "cache/mount.log", "store-a/dir/secret", "store-b/x",
              "catalog.db", "catalog.db-wal"):
        (root / f).write_text("TOPSECRET")
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    outside = root.parent / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (root / "store-a" / "link").symlink_to(outside)
    return root


def test_tighten_takes_group_and_other_bits_away(tmp_path):
    root = wide_tree(tmp_path / "data")
    (root / "store-a" / "own").write_text("x")
    (root / "store-a" / "own").chmod(0o400)  # narrower than 0600 stays as it is
    res = tighten([root / "cache", root / "store-a", root / "store-b"], [root / "catalog.db"])
    for p in (root / "cache", root / "cache/blocks/ab", root / "store-a/dir", root / "store-b"):
        assert mode(p) == 0o700, p
    for p in (root / "cache/blocks/ab/1.val", root / "cache/mount.log",
              root / "store-a/dir/secret", root / "catalog.db"):
        assert mode(p) == 0o600, p
    assert mode(root / "store-a" / "own") == 0o400
    assert os.path.islink(root / "store-a" / "link")
    assert mode(root.parent / "outside.txt") == 0o644  # a symlink's target is not ours
    assert mode(root / "catalog.db-wal") == 0o644  # only what it was given
    assert res.changed == 12 and res.failed == 0  # 7 directories, 5 files
    assert tighten([root / "cache"]).changed == 0  # a second start has nothing to do


def test_tighten_leaves_the_mount_point_alone(tmp_path):
    root = wide_tree(tmp_path / "data")
    mp = root / "cache" / "mnt"
    mp.mkdir()
    mp.chmod(0o755)
    (mp / "inside").write_text("x")
    (mp / "inside").chmod(0o644)
    tighten([root / "cache"], skip=[str(mp)])
    assert mode(mp) == 0o755 and mode(mp / "inside") == 0o644
    assert mode(root / "cache") == 0o700


def test_tighten_owned_warns_in_one_line(tmp_path, caplog):
    data = wide_tree(tmp_path / "data")
    (tmp_path / "omnifs.toml").write_text(default_config_text(data))
    (tmp_path / "omnifs.toml").chmod(0o600)
    cfg = load_config(tmp_path / "omnifs.toml")
    with caplog.at_level(logging.WARNING, logger="omnifs"):
        res = tighten_owned(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert f"made {res.changed} entries private" in warnings[0]
    assert mode(data / "catalog.db") == 0o600 and mode(data / "catalog.db-wal") == 0o600
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="omnifs"):
        assert tighten_owned(cfg).changed == 0
    assert not caplog.records  # nothing to say when nothing was wide


def test_init_under_a_wide_umask_makes_private_directories(tmp_path):
    """`omnifs init` (as `make run` runs it) under umask 022: the data directory is 0700."""
    proc = subprocess.run([*OMNIFS, "init", "--config", str(tmp_path / "omnifs.toml"),
                           "--data-dir", str(tmp_path / "data")], capture_output=True, cwd=ROOT,
                          preexec_fn=lambda: os.umask(0o022), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for d in ("data", "data/store-a", "data/store-b", "data/cache"):
        assert mode(tmp_path / d) == 0o700, d
    assert mode(tmp_path / "omnifs.toml") == 0o600


def test_every_command_runs_with_umask_077(tmp_path):
    """Files the CLI creates (here a download with cp to a local path) are 0600."""
    src = tmp_path / "src.txt"
    src.write_text("hello")
    proc = subprocess.run([*OMNIFS, "cp", f"file://{src}", f"file://{tmp_path}/out.txt"],
                          capture_output=True, cwd=ROOT, preexec_fn=lambda: os.umask(0o022),
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert mode(tmp_path / "out.txt") == 0o600


def test_local_store_objects_are_private_whatever_the_umask(tmp_path):
    from omnifs.providers import ProviderSettings, open_provider

    old = os.umask(0)
    try:
        p = open_provider(ProviderSettings(name="l", uri=f"file://{tmp_path}"))
        p.write_bytes("d/e/f.txt", b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "d/e/f.txt") == 0o600
    assert mode(tmp_path / "d/e") == 0o700
