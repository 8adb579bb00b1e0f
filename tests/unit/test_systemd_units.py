"""The unit files pass `systemd-analyze verify` and `security`, agree with docs/systemd.md,
and mount.omnifs parses fstab options.

verify insists that ExecStart binaries exist, so the units are checked from a
temporary copy whose /usr/local/bin/omnifs is rewritten to this venv's omnifs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
DOC = ROOT / "docs" / "systemd.md"
#: `systemd-analyze security` exposure the mount unit may not exceed
MOUNT_EXPOSURE_MAX = 6.0
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
    return subprocess.run(["systemd-analyze", "verify", unit], check=False, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


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


def settings(name: str) -> dict[str, list[str]]:
    """key -> every value the unit gives it (comments skipped)."""
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_mount_unit_is_notify_and_fails_loudly():
    mount = settings("omnifs-mount@.service")
    assert mount["Type"] == ["notify"] and mount["NotifyAccess"] == ["main"]
    # a missing mount point is the mount's own one-line error and exit 2: the unit
    # fails (a Condition would skip it silently) and is not restarted in a loop
    assert not any(k.startswith("Condition") for k in mount)
    assert mount["RestartPreventExitStatus"] == ["2"]


def test_units_make_private_files():
    for name in ("omnifs-mount@.service", "omnifs-daemon.service"):
        unit = settings(name)
        assert unit["UMask"] == ["0077"], name
        assert unit["StateDirectoryMode"] == unit["CacheDirectoryMode"] == ["0700"], name


def test_ordering_agrees_with_the_docs():
    """The daemon starts first; the mount after it (and stops before it)."""
    mount, daemon = settings("omnifs-mount@.service"), settings("omnifs-daemon.service")
    assert "omnifs-daemon.service" in " ".join(mount["After"])
    assert "omnifs-daemon.service" in " ".join(mount["Wants"])
    assert "Before" not in mount and "Before" not in daemon
    assert "omnifs-mount" not in " ".join(daemon.get("After", []) + daemon.get("Wants", []))
    doc = DOC.read_text()
    assert "`After=omnifs-daemon.service`" in doc and "mount unit starts after the daemon" in doc


def test_documentation_points_at_installed_files(tmp_path):
    """Every Documentation= file is put there by the install commands of docs/systemd.md."""
    installs = [line.strip().removeprefix("sudo ") for line in DOC.read_text().splitlines()
                if line.strip().startswith("sudo install") and "/usr/share/doc/omnifs" in line]
    assert installs, "docs/systemd.md installs no documentation"
    for line in installs:  # run them into a scratch root
        argv = [a.replace("/usr/share/doc/", f"{tmp_path}/usr/share/doc/") for a in line.split()]
        subprocess.run(argv, cwd=ROOT, check=True, timeout=30)
    for name in ("omnifs-mount@.service", "omnifs-daemon.service"):
        urls = " ".join(settings(name)["Documentation"]).split()
        assert urls, name
        for url in urls:
            assert url.startswith(("file:///", "man:", "https://")), url
            if url.startswith("file:///"):
                assert (tmp_path / url.removeprefix("file:///")).is_file(), url


def _exposure(tmp_path: Path, unit: str) -> float:
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    if m is None:
        pytest.skip(f"systemd-analyze cannot score units offline here: {r.stderr.strip()}")
    return float(m.group(1))


@needs_verify
def test_mount_unit_exposure_is_at_most_6(tmp_path):
    _copy(tmp_path, "omnifs-mount@.service", "omnifs-mount@mnt-data.service")
    score = _exposure(tmp_path, "./omnifs-mount@mnt-data.service")
    assert score <= MOUNT_EXPOSURE_MAX, f"systemd-analyze security: {score}"


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
