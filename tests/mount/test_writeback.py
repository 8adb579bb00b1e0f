"""`omnifs mount --writeback`: close returns before the upload, nothing is lost to kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from .conftest import ROOT
from .test_tools import SRC, run, tree_digest


def wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_writeback_tools_and_background_upload(make_mount, tmp_path):
    m = make_mount(mount_args=["--writeback"])
    run("cp", "-a", str(SRC), str(m.mp / "tree"))
    tarball = tmp_path / "t.tar"
    run("tar", "-C", str(ROOT), "-cf", str(tarball), "omnifs")
    run("tar", "-C", str(m.mp), "-xf", str(tarball))
    assert tree_digest(m.mp / "tree") == tree_digest(SRC)
    data = (SRC / "base.py").read_bytes()
    assert (m.mp / "tree" / "base.py").stat().st_size == len(data)
    first = m.provider(m.names[0])
    assert wait_for(lambda: first.exists("tree/base.py") and first.exists("omnifs/cli/__init__.py"))
    assert first.read_bytes("tree/base.py") == data
    # fsync still waits for the upload
    fd = os.open(m.mp / "synced", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    assert first.read_bytes("synced") == b"durable"
    os.close(fd)
    m.replicate()
    assert m.provider(m.names[1]).read_bytes("tree/base.py") == data


def test_writeback_kill_9_after_close_loses_nothing(make_mount):
    m = make_mount(mount_args=["--writeback"])
    files = {f"f{i:03d}": os.urandom(2000 + i) for i in range(150)}
    for name, body in files.items():
        (m.mp / name).write_bytes(body)  # acknowledged by close
    os.kill(m.pid, signal.SIGKILL)
    time.sleep(0.2)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], check=False)
    m.mount()  # remount uploads what the background had not
    first = m.provider(m.names[0])
    for name, body in files.items():
        assert (m.mp / name).read_bytes() == body
        assert first.read_bytes(name) == body


def test_writeback_uploads_temp_files_once_at_their_final_name(make_mount):
    m = make_mount(mount_args=["--writeback"])
    (m.mp / ".tmp-upload").write_bytes(b"final bytes")
    os.rename(m.mp / ".tmp-upload", m.mp / "final")
    (m.mp / "scratch").write_bytes(b"gone soon")
    os.unlink(m.mp / "scratch")
    assert (m.mp / "final").read_bytes() == b"final bytes"
    first = m.provider(m.names[0])
    assert wait_for(lambda: first.exists("final"))
    assert first.read_bytes("final") == b"final bytes"
    assert not first.exists(".tmp-upload") and not first.exists("scratch")


def test_writeback_from_config_waits_for_quiet(make_mount):
    """`[mount] writeback = true` without the flag; uploads wait for a quiet moment."""
    m = make_mount(mount=False)
    text = m.config.read_text().replace("[mount]\n", "[mount]\nwriteback = true\n")
    m.config.write_text(text)
    m.mount()
    first = m.provider(m.names[0])
    deadline = time.monotonic() + 3.5
    i = 0
    while time.monotonic() < deadline:  # a steady stream of writes: no upload yet
        (m.mp / f"busy{i}").write_bytes(b"b")
        i += 1
        time.sleep(0.05)
    assert not first.exists("busy0")  # closed > 2 s ago, but the mount was never quiet
    assert wait_for(lambda: first.exists(f"busy{i - 1}"))
    assert first.read_bytes("busy0") == b"b"
