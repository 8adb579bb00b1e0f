"""Files written through the mount stay in the block cache; their copies come from there.

The proof that no byte is downloaded from the first store: that store is cut
off (a proxy in front of moto stops answering) before the copies are made,
and they still complete, verified, on every kind of second store; reading
the files back through the mount still works too.
"""

from __future__ import annotations

import random
import time

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
