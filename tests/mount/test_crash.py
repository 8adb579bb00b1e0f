"""kill -9 of the mount process: what close/fsync acknowledged survives, remount resumes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time

from omnifs.providers import META_SHA256

WRITER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
block = b"u" * (1 << 20)
print("started", flush=True)
try:
    for i in range(10_000):
        os.write(fd, block)
        time.sleep(0.005)
except OSError:
    pass
"""


def test_kill_9_mid_write_keeps_fsynced_file_and_resumes(mnt):
    data = os.urandom(3 << 20)
    synced = mnt.mp / "synced.bin"
    fd = os.open(synced, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    os.fsync(fd)  # acknowledged: must survive; the fd stays open across the crash
    closed = mnt.mp / "closed.txt"
    closed.write_bytes(b"closed before the crash")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(mnt.mp / "partial.bin")],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "started"
    time.sleep(0.3)
    os.kill(mnt.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    with contextlib.suppress(OSError):
        os.close(fd)
    # the acknowledged bytes are already in the first store
    first = mnt.provider(mnt.names[0])
    assert first.read_bytes("synced.bin") == data
    assert first.head("synced.bin").metadata[META_SHA256] == hashlib.sha256(data).hexdigest()
    mnt.mount()  # clears the dead mount, uploads the unfinished staging file
    assert synced.read_bytes() == data
    assert closed.read_bytes() == b"closed before the crash"
    partial = (mnt.mp / "partial.bin").read_bytes()
    assert len(partial) >= 1 << 20 and set(partial) == {ord("u")}
    assert first.read_bytes("partial.bin") == partial
    cat = mnt.catalog()
    try:
        assert cat.db.execute("SELECT count(*) FROM inodes WHERE staged = 1").fetchone()[0] == 0
    finally:
        cat.close()
    staging = mnt.root / "cache" / "staging"
    assert os.listdir(staging) == []
    mnt.replicate()
    assert mnt.provider(mnt.names[1]).read_bytes("synced.bin") == data
