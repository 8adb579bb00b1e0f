"""Starting and stopping a mount as a user and as systemd do.

From any directory (a clone in ~/omnifs holds a folder named ``omnifs``),
with a useful source name in the mount table, READY=1 to systemd only once
the mount answers, and ``umount`` saying "not mounted" when it is not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mount.conftest import omnifs

ROOT = Path(__file__).resolve().parents[2]


def test_mount_from_a_directory_holding_an_omnifs_folder(make_mount, tmp_path):
    m = make_mount(mount=False)
    here = tmp_path / "clone"
    (here / "omnifs").mkdir(parents=True)
    (here / "omnifs" / "__init__.py").write_text("")  # not the real omnifs: no __version__
    # as the console script does: this checkout's omnifs, the current directory elsewhere
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from omnifs.cli import main; sys.exit(main())")
    argv = [sys.executable, "-c", code, "--config", str(m.config), "mount", str(m.mp)]
    proc = subprocess.run(argv, cwd=here, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert os.path.ismount(m.mp)
    (m.mp / "f").write_text("works")
    pid = int(proc.stdout.split("(pid ")[1].split(")")[0])
    m.pid = pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:4] == [b"-P", b"-m", b"omnifs"], cmdline
    environ = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes()
                   .split(b"\0") if b"=" in v)
    # the child runs this checkout's code, not another installed omnifs
    assert environ[b"PYTHONPATH"].split(b":")[0] == str(ROOT).encode()


def test_mount_table_names_the_config(mnt):
    from omnifs.mounts import mount_at

    entry = mount_at(str(mnt.mp.resolve()))
    assert entry is not None and entry.fstype == "fuse.omnifs"
    assert entry.source == str(mnt.config.resolve())
    listing = subprocess.run(["mount"], capture_output=True, text=True, check=True).stdout
    assert f"{mnt.config.resolve()} on {mnt.mp.resolve()} type fuse.omnifs" in listing


def _notify_socket(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(60)
    return sock


def test_foreground_mount_tells_systemd_once_it_answers(make_mount, tmp_path):
    m = make_mount(mount=False)
    sock = _notify_socket(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "omnifs", "--config", str(m.config), "mount",
                             str(m.mp), "--foreground"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        message = sock.recv(4096).decode()
        assert message.startswith("READY=1"), message
        # at READY=1 the mount point is the mount, and it answers
        assert os.path.ismount(m.mp)
        (m.mp / "hello").write_text("ready")
        assert os.listdir(m.mp) == ["hello"]
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert not os.path.ismount(m.mp)


def test_umount_of_what_is_not_mounted_says_so(tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    for target in (d, tmp_path / "absent"):
        proc = omnifs("umount", str(target), check=False)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines() == [f"omnifs: error: {target} is not mounted"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_umount_refuses_a_mount_that_is_not_omnifs(tmp_path):
    d = tmp_path / "tmpfs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(d)], check=True)
    try:
        proc = omnifs("umount", str(d), check=False)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "not an omnifs mount" in lines[0], proc.stderr
        assert os.path.ismount(d)
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_missing_mount_point_fails_in_one_line(make_mount):
    m = make_mount(mount=False)
    start = time.monotonic()
    proc = omnifs("mount", str(m.root / "nowhere"), "--foreground", config=m.config, check=False)
    assert proc.returncode == 2 and time.monotonic() - start < 30
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a directory" in lines[0], proc.stderr


def test_mount_point_holding_a_store_is_refused(make_mount):
    m = make_mount(mount=False)
    proc = omnifs("mount", str(m.root), config=m.config, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "inside the mount point" in lines[0], proc.stderr
    assert not os.path.ismount(m.root)
