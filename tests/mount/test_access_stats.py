"""Access statistics recorded through a real mount over moto S3 and a local store.

What is proved: reads (one per open that read), bytes read and writes (one
per changing close) reach the catalog while mounted (the periodic flush) and
at unmount (the last flush); a read the block cache serves counts as a read
(the proof that it came from the cache: the stores no longer hold the
object); replication by ``omnifs replicate`` counts nothing; ``[cost]
access_stats = false`` records nothing.
"""

from __future__ import annotations

import os
import time

from omnifs.catalog import Catalog
from omnifs.config import load_config

SIZE = 300 * 1024 + 17


def _set_cost(m, **keys) -> None:
    with open(m.config, "a") as f:
        f.write("\n[cost]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))


def _counts(m, path: str):
    cat = Catalog(load_config(m.config).catalog_target())
    try:
        return cat.access.of(cat.ns.resolve(path).id)
    finally:
        cat.close()


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _wait_counts(m, path: str, reads: int, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        got = _counts(m, path)
        if got is not None and got.reads >= reads:
            return got
        assert time.monotonic() < deadline, f"{path}: counts never flushed ({got})"
        time.sleep(0.1)


def test_reads_writes_and_cache_hits_reach_the_catalog(make_mount):
    m = make_mount(("s3", "file"), copies=2, mount=False)
    _set_cost(m, access_stats_interval=0.5)
    m.mount()
    data = os.urandom(SIZE)
    t0 = time.time()
    with open(m.mp / "a.bin", "wb") as f:
        f.write(data)
    assert _read(m.mp / "a.bin") == data  # through the mount (its block cache or a store)
    assert _read(m.mp / "a.bin") == data  # the kernel may answer it from its page cache
    got = _wait_counts(m, "a.bin", 2)  # flushed while mounted, within the interval
    assert (got.reads, got.writes) == (2, 1)
    out = m.replicate()  # the second copy: a read of the object, not user access
    assert "failed 0" in out, out
    m.umount()
    got = _counts(m, "a.bin")
    assert (got.reads, got.writes) == (2, 1)
    assert SIZE <= got.bytes_read <= 2 * SIZE
    assert t0 <= got.last_write <= got.last_read <= time.time()

    # every store loses the object: only the block cache can serve the next read
    assert m.homes("a.bin") == sorted(m.names)
    for name in m.names:
        assert m.provider(name).exists("a.bin")
        m.provider(name).delete("a.bin")
        assert not m.provider(name).exists("a.bin")
    before = got
    m.mount()
    assert _read(m.mp / "a.bin") == data
    m.umount()  # the last counts are flushed at unmount
    got = _counts(m, "a.bin")
    assert (got.reads, got.writes) == (before.reads + 1, 1)
    assert got.bytes_read == before.bytes_read + SIZE
    assert got.last_read > before.last_read and got.last_write == before.last_write


def test_recording_off_records_nothing(make_mount):
    m = make_mount(mount=False)
    _set_cost(m, access_stats="false")
    m.mount()
    (m.mp / "b.txt").write_bytes(b"hello")
    assert (m.mp / "b.txt").read_bytes() == b"hello"
    m.umount()
    assert _counts(m, "b.txt") is None
