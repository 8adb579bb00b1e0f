"""The unit files pass `systemd-analyze verify`, and mount.omnifs parses fstab options.

verify insists that ExecStart binaries exist, so the units are checked from a
temporary copy whose /usr/local/bin/omnifs is rewritten to this venv's omnifs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
OMNIFS = Path(sys.executable).with_name("omnifs")

needs_verify = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                  reason="systemd-analyze is not installed on this machine")


def _copy(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    text = (UNITS / name).read_text()
    target = str(OMNIFS) if OMNIFS.exists() else "/bin/true"
    out = tmp_path / (as_name or name)
    out.write_text(text.replace("/usr/local/bin/omnifs", target))
    return out


def _verify(tmp_path: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", unit], check=False, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


@needs_verify
def test_daemon_unit_verifies(tmp_path):
    _copy(tmp_path, "omnifs-daemon.service")
    r = _verify(tmp_path, "./omnifs-daemon.service")
    ours = [line for line in r.stderr.splitlines() if "omnifs" in line]
    assert r.returncode == 0 and not ours, r.stderr


@needs_verify
def test_mount_template_verifies_for_an_instance(tmp_path):
    _copy(tmp_path, "omnifs-mount@.service")
    r = _verify(tmp_path, "./omnifs-mount@mnt-data.service")
    ours = [line for line in r.stderr.splitlines() if "omnifs" in line]
    assert r.returncode == 0 and not ours, r.stderr


@needs_verify
def test_verify_catches_a_broken_unit(tmp_path):
    """The check above is meaningful: a typo and a missing binary are reported."""
    bad = _copy(tmp_path, "omnifs-daemon.service", "broken.service")
    bad.write_text(bad.read_text().replace("Type=notify", "Typ=notify")
                   .replace(str(OMNIFS), "/nonexistent/omnifs"))
    r = _verify(tmp_path, "./broken.service")
    assert r.returncode != 0 or "Unknown key" in r.stderr


def test_daemon_unit_essentials():
    text = (UNITS / "omnifs-daemon.service").read_text()
    for line in ("Type=notify", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert line in text
    assert any(line.startswith("WatchdogSec=") for line in text.splitlines())


def test_mount_unit_keeps_the_mount_visible():
    """No option that gives the service a private mount namespace may be on."""
    lines = {line.split("=", 1)[0] for line in (UNITS / "omnifs-mount@.service").read_text()
             .splitlines() if "=" in line and not line.startswith("#")}
    for option in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                   "PrivateMounts", "ReadWritePaths", "ProtectKernelModules", "MountFlags"):
        assert option not in lines
    assert "DeviceAllow" in lines


@pytest.fixture
def fake_omnifs(tmp_path):
    script = tmp_path / "omnifs"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT"\n')
    script.chmod(0o755)
    return script


def _helper(fake, tmp_path, *args):
    out = tmp_path / "args"
    env = dict(os.environ, OMNIFS=str(fake), OUT=str(out))
    r = subprocess.run(["sh", str(UNITS / "mount.omnifs"), *args], check=False, capture_output=True,
                       text=True, env=env, timeout=30)
    return r, (out.read_text().splitlines() if out.exists() else None)


def test_mount_helper_runs_omnifs_mount(fake_omnifs, tmp_path):
    r, argv = _helper(fake_omnifs, tmp_path, "/etc/omnifs/omnifs.toml", "/mnt/data",
                      "-o", "rw,_netdev,nofail,x-systemd.automount,log=/var/log/omnifs.log")
    assert r.returncode == 0, r.stderr
    assert argv == ["mount", "/mnt/data", "--config", "/etc/omnifs/omnifs.toml",
                    "--log", "/var/log/omnifs.log"]
    assert r.stderr == ""


def test_mount_helper_config_option_and_unknowns(fake_omnifs, tmp_path):
    r, argv = _helper(fake_omnifs, tmp_path, "omnifs", "/mnt/x", "-oconfig=/srv/o.toml,bogus",
                      "-v")
    assert r.returncode == 0
    assert argv == ["mount", "/mnt/x", "--config", "/srv/o.toml"]
    assert "ignoring unknown option: bogus" in r.stderr


def test_mount_helper_fake_and_usage(fake_omnifs, tmp_path):
    r, argv = _helper(fake_omnifs, tmp_path, "/c.toml", "/mnt/x", "-f")
    assert r.returncode == 0 and argv is None
    r, _ = _helper(fake_omnifs, tmp_path, "/c.toml")
    assert r.returncode == 1 and "usage:" in r.stderr
