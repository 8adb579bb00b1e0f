"""What a read answers when the stores cannot give a file's bytes: EIO, never ENOENT.

ENOENT means "no such file" and is the catalog's answer alone (the file is
not in the namespace). A file the catalog knows whose bytes no store can
give (the servers dead or hung, the objects or the bucket gone from every
store, no replica of the current version left) is an I/O error, answered
within the providers' timeouts and logged once, naming the file.

The files are put in the stores first and the mount imports them when it
starts (an empty catalog): reads then go to the stores, nothing is cached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import threading
import time

import pytest

from omnifs.layout import object_meta
from tests import servers as S

from .conftest import Mounted, write_config

#: the providers' timeout in these mounts (seconds)
TIMEOUT = 1.0
#: what the read path may add to the slowest store's own failure: the wait for a
#: read-ahead stream that does not start (ReadPath.stall_timeout), a hedge delay,
#: and slack for a loaded machine. Once per kernel retry of the page would be more.
READ_PATH_SLACK = 2.0 + 3.0


def _put(provider, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        provider.write_bytes(key, data, object_meta(hashlib.sha256(data).hexdigest(),
                                                    1_700_000_000 * 10**9))


@pytest.fixture
def proxied(servers, tmp_path):
    """Factory: ``proxied(files)`` -> (Mounted, {name: proxy}): ``files`` in S3 and Azurite,
    each store behind a CuttableProxy, imported by the mount."""
    made = []

    def make(files: dict[str, bytes]):
        proxies, settings = {}, {}
        for name, kind in (("s3a", "s3"), ("azb", "az")):
            bucket = S.unique_bucket()
            S.create_bucket(kind, servers[kind].endpoint, bucket)
            proxies[name] = S.CuttableProxy(servers[kind].port)
            settings[name] = dataclasses.replace(
                S.settings_for(kind, proxies[name].endpoint, bucket, name=name), timeout=TIMEOUT)
        cfg = write_config(tmp_path, settings, copies=2, quorum=1,
                           extra={name: {"timeout": TIMEOUT} for name in settings})
        mp = tmp_path / "mnt"
        mp.mkdir()
        m = Mounted(tmp_path, mp, cfg, list(settings), settings)
        made.append((m, proxies))
        for name in m.names:
            _put(m.provider(name), files)
        m.mount()
        for key in files:
            assert m.homes(key) == sorted(m.names)
        return m, proxies

    yield make
    for m, proxies in made:
        for proxy in proxies.values():
            proxy.thaw()
        try:
            m.umount()
        except AssertionError:
            import subprocess

            subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], check=False)
        m.close()
        for proxy in proxies.values():
            proxy.close()


def _read_errno(path) -> int | None:
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        return e.errno
    return None


def _append_errno(path) -> int | None:
    try:
        with open(path, "ab") as f:
            f.write(b"more")
    except OSError as e:
        return e.errno
    return None


def _log(m: Mounted) -> str:
    return (m.root / "cache" / "mount.log").read_text(errors="replace")


def _fails_as_fast_as_the_stores(m: Mounted, attempt) -> int | None:
    """``attempt()``'s errno, checked to come within what the stores' own failures take.

    Each store is asked for the file directly at the same time, through the same
    proxy: the mount may add its stall wait and a hedge, never a second round.
    """
    own: dict[str, float] = {}

    def ask(name: str) -> None:
        t0 = time.monotonic()
        with contextlib.suppress(Exception), m.provider(name).open_read("f.txt") as f:
            f.read()
        own[name] = time.monotonic() - t0

    asking = [threading.Thread(target=ask, args=(n,)) for n in m.names]
    for t in asking:
        t.start()
    t0 = time.monotonic()
    code = attempt()
    took = time.monotonic() - t0
    for t in asking:
        t.join()
    assert took < max(own.values()) + READ_PATH_SLACK, (took, own)
    return code


def test_every_store_dead_is_eio(proxied):
    m, proxies = proxied({"f.txt": b"x" * 100_000})
    for proxy in proxies.values():
        proxy.cut()
    assert _fails_as_fast_as_the_stores(m, lambda: _read_errno(m.mp / "f.txt")) == errno.EIO
    # appending needs the current bytes too: EIO as well, and nothing changes
    assert _fails_as_fast_as_the_stores(m, lambda: _append_errno(m.mp / "f.txt")) == errno.EIO
    assert (m.mp / "f.txt").stat().st_size == 100_000  # the file is still there


def test_every_store_hung_is_eio_within_the_timeout(proxied):
    """As soon as the stores' own requests have failed, not once per retry of the kernel."""
    data = os.urandom(3 << 20)
    m, proxies = proxied({"f.txt": data})
    for proxy in proxies.values():
        proxy.freeze()
    assert _fails_as_fast_as_the_stores(m, lambda: _read_errno(m.mp / "f.txt")) == errno.EIO
    # the stores answer again: so does the file (the failure is not remembered for long)
    for proxy in proxies.values():
        proxy.thaw()
    time.sleep(3.5)  # mountfs.blocks.FAILED_FOR
    assert (m.mp / "f.txt").read_bytes() == data


