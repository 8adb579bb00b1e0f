"""The read path over real servers: cache, fastest replica, hedging, failover, read-ahead.

Stores misbehave through ``providers.faulty.FaultyProvider`` (slow, flaky,
down) and ``tests.servers.CuttableProxy`` (a server that dies or hangs in
the middle of a transfer).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from omnifs.blockcache import BlockCache
from omnifs.mountfs.blocks import FileRef, ReadPath
from omnifs.mountfs.replicas import Replica, ReplicaReader, StatsRegistry
from omnifs.providers import open_provider
from omnifs.providers.errors import IntegrityError, Unavailable
from omnifs.providers.faulty import FaultyProvider
from tests import servers as S

KiB = 1024
MiB = 1024 * KiB
BLOCK = 256 * KiB


@pytest.fixture
def cache(tmp_path):
    c = BlockCache(tmp_path / "cache", 64 * MiB, block_size=BLOCK)
    yield c
    c.close()


def make_path(cache, **kw) -> ReadPath:
    reader = ReplicaReader(StatsRegistry(), hedge_floor=kw.pop("hedge_floor", 0.1),
                           hedge_default=kw.pop("hedge_default", 0.5))
    return ReadPath(cache, reader, readahead=kw.pop("readahead", 4))


def counted_s3_file(make_provider, key: str, size: int) -> tuple[FaultyProvider, bytes, FileRef]:
    """``size`` random bytes whose one replica is on S3, behind a wrapper counting requests."""
    a = FaultyProvider(make_provider("s3"))
    data = os.urandom(size)
    return a, data, put_everywhere([a], key, data)


def put_everywhere(providers, key: str, data: bytes) -> FileRef:
    for p in providers:
        p.write_bytes(key, data)
    sha = hashlib.sha256(data).hexdigest()
    return FileRef(sha, len(data), [Replica(p, key) for p in providers])


def read_all(handle, size: int, chunk: int = 128 * KiB) -> bytes:
    out = bytearray()
    off = 0
    while True:
        piece = handle.read(off, chunk)
        if not piece:
            return bytes(out)
        out += piece
        off += len(piece)


def test_cold_then_warm_read_counts_and_content(make_provider, cache):
    a = FaultyProvider(make_provider("s3"))
    b = FaultyProvider(make_provider("az"))
    data = os.urandom(5 * BLOCK + 1234)
    ref = put_everywhere([a, b], "dir/f.bin", data)
    rp = make_path(cache)
    try:
        h = rp.open(ref)
        assert read_all(h, ref.size) == data
        h.close()
        s = cache.stats()
        assert (s.misses, s.hits) == (6, 0)
        calls = a.calls["open_read"] + b.calls["open_read"]
        # block 0 on demand, the rest streamed by read-ahead (plus a hedge at most)
        assert calls <= 4
        rp.drain()
        # a second reader is served by the disk cache alone
        h = rp.open(ref)
        assert read_all(h, ref.size, chunk=100_000) == data
        h.close()
        s = cache.stats()
        assert (s.misses, s.hits) == (6, 6)
        assert a.calls["open_read"] + b.calls["open_read"] == calls
    finally:
        rp.close()


def test_slow_replica_is_avoided(make_provider, cache):
    slow = FaultyProvider(make_provider("s3"), latency=0.3, name="slow")
    fast = FaultyProvider(make_provider("minio"), name="fast")
    data = os.urandom(16 * BLOCK)
    # the slow one first in placement order: measurement must override the order
    ref = put_everywhere([slow, fast], "big", data)
    rp = make_path(cache, hedge_default=0.1)
    try:
        t0 = time.monotonic()
        h = rp.open(ref)
        assert read_all(h, ref.size) == data
        elapsed = time.monotonic() - t0
    finally:
        rp.close()
    # at most the first block and the first stream try the slow one (both hedged)
    assert slow.calls["open_read"] <= 3, slow.calls
    assert fast.calls["open_read"] >= 1
    assert elapsed < 16 * 0.3 / 3


def test_probed_slow_replica_is_never_asked_first(make_provider, cache):
    """Probes at mount start rank the replicas.

    So not even the first read waits for the slow one.
    """
    slow = FaultyProvider(make_provider("s3"), latency=0.3, name="slow")
    fast = FaultyProvider(make_provider("minio"), name="fast")
    data = os.urandom(8 * BLOCK)
    ref = put_everywhere([slow, fast], "probed", data)  # the slow one first in placement order
    rp = make_path(cache, hedge_default=0.1)
    try:
        for probe in rp.reader.probe([slow, fast], rounds=2):
            probe.result()
        stats = rp.reader.stats
        assert stats.get("slow").latency >= 0.3 > stats.get("fast").latency
        assert not stats.get("fast")._samples  # a probe is no transfer sample
        assert [r.name for r in rp.reader.rank(ref.replicas, BLOCK)] == ["fast", "slow"]
        slow.calls.clear()
        h = rp.open(ref)
        assert read_all(h, ref.size) == data
        h.close()
    finally:
        rp.close()
    assert slow.calls["open_read"] == 0, slow.calls


def test_read_right_after_mount_start_skips_the_replica_still_silent(make_provider, cache):
    """A probe not answered yet is a lower bound on that store's latency."""
    slow = FaultyProvider(make_provider("s3"), latency=1.0, name="slow")
    fast = FaultyProvider(make_provider("minio"), name="fast")
    ref = put_everywhere([slow, fast], "early", os.urandom(BLOCK))
    rp = make_path(cache)
    try:
        probes = rp.reader.probe([slow, fast], rounds=1)
        probes[1].result()  # the fast one answered; the slow one has not
        assert rp.reader.stats.get("slow").latency is None
        assert [r.name for r in rp.reader.rank(ref.replicas, BLOCK)] == ["fast", "slow"]
        probes[0].result()
        assert rp.reader.stats.get("slow").latency >= 1.0
    finally:
        rp.close()


