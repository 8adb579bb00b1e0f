"""``omnifs cp``, ``cp -r`` and ``sync`` take plain local paths, as cp, rclone and aws s3 cp do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omnifs.providers import open_provider
from tests.cli import write_config

ROOT = Path(__file__).resolve().parents[2]


def omnifs_in(cwd: Path, *args: str, config: Path) -> subprocess.CompletedProcess:
    """The CLI of this checkout, run from ``cwd`` so that relative paths are relative to it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMNIFS_CONFIG", None)
    return subprocess.run([sys.executable, "-P", "-m", "omnifs", "--config", str(config), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_local_paths_both_ways(make_settings, tmp_path):
    s3 = make_settings("s3", name="aws")
    cfg = write_config(tmp_path / "omnifs.toml", [s3])
    work = tmp_path / "work"
    (work / "tree" / "sub").mkdir(parents=True)
    (work / "one.txt").write_text("one")
    (work / "tree" / "a.txt").write_text("a")
    (work / "tree" / "sub" / "b.txt").write_text("b")
    bucket = s3.uri
    store = open_provider(s3)
    try:
        # up: a relative file, a relative tree, an absolute tree by sync
        proc = omnifs_in(work, "cp", "one.txt", f"{bucket}/up/", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert "1 object," in proc.stderr  # singular
        assert store.read_bytes("up/one.txt") == b"one"
        proc = omnifs_in(work, "cp", "-r", "./tree", f"{bucket}/tree", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert store.read_bytes("tree/sub/b.txt") == b"b"
        proc = omnifs_in(work, "sync", str(work / "tree"), "aws:/synced", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert sorted(i.key for i in store.list("synced/")) == ["synced/a.txt",
                                                                 "synced/sub/b.txt"]
        # down: into the current directory, into a new relative tree, sync to ~-less abs path
        proc = omnifs_in(work, "cp", f"{bucket}/up/one.txt", ".", config=cfg)
        assert proc.returncode == 0, proc.stderr
        proc = omnifs_in(work, "cp", f"{bucket}/up/one.txt", "renamed.txt", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert (work / "renamed.txt").read_text() == "one"
        proc = omnifs_in(work, "cp", "-r", f"{bucket}/tree", "back", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert (work / "back" / "sub" / "b.txt").read_text() == "b"
        (work / "back" / "extra.txt").write_text("gone after sync --delete")
        proc = omnifs_in(work, "sync", "--delete", "aws:/tree", "back/", config=cfg)
        assert proc.returncode == 0, proc.stderr
        assert not (work / "back" / "extra.txt").exists()
        # other commands still want a URI: a forgotten s3:// must not touch local files
        proc = omnifs_in(work, "rm", "-r", "back", config=cfg)
        assert proc.returncode == 2 and "is not a URI" in proc.stderr
        assert (work / "back" / "a.txt").exists()
    finally:
        store.close()
