"""Opening a file to append or change it starts from the cache and the fastest replica.

A write to an existing file needs its current bytes in a staging file first
(mountfs/staging_fill.py). The stores sit behind proxies that count the GET
requests sent through them, so a test sees exactly which store was read.
"""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from omnifs.layout import object_meta
from tests import servers as S
from tests import slow_reads

from .conftest import Mounted, write_config
from .test_written_cache import _wait_cached

MiB = 1024 * 1024


class _CountedSocket:
    """A client's side of a proxied connection: counts the GET requests it sends."""

    def __init__(self, sock: socket.socket, proxy: CountingProxy):
        self._sock = sock
        self._proxy = proxy

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        # clients send a request's head in one piece, and a GET has no body after it
        if data.startswith(b"GET "):
            with self._proxy._lock:
                self._proxy.gets += 1
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class CountingProxy(S.CuttableProxy):
    """A CuttableProxy that counts the GET requests (object reads) passing through it."""

    def __init__(self, target_port: int):
        self.gets = 0
        super().__init__(target_port)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            from_client = src.getpeername()[1] != self.target_port
        except OSError:
            from_client = False
        super()._pipe(_CountedSocket(src, self) if from_client else src, dst)  # type: ignore[arg-type]


@pytest.fixture
def counted(servers, tmp_path):
    """Factory: ``counted(files, slow=None)`` -> (Mounted, {name: CountingProxy}).

    ``files`` go into both stores (S3 and Azurite, each behind a CountingProxy)
    before the mount imports them; ``slow`` names a store whose reads the mount
    delays by a second (tests/slow_reads.py).
    """
    made = []
    slowed = {}  # id(Mounted) -> the process of a slowed mount, reaped after its unmount

    def make(files: dict[str, bytes], slow: str | None = None):
        proxies, settings = {}, {}
        for name, kind in (("s3a", "s3"), ("azb", "az")):
            bucket = S.unique_bucket()
            S.create_bucket(kind, servers[kind].endpoint, bucket)
            proxies[name] = CountingProxy(servers[kind].port)
            settings[name] = S.settings_for(kind, proxies[name].endpoint, bucket, name=name)
        root = tmp_path / f"m{len(made)}"
        root.mkdir()
        cfg = write_config(root, settings, copies=2, quorum=2)
        mp = root / "mnt"
        mp.mkdir()
        m = Mounted(root, mp, cfg, list(settings), settings)
        made.append((m, proxies))
        for name in m.names:
            p = m.provider(name)
            for key, data in files.items():
                p.write_bytes(key, data, object_meta(hashlib.sha256(data).hexdigest(),
                                                     1_700_000_000 * 10**9))
        if slow:
            slowed[id(m)] = slow_reads.start(cfg, mp, {slow: 1.0}, log_path=root / "mount.log")
        else:
            m.mount()
        _reset(proxies)  # the import's listings are no object reads
        return m, proxies

    yield make
    for m, proxies in made:
        try:
            m.umount()
        except AssertionError:
            import subprocess

            subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], check=False)
        if id(m) in slowed:
            slow_reads.wait_exit(slowed[id(m)])
        m.close()
        for proxy in proxies.values():
            proxy.close()


def _gets(proxies) -> dict[str, int]:
    return {name: p.gets for name, p in proxies.items()}


def _reset(proxies) -> None:
    for p in proxies.values():
        p.gets = 0


def _in_both(m: Mounted, key: str, data: bytes) -> None:
    for name in m.names:
        assert m.provider(name).read_bytes(key) == data, name


def test_appending_to_a_file_just_written_reads_no_store(counted):
    m, proxies = counted({})
    data = os.urandom(9 * MiB + 123)  # three cache blocks
    (m.mp / "f.bin").write_bytes(data)
    _wait_cached(m, {"f.bin": data})
    _reset(proxies)
    with open(m.mp / "f.bin", "ab") as f:
        f.write(b"more\n")
    assert _gets(proxies) == {"s3a": 0, "azb": 0}
    assert (m.mp / "f.bin").read_bytes() == data + b"more\n"
    _in_both(m, "f.bin", data + b"more\n")
    # read-write, in place: the same
    _wait_cached(m, {"f.bin": data + b"more\n"})
    _reset(proxies)
    with open(m.mp / "f.bin", "r+b") as f:
        f.seek(5)
        f.write(b"XY")
    assert _gets(proxies) == {"s3a": 0, "azb": 0}
    assert (m.mp / "f.bin").read_bytes() == data[:5] + b"XY" + data[7:] + b"more\n"


def test_appending_to_a_file_read_before_reads_no_store_again(counted):
    data = os.urandom(5 * MiB)
    m, proxies = counted({"r.bin": data})
    assert (m.mp / "r.bin").read_bytes() == data  # from a store, into the cache
    _wait_cached(m, {"r.bin": data})
    _reset(proxies)
    with open(m.mp / "r.bin", "ab") as f:
        f.write(b"tail")
    assert _gets(proxies) == {"s3a": 0, "azb": 0}
    _in_both(m, "r.bin", data + b"tail")


def test_appending_to_an_uncached_file_reads_the_fast_store_once(counted):
    """The first store in config order is slow: the copy comes from the other, in one GET."""
    data = os.urandom(9 * MiB)
    m, proxies = counted({"u.bin": data}, slow="s3a")
    with open(m.mp / "u.bin", "ab") as f:
        f.write(b"!")
    assert _gets(proxies) == {"s3a": 0, "azb": 1}
    assert (m.mp / "u.bin").read_bytes() == data + b"!"
    _in_both(m, "u.bin", data + b"!")


def test_a_sparse_file_stays_sparse_in_staging(counted):
    m, proxies = counted({})
    size = 24 * MiB
    with open(m.mp / "sparse", "wb") as f:
        f.write(b"head")
        f.seek(size - 4)
        f.write(b"tail")
    _wait_cached(m, {"sparse": b""})
    _reset(proxies)
    with open(m.mp / "sparse", "ab") as f:
        f.write(b"+")
        f.flush()
        staging = m.root / "cache" / "staging" / str(os.fstat(f.fileno()).st_ino)
        used = os.stat(staging).st_blocks * 512
        assert os.stat(staging).st_size == size + 1
        assert used <= 1 * MiB, used  # the data pieces only, not 24 MiB of zeros
    assert _gets(proxies) == {"s3a": 0, "azb": 0}
    with open(m.mp / "sparse", "rb") as f:
        assert f.read(4) == b"head"
        f.seek(size - 4)
        assert f.read() == b"tail+"


def test_bytes_that_are_not_the_recorded_version_are_not_appended_to(counted):
    """A store answering other bytes than the catalog's SHA-256: EIO, nothing published."""
    data = b"a" * 1000
    m, _ = counted({"v.txt": data})
    for name in m.names:  # behind omnifs's back, keeping the metadata
        m.provider(name).write_bytes("v.txt", b"b" * 1000, object_meta(
            hashlib.sha256(data).hexdigest(), 1_700_000_000 * 10**9))
    with pytest.raises(OSError) as info, open(m.mp / "v.txt", "ab") as f:
        f.write(b"more")
    assert info.value.errno == 5
    assert (m.mp / "v.txt").stat().st_size == 1000
    for name in m.names:
        assert m.provider(name).read_bytes("v.txt") == b"b" * 1000