def test_replica_failing_mid_read_is_failed_over(make_provider, cache):
    a = FaultyProvider(make_provider("s3"), name="a")
    # b a little slower, so that a is the one in use when it fails
    b = FaultyProvider(make_provider("gs"), latency=0.05, name="b")
    data = os.urandom(12 * BLOCK)
    ref = put_everywhere([a, b], "x/y", data)
    rp = make_path(cache, readahead=0, hedge_floor=2.0, hedge_default=2.0)
    try:
        h = rp.open(ref)
        out = bytearray()
        off = 0
        while off < ref.size:
            if off >= 4 * BLOCK:
                a.outage = True  # every request and every open stream of `a` now fails
            piece = h.read(off, 64 * KiB)
            out += piece
            off += len(piece)
        assert bytes(out) == data
    finally:
        rp.close()
    assert rp.reader.stats.get("a").errors >= 1
    assert b.calls["open_read"] >= 8


def test_flaky_replica_never_surfaces_an_error(make_provider, cache):
    flaky = FaultyProvider(make_provider("s3"), seed=7, name="flaky")
    good = FaultyProvider(make_provider("az"), name="good")
    data = os.urandom(10 * BLOCK)
    ref = put_everywhere([flaky, good], "k", data)
    flaky.error_rate = 0.5
    rp = make_path(cache)
    try:
        for i in range(10):  # random blocks, each a fresh fetch (no read-ahead on random access)
            idx = (i * 7) % 10
            assert rp.open(ref).read(idx * BLOCK, BLOCK) == data[idx * BLOCK:(idx + 1) * BLOCK]
    finally:
        rp.close()
    assert flaky.calls["open_read"] >= 1


