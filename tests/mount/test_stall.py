"""A write that returned success is never lost; a stall is bounded.

Real servers, really stopped (SIGSTOP: they accept connections and answer
nothing), under a real mount with ``copies = 3`` over moto, the GCS emulator
and Azurite. The servers are this module's own, so stopping them never stalls
another test's.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests import servers as S
from tests.mount.conftest import omnifs

#: the stores' timeout here; a close against hung stores must fail within TIMEOUT + 2 s
TIMEOUT = 3.0
BOUND = TIMEOUT + 2.0
KINDS = ("s3", "gs", "az")


@pytest.fixture(scope="module")
def own_servers():
    started = {kind: S.start(kind) for kind in KINDS}
    yield started
    for server in started.values():
        _signal(server, signal.SIGCONT)
        server.stop()


def _signal(server: S.Server, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.proc.pid, sig)


@contextmanager
def stopped(*servers: S.Server):
    """The servers hang (SIGSTOP) inside the block, and always resume after it."""
    for s in servers:
        _signal(s, signal.SIGSTOP)
    try:
        yield
    finally:
        for s in servers:
            _signal(s, signal.SIGCONT)


@pytest.fixture
def three(own_servers, make_mount):
    """A mount with copies = 3 over the module's moto, GCS emulator and Azurite."""

    def make(**kw):
        settings = {}
        for kind, server in own_servers.items():
            bucket = S.unique_bucket()
            S.create_bucket(kind, server.endpoint, bucket)
            settings[kind] = dataclasses.replace(
                S.settings_for(kind, server.endpoint, bucket, name=kind), timeout=TIMEOUT)
        extra = {kind: {"timeout": TIMEOUT} for kind in settings}
        return make_mount(settings=settings, copies=3, extra=extra, **kw)

    return make


#: writes a file and reports close's errors (a shell's `>` ignores them); exit 0 = success
WRITE = """
import sys
with open(sys.argv[1], "wb") as f:
    f.write(sys.stdin.buffer.read())
"""


