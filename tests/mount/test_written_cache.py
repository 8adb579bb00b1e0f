"""Files written through the mount stay in the block cache; their copies come from there.

The proof that no byte is downloaded from the first store: that store is cut
off (a proxy in front of moto stops answering) before the copies are made,
and they still complete, verified, on every kind of second store; reading
the files back through the mount still works too. A file read before its
blocks reach the cache comes from its written file (mountfs/written.py):
its objects are deleted from every store first, and the read still returns
its bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import time
from pathlib import Path

import pytest
import trio

from omnifs.cached_content import holds, open_cache
from omnifs.catalog import Catalog
from omnifs.config import load_config
from omnifs.daemon.main import Daemon
from tests.poll import wait_until

FAST_DAEMON = {"probe_interval": 0.3, "probe_timeout": 1.0, "idle_poll": 0.05,
               "reconcile_interval": 0, "retry_base": 0.2, "retry_max": 2.0,
               "drain_timeout": 5.0}
MiB = 1024 * 1024


@pytest.fixture
def cut_first(cuttable_s3):
    """The first store: moto behind a proxy the test can cut."""
    return cuttable_s3("first")


def _mount(make_mount, make_settings, first, kind: str, *, daemon: bool = False):
    """Two stores, ``first`` preferred (every new file lands there at close)."""
    second = make_settings(kind, name="second")
    m = make_mount(settings={"first": first, "second": second}, copies=2,
                   extra={"first": {"weight": 10, "max_attempts": 1, "timeout": 2}})
    if daemon:
        with open(m.config, "a") as f:
            f.write("\n[daemon]\n" + "".join(f"{k} = {v}\n" for k, v in FAST_DAEMON.items())
                    + "\n[metrics]\nport = 0\n")
    return m


def _wait_cached(m, files: dict[str, bytes], timeout: float = 30) -> None:
    cfg = load_config(m.config)
    cache = open_cache(cfg)
    assert cache is not None
    cat = m.catalog()
    try:
        deadline = time.monotonic() + timeout
        for path in files:
            inode = cat.ns.resolve(path)
            while not holds(cache, inode.sha256, inode.size):
                assert time.monotonic() < deadline, f"{path} never reached the cache"
                time.sleep(0.05)
    finally:
        cat.close()
        cache.close()


@pytest.mark.parametrize("kind", ["s3", "gs", "az", "file"])
def test_replicate_now_copies_written_files_from_the_cache(make_mount, make_settings, cut_first,
                                                         kind):
    proxy, first = cut_first
    m = _mount(make_mount, make_settings, first, kind)
    rng = random.Random(kind)
    files = {"a.txt": rng.randbytes(300 * 1024), "dir/empty-ish": b"x"}
    (m.mp / "dir").mkdir()
    for path, data in files.items():
        (m.mp / path).write_bytes(data)
    for path in files:
        assert m.homes(path) == ["first"]
    _wait_cached(m, files)

    proxy.cut()  # the first store is gone: every byte must come from the local cache
    for path, data in files.items():
        assert (m.mp / path).read_bytes() == data
    out = m.replicate()
    assert "done 2, failed 0" in out, out
    for path, data in files.items():
        assert "second" in m.homes(path)
        assert m.provider("second").read_bytes(path) == data


def test_daemon_copies_a_multi_block_file_from_the_cache(make_mount, make_settings, cut_first):
    proxy, first = cut_first
    m = _mount(make_mount, make_settings, first, "az", daemon=True)
    data = random.Random(7).randbytes(9 * MiB + 5)  # three 4 MiB blocks, the last short
    (m.mp / "big.bin").write_bytes(data)
    assert m.homes("big.bin") == ["first"]
    _wait_cached(m, {"big.bin": data})
    proxy.cut()

    cfg = load_config(m.config)
    watch = Catalog(cfg.catalog_target())

    seen = {}

    async def main():
        d = seen["daemon"] = Daemon(cfg)
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run)
            with trio.fail_after(60):
                await wait_until(lambda: not (watch.work.pending_count()
                                              or watch.replicas.under_replicated(2)), every=0.05)
            d.stop()

    try:
        trio.run(main)
    finally:
        watch.close()
    assert m.homes("big.bin") == ["first", "second"]
    assert m.provider("second").read_bytes("big.bin") == data
    copies = seen["daemon"].metrics.registry.get_sample_value
    assert copies("omnifs_replica_copies_total", {"source": "cache"}) == 1
    assert copies("omnifs_replica_copies_total", {"source": "store"}) is None


def _written_fds(m) -> list[str]:
    """The files under ``<cache dir>/written/`` the mount process holds open."""
    held = []
    for fd in Path(f"/proc/{m.pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            if "/written/" in (target := os.readlink(fd)):
                held.append(target)
    return held


def _delete_objects(m, path: str) -> None:
    """Every store's copy of ``path`` gone: a read that asks a store fails."""
    cat = m.catalog()
    try:
        replicas = cat.replicas.of(cat.ns.resolve(path).id)
    finally:
        cat.close()
    assert replicas
    for r in replicas:
        m.provider(r.provider).delete(r.key)


def _queue_behind_filler(m, rng: random.Random) -> None:
    """A large file first: the queue spends a while caching it, so the next one waits there."""
    (m.mp / "filler").write_bytes(rng.randbytes(160 * MiB))


def test_a_read_right_after_close_comes_from_the_written_file(make_mount):
    """``cp big /mnt/x && sha256sum /mnt/x``: no store is asked for the bytes just written.

    Read while queued, the file comes from its written file; a handle still open when
    the queue has cached it reads the rest from the cache, and no descriptor of the
    written file outlives its time in the queue.
    """
    m = make_mount()
    assert m.pid is not None
    rng = random.Random(11)
    _queue_behind_filler(m, rng)
    data = rng.randbytes(9 * MiB + 5)  # three blocks, the last short
    sha = hashlib.sha256(data).hexdigest()
    (m.mp / "x").write_bytes(data)
    _delete_objects(m, "x")
    with open(m.mp / "x", "rb") as f:
        head = f.read(64 * 1024)
        assert not m.cached(sha, len(data)), "cached before the read: the test proves nothing"
        assert head == data[:64 * 1024]
        assert f.read(4 * MiB) == data[64 * 1024:64 * 1024 + 4 * MiB]
        assert not m.cached(sha, len(data))
        _wait_cached(m, {"x": data})
        deadline = time.monotonic() + 10
        while _written_fds(m):  # the queue let go of it: so does the open handle
            assert time.monotonic() < deadline, _written_fds(m)
            time.sleep(0.05)
        assert f.read() == data[64 * 1024 + 4 * MiB:]  # from the cache: no store has it
    assert not _written_fds(m)
    assert (m.mp / "x").read_bytes() == data


def test_a_read_after_a_change_never_gets_the_old_written_file(make_mount):
    """Two versions queued, one after the other: a read gets the one the catalog says is
    current, never the other (the written files are matched by content hash)."""
    m = make_mount()
    rng = random.Random(12)
    _queue_behind_filler(m, rng)
    old, new = rng.randbytes(5 * MiB), rng.randbytes(5 * MiB)
    (m.mp / "x").write_bytes(old)
    with open(m.mp / "x", "rb") as f:
        assert f.read(MiB) == old[:MiB]  # a handle reading the old version from its file
        with open(m.mp / "x", "r+b") as w:  # changed in place, same size
            w.write(new)
        _delete_objects(m, "x")
        assert (m.mp / "x").read_bytes() == new
        assert not m.cached(hashlib.sha256(new).hexdigest(), len(new)), "cached too soon"
        f.seek(0)
        assert f.read() == new