def test_store_stopped_during_large_read(make_provider, make_settings, servers, cache):
    """The proxy in front of moto is cut mid-read: the read completes from the other store."""
    direct = make_settings("s3", name="dying")
    proxy = S.CuttableProxy(servers["s3"].port)
    proxied = open_provider(direct.__class__(**{**direct.__dict__, "endpoint": proxy.endpoint}))
    other = make_provider("az", name="alive")
    data = os.urandom(24 * BLOCK)
    try:
        ref = put_everywhere([proxied, other], "large.bin", data)
        rp = make_path(cache)
        try:
            h = rp.open(ref)
            out = bytearray()
            off = 0
            while off < ref.size:
                if off >= 6 * BLOCK and not proxy._cut:
                    proxy.cut()
                piece = h.read(off, 128 * KiB)
                assert piece, f"short read at {off}"
                out += piece
                off += len(piece)
            assert bytes(out) == data
        finally:
            rp.close()
    finally:
        proxy.close()
        proxied.close()


def test_hung_store_is_hedged(make_provider, make_settings, servers, cache):
    """A store that stops answering (no error, no bytes) costs one hedge delay, not a timeout."""
    direct = make_settings("s3", name="hangs")
    proxy = S.CuttableProxy(servers["s3"].port)
    proxied = open_provider(direct.__class__(**{**direct.__dict__, "endpoint": proxy.endpoint}))
    other = make_provider("minio", name="ok")
    data = os.urandom(4 * BLOCK)
    try:
        ref = put_everywhere([proxied, other], "h", data)
        rp = make_path(cache, readahead=0, hedge_default=0.2)
        try:
            proxy.freeze()
            t0 = time.monotonic()
            assert rp.open(ref).read(0, ref.size) == data
            assert time.monotonic() - t0 < 3.0
            assert rp.reader.stats.get("hangs").hedges >= 1
        finally:
            proxy.thaw()
            rp.close()
    finally:
        proxy.close()
        proxied.close()


def test_every_replica_down_is_one_unavailable(make_provider, cache):
    a = FaultyProvider(make_provider("s3"), name="a")
    b = FaultyProvider(make_provider("file"), name="b")
    ref = put_everywhere([a, b], "gone", b"z" * 1000)
    a.outage = b.outage = True
    rp = make_path(cache)
    try:
        with pytest.raises(Unavailable) as info:
            rp.open(ref).read(0, 100)
        assert "\n" not in str(info.value)
        assert "every replica failed" in str(info.value)
    finally:
        rp.close()


