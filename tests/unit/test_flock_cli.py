"""``omnifs flock NAME -- CMD``: a lock every process (and host) on one catalog sees, with
expiry when its holder dies (omnifs/cli/flock.py). Real processes, one catalog file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnifs.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path) -> Path:
    (tmp_path / "store").mkdir()
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n'
                   f'[cache]\ndir = "{tmp_path}/cache"\n'
                   f'[providers.local]\nuri = "file://{tmp_path}/store"\n')
    cfg.chmod(0o600)
    Catalog(tmp_path / "catalog.db").close()
    return cfg


def flock(config: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "omnifs", "--config", str(config), "flock",
                             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def holding(config: Path, *extra: str) -> subprocess.Popen:
    """A holder of /job whose command says 'in' and then sleeps."""
    proc = flock(config, *extra, "/job", "--", sys.executable, "-c",
                 "import time; print('in', flush=True); time.sleep(60)")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "in"
    return proc


def test_a_held_lock_excludes_and_the_commands_status_comes_back(config):
    holder = holding(config)
    try:
        other = flock(config, "-n", "/job", "--", "true")
        out, err = other.communicate(timeout=60)
        assert other.returncode == 1 and "lock /job is taken (held by " in err
        assert flock(config, "-n", "/other", "--", "sh", "-c", "exit 7").wait(60) == 7
    finally:
        holder.terminate()
        holder.wait(60)
    done = flock(config, "-n", "/job", "--", "sh", "-c", "exit 3")
    assert done.wait(60) == 3  # released once the holder ended


def test_the_lock_of_a_dead_holder_runs_out_after_its_ttl(config):
    holder = holding(config, "--ttl", "2")
    os.kill(holder.pid, signal.SIGKILL)  # no release: like a host that died
    holder.wait(60)
    start = time.monotonic()
    waiter = flock(config, "--wait", "30", "/job", "--", "true")
    assert waiter.wait(60) == 0
    assert time.monotonic() - start < 10


def test_bad_input_is_one_line(config):
    proc = flock(config, "/job")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().count("\n") == 0 and "COMMAND" in err