def test_object_gone_from_every_store_is_eio_and_one_log_line(proxied):
    m, _ = proxied({"dir/gone.txt": b"y" * 5000})
    for name in m.names:
        m.provider(name).delete("dir/gone.txt")  # behind omnifs's back
    for _ in range(3):
        assert _read_errno(m.mp / "dir" / "gone.txt") == errno.EIO
    assert _append_errno(m.mp / "dir" / "gone.txt") == errno.EIO
    assert (m.mp / "dir" / "gone.txt").exists()
    deadline = time.monotonic() + 5
    while "/dir/gone.txt" not in _log(m) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in _log(m).splitlines() if "/dir/gone.txt" in line]
    assert len(lines) == 1, lines
    assert "missing from every store" in lines[0], lines[0]
    assert "Traceback" not in _log(m)


def test_object_missing_on_one_store_and_the_other_dead_is_eio(proxied):
    m, proxies = proxied({"f.txt": b"z" * 5000})
    m.provider("s3a").delete("f.txt")
    proxies["azb"].cut()
    assert _read_errno(m.mp / "f.txt") == errno.EIO
    assert _append_errno(m.mp / "f.txt") == errno.EIO


def test_bucket_gone_is_eio(proxied, servers):
    m, _ = proxied({"f.txt": b"w" * 5000})
    import boto3
    from azure.storage.blob import BlobServiceClient

    m.provider("s3a").delete("f.txt")
    boto3.client("s3", endpoint_url=servers["s3"].endpoint, aws_access_key_id="t",
                 aws_secret_access_key="t", region_name="us-east-1").delete_bucket(
        Bucket=m.settings["s3a"].uri.split("/")[2])
    BlobServiceClient.from_connection_string(
        S.azure_connection_string(servers["az"].endpoint)).delete_container(
        m.settings["azb"].uri.split("/")[2])
    assert _read_errno(m.mp / "f.txt") == errno.EIO
    assert _append_errno(m.mp / "f.txt") == errno.EIO


def test_no_replica_left_is_eio(make_mount):
    """The catalog knows the file but no store holds its current version (all stale)."""
    m = make_mount(mount=False)
    for name in m.names:
        _put(m.provider(name), {"f.txt": b"v" * 5000})
    m.mount()
    cat = m.catalog()
    try:
        inode = cat.ns.resolve("f.txt")
        for r in cat.replicas.of(inode.id):
            cat.replicas.set_state(inode.id, r.provider, "stale")
    finally:
        cat.close()
    assert _read_errno(m.mp / "f.txt") == errno.EIO
    assert _append_errno(m.mp / "f.txt") == errno.EIO
    assert _read_errno(m.mp / "no-such-file") == errno.ENOENT