def test_concurrent_readers_share_one_fetch(make_provider, cache):
    a = FaultyProvider(make_provider("s3"), latency=0.2)
    data = os.urandom(3 * BLOCK)
    ref = put_everywhere([a], "shared", data)
    rp = make_path(cache, readahead=0)
    results: list[bytes] = []
    try:
        threads = [threading.Thread(target=lambda: results.append(rp.open(ref).read(BLOCK, BLOCK)))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        rp.close()
    assert results == [data[BLOCK:2 * BLOCK]] * 6
    assert a.calls["open_read"] == 1


def test_readahead_on_sequential_none_on_random(make_provider, cache):
    _, data, ref = counted_s3_file(make_provider, "seq", 32 * BLOCK)
    rp = make_path(cache, readahead=8)
    try:
        # random access: exactly the blocks touched are fetched
        h = rp.open(ref)
        touched = [20, 3, 27, 9, 15, 30, 6, 12, 24, 1]  # never two near each other
        for idx in touched:
            assert h.read(idx * BLOCK + 10, 100) == data[idx * BLOCK + 10: idx * BLOCK + 110]
        time.sleep(0.2)
        assert rp.fetches == len(touched)
        h.close()
        # sequential: read-ahead fetches the following blocks before they are asked for
        rp.drain()
        cache.clear(reset_counters=False)
        before = rp.fetches
        h = rp.open(ref)
        for off in range(0, 4 * BLOCK, 128 * KiB):
            h.read(off, 128 * KiB)
        deadline = time.monotonic() + 5
        while rp.fetches - before < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rp.fetches - before >= 8, "read-ahead should have fetched past block 4"
        assert read_all(h, ref.size) == data
        h.close()
        s = cache.stats()
        assert s.misses == len(touched) + 32  # one per block fetched from the store
        # a new reader of blocks 0-3: four hits, no store request
        rp.drain()
        h = rp.open(ref)
        for i in range(4):
            h.read(i * BLOCK + 7, 1000)
        h.close()
        s2 = cache.stats()
        assert (s2.hits - s.hits, s2.misses - s.misses) == (4, 0)
    finally:
        rp.close()


def test_cold_read_over_blocks_cached_meanwhile_does_not_stall(make_provider, cache):
    """A stream passing blocks someone else cached hands them over; no reader waits them out.

    The case: one mount process is still caching a file just written while
    the next one reads it cold. The stream skips the cached blocks; a reader
    told the stream would bring them must look in the cache, not sit out
    the whole stall timeout (2 s).
    """
    _, data, ref = counted_s3_file(make_provider, "partly-cached", 24 * BLOCK)
    for index in range(6, 18):
        cache.put(ref.content_id, index, data[index * BLOCK:(index + 1) * BLOCK])
    rp = make_path(cache, readahead=4)
    rp.stall_timeout = 10.0
    try:
        h = rp.open(ref)
        t0 = time.monotonic()
        assert read_all(h, ref.size) == data
        took = time.monotonic() - t0
        h.close()
        assert took < 3.0, f"reader waited out the stall timeout ({took:.1f} s)"
        s = cache.stats()
        assert (s.hits, s.misses) == (12, 12)
    finally:
        rp.close()


def test_corrupt_cache_entry_is_refetched_not_served(make_provider, cache):
    a, data, ref = counted_s3_file(make_provider, "c", 2 * BLOCK)
    rp = make_path(cache, readahead=0)
    try:
        assert rp.open(ref).read(0, ref.size) == data
        inner = cache._cache
        (filename,) = inner._sql("SELECT filename FROM Cache WHERE key = ?",
                                 (cache.key(ref.content_id, 1),)).fetchone()
        path = os.path.join(inner.directory, filename)
        with open(path, "r+b") as f:
            f.seek(5000)
            f.write(b"\x00\x01\x02")
        calls = a.calls["open_read"]
        assert rp.open(ref).read(0, ref.size) == data
        assert a.calls["open_read"] == calls + 1
        assert cache.stats().corrupt == 1
    finally:
        rp.close()


# -- the same through a real mount ---------------------------------------------------------

@pytest.fixture
def proxied_mount(make_settings, servers, tmp_path):
    """A mount over [s3 behind a CuttableProxy, azurite], 1 MiB blocks, read-ahead 2."""
    from tests.mount.conftest import Mounted, fuse_missing, write_config

    reason = fuse_missing()
    if reason:
        pytest.skip(reason)

    proxy = S.CuttableProxy(servers["s3"].port)
    s3 = make_settings("s3", name="s3a")
    az = make_settings("az", name="azb")
    via_proxy = s3.__class__(**{**s3.__dict__, "endpoint": proxy.endpoint})
    cfg = write_config(tmp_path, {"s3a": via_proxy, "azb": az}, copies=2, quorum=1)
    cfg.write_text(cfg.read_text().replace('size = "1GiB"\n',
                                           'size = "1GiB"\nblock_size = "1MiB"\nreadahead = 2\n'))
    mp = tmp_path / "mnt"
    mp.mkdir()
    m = Mounted(tmp_path, mp, cfg, ["s3a", "azb"], {"s3a": s3, "azb": az})
    m.mount()
    try:
        yield m, proxy
    finally:
        proxy.thaw()
        try:
            m.umount()
        except AssertionError:
            import subprocess

            subprocess.run(["fusermount3", "-u", "-z", str(mp)], check=False)
        m.close()
        proxy.close()


def _cache_stats(m) -> dict:
    import json

    from tests.mount.conftest import omnifs

    return json.loads(omnifs("cache", "stats", "--json", config=m.config).stdout)


def test_mount_cat_survives_a_store_dying_mid_read(proxied_mount, tmp_path):
    import subprocess

    from tests.mount.conftest import omnifs

    m, proxy = proxied_mount
    data = os.urandom(24 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    subprocess.run(["cp", str(src), str(m.mp / "big.bin")], check=True, timeout=120)
    m.replicate()
    assert m.provider("azb").read_bytes("big.bin") == data
    # cold: a fresh mount process and an empty block cache
    m.umount()
    omnifs("cache", "clear", config=m.config)
    m.mount()
    with open(m.mp / "big.bin", "rb") as f:
        got = bytearray(f.read(2 * MiB))
        proxy.cut()  # the first store dies in the middle of the read
        while chunk := f.read(1 * MiB):
            got += chunk
    assert bytes(got) == data
    deadline = time.monotonic() + 5  # the mount flushes its counters within a second
    while (st := _cache_stats(m))["misses"] < 24 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (st["entries"], st["misses"], st["hits"]) == (24, 24, 0)
    # `cat` in a fresh mount (empty page cache): all from the disk cache, the dead store unneeded
    m.umount()
    m.mount()
    out = subprocess.run(["cat", str(m.mp / "big.bin")], capture_output=True, check=True,
                         timeout=120)
    assert hashlib.sha256(out.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 5
    while (st := _cache_stats(m))["hits"] < 24 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (st["misses"], st["hits"]) == (24, 24)


def test_mount_cat_with_a_hung_store(proxied_mount, tmp_path):
    import subprocess

    from tests.mount.conftest import omnifs

    m, proxy = proxied_mount
    data = os.urandom(6 * MiB + 123)
    (tmp_path / "f").write_bytes(data)
    subprocess.run(["cp", str(tmp_path / "f"), str(m.mp / "f")], check=True, timeout=120)
    m.replicate()
    m.umount()
    omnifs("cache", "clear", config=m.config)
    m.mount()
    proxy.freeze()  # s3 (first in placement order) accepts connections and says nothing
    t0 = time.monotonic()
    out = subprocess.run(["cat", str(m.mp / "f")], capture_output=True, check=True, timeout=120)
    assert out.stdout == data
    assert time.monotonic() - t0 < 20


def test_first_reads_out_of_order_within_block_0_make_one_request(make_provider, cache):
    """The kernel's first reads of a file arrive in any order.

    One inside block 0 starts the stream.
    """
    a, data, ref = counted_s3_file(make_provider, "first-reads", 8 * BLOCK)
    rp = make_path(cache, readahead=4)
    try:
        h = rp.open(ref)
        out = bytearray(ref.size)
        order = [64 * KiB, 0] + list(range(128 * KiB, ref.size, 64 * KiB))
        for off in order:
            out[off:off + 64 * KiB] = h.read(off, 64 * KiB)
        h.close()
    finally:
        rp.close()
    assert out == data
    assert a.calls["open_read"] == 1, a.calls


def test_one_stream_serves_a_whole_sequential_read(make_provider, cache, monkeypatch):
    """A stream that reached the end of the file is not followed by new ones.

    They would find nothing to do.
    """
    from omnifs.mountfs.streamer import Streamer

    started = []
    original = Streamer.run

    def counted(self):
        started.append(self.next_index)
        return original(self)

    monkeypatch.setattr(Streamer, "run", counted)
    _, data, ref = counted_s3_file(make_provider, "one-stream", 16 * BLOCK)
    rp = make_path(cache, readahead=4)
    try:
        h = rp.open(ref)
        out = bytearray()
        for off in range(0, ref.size, 128 * KiB):  # as `cat` does, a little slower than the stream
            out += h.read(off, 128 * KiB)
            time.sleep(0.005)
        h.close()
    finally:
        rp.close()
    assert out == data
    assert started == [0], started


# -- a whole file into a staging file (mountfs/staging_fill.py) -----------------------------

def test_fill_staging_takes_cached_blocks_and_streams_each_missing_run(make_provider, cache,
                                                                       tmp_path):
    from omnifs.mountfs.staging_fill import fill_staging

    a, data, ref = counted_s3_file(make_provider, "fill", 7 * BLOCK - 100)
    for index in (0, 1, 4):
        cache.put(ref.content_id, index, data[index * BLOCK:(index + 1) * BLOCK])
    rp = make_path(cache)
    try:
        with open(tmp_path / "staging", "w+b") as f:
            h = fill_staging(f.fileno(), ref, cache, rp.reader, BLOCK, ref.content_id)
            f.seek(0)
            assert f.read() == data
    finally:
        rp.close()
    assert h.hexdigest() == ref.content_id
    assert a.calls["open_read"] == 2  # blocks 2-3 in one stream, 5-6 in another


def test_fill_staging_fails_over_mid_stream(make_provider, cache, tmp_path):
    from omnifs.mountfs.staging_fill import fill_staging

    data = os.urandom(8 * BLOCK)
    breaks = FaultyProvider(make_provider("s3"), name="breaks", bandwidth=4 * MiB)
    good = FaultyProvider(make_provider("az"), name="good")
    ref = put_everywhere([breaks, good], "failover", data)
    rp = make_path(cache)
    timer = threading.Timer(0.2, lambda: setattr(breaks, "outage", True))
    try:
        timer.start()
        with open(tmp_path / "staging", "w+b") as f:
            fill_staging(f.fileno(), ref, None, rp.reader, BLOCK, ref.content_id)
            f.seek(0)
            assert f.read() == data
    finally:
        timer.cancel()
        rp.close()
    assert breaks.calls["open_read"] == 1 and good.calls["open_read"] >= 1


def test_fill_staging_leaves_holes_and_refuses_other_bytes(make_provider, cache, tmp_path):
    from omnifs.mountfs.staging_fill import fill_staging

    data = b"head" + bytes(6 * BLOCK) + b"tail"
    a = FaultyProvider(make_provider("s3"))
    ref = put_everywhere([a], "sparse", data)
    rp = make_path(cache)
    try:
        with open(tmp_path / "staging", "w+b") as f:
            fill_staging(f.fileno(), ref, None, rp.reader, BLOCK, ref.content_id)
            f.seek(0)
            assert f.read() == data
            assert os.fstat(f.fileno()).st_blocks * 512 <= 256 * KiB
        with open(tmp_path / "other", "w+b") as f, pytest.raises(IntegrityError):
            fill_staging(f.fileno(), ref, None, rp.reader, BLOCK, "0" * 64)
    finally:
        rp.close()


def test_fill_staging_takes_a_just_written_file_not_a_store_changed_since(make_provider, cache,
                                                                           tmp_path):
    """A file written through the mount and reopened to change before its blocks reached
    the cache (mountfs/written.py): its staging file is the source, not the store, where
    another writer may have put other bytes meanwhile."""
    from omnifs.mountfs.staging_fill import fill_staging
    from omnifs.mountfs.written import Kept

    a, data, ref = counted_s3_file(make_provider, "just-written", 3 * BLOCK + 7)
    a.write_bytes("just-written", b"theirs, written outside omnifs\n")  # behind our back
    (tmp_path / "staged").write_bytes(data)
    kept = Kept(cache, tmp_path / "written")
    assert kept.take(tmp_path / "staged", ref.content_id, len(data))
    assert kept.open_queued("0" * 64) is None
    written = kept.open_queued(ref.content_id)
    assert written is not None
    rp = make_path(cache)
    try:
        with open(tmp_path / "staging", "w+b") as f:
            h = fill_staging(f.fileno(), ref, cache, rp.reader, BLOCK, ref.content_id,
                             written=written)
            f.seek(0)
            assert f.read() == data
    finally:
        os.close(written)
        rp.close()
    assert h.hexdigest() == ref.content_id
    assert a.calls["open_read"] == 0


def test_closing_ends_a_read_that_waits_on_a_hung_store(make_provider):
    """A read stuck on a store that never answers ends once the reader closes (unmount)."""
    hung = FaultyProvider(make_provider("file"))
    hung.write_bytes("f", b"x")
    hung.latency = 60  # from now on every request waits a minute
    reader = ReplicaReader(StatsRegistry())
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            reader.fetch([Replica(hung, "f")], 0, 1)
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            outcome.append(e)

    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    reader.close()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 2
    assert isinstance(outcome[0], Unavailable) and "closing" in str(outcome[0])