def write(path: Path, data: bytes) -> tuple[float, subprocess.CompletedProcess]:
    """``data`` into ``path`` through the mount in another process: (seconds, its outcome)."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", WRITE, str(path)], input=data, check=False,
                          capture_output=True, timeout=120)
    return time.monotonic() - t0, proc


def staged(m) -> int:
    """Files whose bytes are only staged (what `omnifs status` counts)."""
    cat = m.catalog()
    try:
        return cat.db.execute("SELECT count(*) FROM inodes WHERE staged = 1").fetchone()[0]
    finally:
        cat.close()


def wait_for(cond, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def test_all_stores_hung_close_fails_in_bounded_time_and_uploads_after(three, own_servers):
    m = three()
    services = Path("/etc/services").read_bytes()
    (m.mp / "before.txt").write_bytes(b"written while the stores answered")
    with stopped(*own_servers.values()):
        took, proc = write(m.mp / "a.txt", b"all down\n")
        assert proc.returncode != 0, "close reported success while no store holds the bytes"
        assert b"Input/output error" in proc.stderr
        assert took < BOUND, f"close took {took:.1f} s with every store hung"
        # the stores are now known down: the next close does not wait for them again
        took2, proc = write(m.mp / "b.txt", services)
        assert proc.returncode != 0 and took2 < BOUND, took2
        # the bytes are staged, readable, and counted by `omnifs status`
        assert (m.mp / "a.txt").read_bytes() == b"all down\n"
        assert staged(m) == 2
        out = omnifs("status", config=m.config, timeout=120).stdout
        assert "2 files staged, waiting for a store" in out, out
    # no remount: the running mount uploads them once the stores answer
    waited = wait_for(lambda: staged(m) == 0, 60)
    for name, data in (("a.txt", b"all down\n"), ("b.txt", services)):
        assert m.homes(name), f"{name}: no synced replica"
        assert m.home(name).read_bytes(name) == data
        assert (m.mp / name).read_bytes() == data
    assert (m.mp / "before.txt").read_bytes() == b"written while the stores answered"
    assert sorted(os.listdir(m.mp)) == ["a.txt", "b.txt", "before.txt"]
    print(f"close with all stores hung: {took:.1f} s, then {took2:.2f} s; "
          f"uploaded {waited:.1f} s after they answered")


def test_one_store_hung_small_writes_stay_fast(three, own_servers):
    m = three()

    def write_many(tag: str, n: int = 20) -> tuple[float, float]:
        slowest, t0 = 0.0, time.monotonic()
        for i in range(n):
            t1 = time.monotonic()
            (m.mp / f"{tag}{i}.txt").write_bytes(f"{tag} {i}\n".encode())
            slowest = max(slowest, time.monotonic() - t1)
        return time.monotonic() - t0, slowest

    healthy, _ = write_many("ok")
    with stopped(own_servers["s3"]):
        hung, slowest = write_many("hung")
    # the hung store costs a hedge delay or two (before it is known stalled), not a timeout
    assert slowest < 1.5, f"one close took {slowest:.2f} s with one store of three hung"
    assert hung < 2 * healthy + 2.0, (hung, healthy)
    for i in range(20):
        assert (m.mp / f"hung{i}.txt").read_bytes() == f"hung {i}\n".encode()
        assert m.homes(f"hung{i}.txt")
    assert staged(m) == 0


def test_writeback_close_is_staged_and_uploaded_once_a_store_answers(three, own_servers):
    m = three(mount_args=["--writeback"])
    with stopped(*own_servers.values()):
        took, proc = write(m.mp / "w.txt", b"write-back\n")
        assert proc.returncode == 0 and took < 1.0  # write-back: staged on local disk is success
        time.sleep(4)  # its background upload meets the hung stores and waits
        assert staged(m) == 1
    wait_for(lambda: staged(m) == 0, 60)
    assert m.home("w.txt").read_bytes("w.txt") == b"write-back\n"


def test_kill_9_while_staged_remount_uploads(three, own_servers):
    m = three()
    with stopped(*own_servers.values()):
        _, proc = write(m.mp / "k.txt", b"staged only\n")
        assert proc.returncode != 0
        os.kill(m.pid, signal.SIGKILL)
        time.sleep(0.5)
    m.mount()  # the stores answer again: recovery uploads the staged file
    wait_for(lambda: staged(m) == 0, 60)
    assert (m.mp / "k.txt").read_bytes() == b"staged only\n"
    assert m.home("k.txt").read_bytes("k.txt") == b"staged only\n"


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az"])
def test_close_against_a_silent_store_fails_within_timeout(kind, make_settings, make_mount):
    """One store behind a proxy that accepts connections and then says nothing."""
    settings = make_settings(kind, name="only")
    port = int((settings.endpoint or "").rsplit(":", 1)[1]) if settings.endpoint else None
    if port is None:  # az: the endpoint is in the connection string
        port = int(settings.connection_string.split("BlobEndpoint=http://127.0.0.1:")[1]
                   .split("/")[0])
    proxy = S.CuttableProxy(port)
    try:
        via = dataclasses.replace(settings, timeout=2.0, endpoint=proxy.endpoint)
        if kind == "az":
            via = dataclasses.replace(via, endpoint=None,
                                      connection_string=S.azure_connection_string(proxy.endpoint))
        m = make_mount(settings={"only": via}, copies=1, extra={"only": {"timeout": 2.0}})
        (m.mp / "warm.txt").write_bytes(b"ok")  # the store answers before it hangs
        proxy.freeze()
        took, proc = write(m.mp / "a.txt", b"hung\n")
        assert proc.returncode != 0, "close reported success while the only store hangs"
        assert took < 2.0 + 2.0, f"close took {took:.1f} s against a hung {kind} store"
    finally:
        proxy.thaw()
        proxy.close()


def test_a_late_upload_never_claims_synced_nor_lands_over_a_newer_version(make_settings,
                                                                          make_mount):
    """The primary store hangs mid-upload and answers only after the file moved on.

    Version 1's close is hedged to the second store; version 2 is written while
    version 1's upload to the primary still hangs (so it skips the primary); then
    the primary answers and version 1 lands there late. The catalog must then say
    stale for the primary (it holds version 1), never synced, and a copy of
    version 2 must follow.
    """
    slow = make_settings("s3", name="slow")
    proxy = S.CuttableProxy(int(slow.endpoint.rsplit(":", 1)[1]))
    try:
        m = make_mount(settings={"slow": dataclasses.replace(slow, endpoint=proxy.endpoint),
                                 "other": make_settings("gs", name="other")},
                       copies=2, extra={"slow": {"weight": 10, "timeout": 60.0}})
        (m.mp / "warm.txt").write_bytes(b"both answer")
        assert "slow" in m.homes("warm.txt")
        proxy.freeze()
        t0 = time.monotonic()
        (m.mp / "f.txt").write_bytes(b"version 1")
        (m.mp / "f.txt").write_bytes(b"version 2")
        assert time.monotonic() - t0 < 5  # hedged: neither close waited for the hung store
        assert m.homes("f.txt") == ["other"]
        proxy.thaw()
        cat = m.catalog()
        try:
            def slow_row():
                ino = cat.ns.resolve("f.txt").id
                return cat.replicas.get(ino, "slow"), cat.ns.get(ino).version

            wait_for(lambda: slow_row()[0] is None or slow_row()[0].state != "pending", 30)
            row, version = slow_row()
            assert row is not None and row.state == "stale" and row.version < version, row
        finally:
            cat.close()
        assert m.provider("slow").read_bytes("f.txt") == b"version 1"  # it did land, late
        assert (m.mp / "f.txt").read_bytes() == b"version 2"
        m.replicate()  # the queued copy brings the primary up to date
        assert sorted(m.homes("f.txt")) == ["other", "slow"]
        assert m.provider("slow").read_bytes("f.txt") == b"version 2"
    finally:
        proxy.close()


def test_a_file_created_read_only_is_published_by_its_close(mnt):
    """A reader's close publishes nothing, but creating counts as writing: the close of an
    O_RDONLY|O_CREAT open publishes the new file, so a truncate right after it is kept."""
    fd = os.open(mnt.mp / "ro", os.O_CREAT | os.O_RDONLY, 0o644)
    os.close(fd)
    os.truncate(mnt.mp / "ro", 123)
    assert os.stat(mnt.mp / "ro").st_size == 123
    assert (mnt.mp / "ro").read_bytes() == b"\0" * 123
