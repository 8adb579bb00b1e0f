"""Mount lifecycle through the CLI: signals unmount cleanly, busy umount says so in one line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from .conftest import ROOT, omnifs


def wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_unmounts_cleanly_and_keeps_data(mnt):
    (mnt.mp / "f").write_bytes(b"data")
    fd = os.open(mnt.mp / "open-dirty", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"written, not closed")
    os.kill(mnt.pid, signal.SIGTERM)
    assert wait_gone(mnt.pid), "mount process did not exit on SIGTERM"
    assert not os.path.ismount(mnt.mp)
    os.stat(mnt.mp)  # no stale "transport endpoint is not connected"
    with contextlib.suppress(OSError):
        os.close(fd)
    first = mnt.provider(mnt.names[0])
    assert first.read_bytes("f") == b"data"
    assert first.read_bytes("open-dirty") == b"written, not closed"
    mnt.mount()
    assert (mnt.mp / "open-dirty").read_bytes() == b"written, not closed"


def test_sigint_unmounts_foreground_mount(make_mount):
    m = make_mount(mount=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnifs", "--config", str(m.config), "mount", str(m.mp),
         "--foreground"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=str(ROOT))
    deadline = time.monotonic() + 30
    while not os.path.ismount(m.mp) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.ismount(m.mp)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert not os.path.ismount(m.mp)


def test_umount_busy_says_so_in_one_line(mnt):
    busy = subprocess.Popen(["sleep", "60"], cwd=mnt.mp)
    try:
        proc = omnifs("umount", str(mnt.mp), config=mnt.config, check=False)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "busy" in lines[0], proc.stderr
        assert os.path.ismount(mnt.mp)
    finally:
        busy.kill()
        busy.wait()
    omnifs("umount", str(mnt.mp), config=mnt.config)
    assert not os.path.ismount(mnt.mp)


def test_mount_errors_are_one_line(mnt, tmp_path):
    proc = omnifs("mount", str(tmp_path / "missing"), config=mnt.config, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "not a directory" in proc.stderr
    proc = omnifs("mount", str(mnt.mp), config=mnt.config, check=False)
    assert proc.returncode == 2 and "already a mount point" in proc.stderr
    proc = omnifs("umount", str(tmp_path), config=mnt.config, check=False)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1


def test_read_ahead_raised_for_1mib_reads(mnt):
    from omnifs.mountfs.mount import READ_AHEAD_KB, mount_device

    dev = mount_device(str(mnt.mp))
    assert dev is not None
    with open(f"/sys/class/bdi/{dev}/read_ahead_kb") as f:
        assert int(f.read()) == READ_AHEAD_KB


def test_umount_returns_once_the_mount_process_has_finished(mnt):
    """Written files are still being cached when the kernel lets go: umount waits for that."""
    from omnifs.processes import alive, mount_processes

    for i in range(4):
        (mnt.mp / f"w{i}").write_bytes(os.urandom(8 * 1024 * 1024))
    assert mount_processes(str(mnt.mp)) == [mnt.pid]
    omnifs("umount", str(mnt.mp), config=mnt.config)
    assert not alive(mnt.pid), "umount returned while the mount process still ran"
    assert mount_processes(str(mnt.mp)) == []
