"""BlockCache on a real diskcache directory: bound, LRU, integrity, counters."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest

from omnifs.blockcache import BlockCache, decode_block, encode_block

KiB = 1024
MiB = 1024 * KiB


def disk_usage(path: Path) -> int:
    """Bytes of every file under ``path`` (what `du --apparent-size` would say)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def value_file(cache: BlockCache, content: str, index: int) -> Path:
    """The file diskcache keeps a block's value in (blocks are far above its inline limit)."""
    inner = cache._cache
    row = inner._sql("SELECT filename FROM Cache WHERE key = ?",
                     (cache.key(content, index),)).fetchone()
    assert row and row[0], "block should be stored as a file"
    return Path(inner.directory) / row[0]


def test_round_trip_and_counters(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        assert c.get("abc", 0) is None
        data = os.urandom(256 * KiB)
        c.put("abc", 0, data)
        assert c.get("abc", 0) == data
        assert c.get("abc", 0) == data
        assert c.get("abc", 1) is None
        s = c.stats()
        assert (s.hits, s.misses, s.stores, s.evictions, s.corrupt) == (2, 2, 1, 0, 0)
        assert s.hit_ratio == 0.5
        assert s.entries == 1
    # persisted: a new instance (e.g. `omnifs cache stats`) sees the same counters
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as again:
        s = again.stats()
        assert (s.hits, s.misses, s.stores) == (2, 2, 1)
        assert again.get("abc", 0) == data


def test_identical_content_shares_blocks(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=64 * KiB) as c:
        c.put("samehash", 3, b"x" * 1000)
        c.put("samehash", 3, b"x" * 1000)
        assert len(c) == 1


@pytest.mark.parametrize("block", [256 * KiB, 1 * MiB])
def test_limit_holds_under_twice_its_size(tmp_path, block):
    limit = 24 * MiB
    with BlockCache(tmp_path, limit, block_size=block) as c:
        written = 0
        i = 0
        worst = 0
        while written < 2 * limit:
            # uneven sizes too: files' last blocks are short
            n = block if i % 5 else block // 3
            c.put(f"file{i // 7}", i % 7, os.urandom(n))
            written += n
            i += 1
            worst = max(worst, c.volume(), disk_usage(tmp_path / "blocks"))
        s = c.stats()
        assert worst <= limit * 1.05, (worst, limit)
        assert s.evictions > 0
        assert s.stores == i
        assert s.entries == i - s.evictions
        # and the cache is actually used, not emptied by over-eager culls
        assert c.volume() >= limit * 0.7


def test_lru_keeps_recently_read_blocks(tmp_path):
    block = 1 * MiB
    with BlockCache(tmp_path, 10 * MiB, block_size=block) as c:
        c.put("hot", 0, b"h" * block)
        for i in range(30):
            c.put("cold", i, os.urandom(block))
            assert c.get("hot", 0) is not None, f"hot block evicted after {i} inserts"
        assert c.get("cold", 0) is None


def test_corrupt_entry_is_dropped_and_reported_as_miss(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        data = os.urandom(256 * KiB)
        c.put("f", 0, data)
        path = value_file(c, "f", 0)
        raw = bytearray(path.read_bytes())
        raw[1000] ^= 0x01
        path.write_bytes(bytes(raw))
        assert c.get("f", 0) is None
        assert "f:0" not in c._cache  # deleted, not kept around
        c.put("f", 0, data)  # refetched by the caller
        assert c.get("f", 0) == data
        s = c.stats()
        assert (s.corrupt, s.misses, s.hits) == (1, 1, 1)


def test_truncated_and_vanished_entries_are_misses(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        c.put("t", 0, os.urandom(256 * KiB))
        c.put("t", 1, os.urandom(256 * KiB))
        p0 = value_file(c, "t", 0)
        with open(p0, "r+b") as f:
            f.truncate(4096)
        value_file(c, "t", 1).unlink()
        assert c.get("t", 0) is None
        assert c.get("t", 1) is None
        assert c.stats().hits == 0


def test_decode_rejects_garbage():
    assert decode_block(b"") is None
    assert decode_block(b"OFB1" + b"\0" * 4) is None
    good = encode_block(b"hello")
    assert decode_block(good) == b"hello"
    assert decode_block(good[:-1]) is None
    assert decode_block(b"XXXX" + good[4:]) is None


def test_clear(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=64 * KiB) as c:
        for i in range(5):
            c.put("x", i, b"a" * 70000)
        c.get("x", 0)
        assert c.clear() == 5
        s = c.stats()
        assert (s.entries, s.hits, s.stores) == (0, 0, 0)


def test_cli_cache_stats_and_clear(tmp_path, capsys):
    import json

    from omnifs.cli import main

    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[cache]\ndir = "{tmp_path / "c"}"\nsize = "8MiB"\nblock_size = "64KiB"\n')
    with BlockCache(tmp_path / "c", 8 * MiB, block_size=64 * KiB) as c:
        c.put("a", 0, b"x" * 64 * KiB)
        c.get("a", 0)
        c.get("a", 1)
    assert main(["cache", "stats", "--json", "-c", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["entries"], out["hits"], out["misses"], out["limit"]) == (1, 1, 1, 8 * MiB)
    assert out["hit_ratio"] == 0.5
    assert main(["cache", "stats", "-c", str(cfg)]) == 0
    assert "hit ratio: 50.0%" in capsys.readouterr().out
    assert main(["cache", "clear", "-c", str(cfg)]) == 0
    assert "cleared 1 block from" in capsys.readouterr().out
    assert main(["cache", "stats", "--json", "-c", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["entries"], out["hits"]) == (0, 0)


def test_value_file_is_the_bare_block_checked_by_its_tag(tmp_path):
    """The block is stored as is (one pread serves it) and its length+CRC live in the tag."""
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        data = os.urandom(256 * KiB)
        c.put("bare", 0, bytearray(data))  # streamed blocks arrive as bytearrays
        assert value_file(c, "bare", 0).read_bytes() == data
        got = c.get("bare", 0)
        assert got == data and isinstance(got, bytes)
        # a block grown behind our back fails the length check too
        with open(value_file(c, "bare", 0), "ab") as f:
            f.write(b"x")
        assert c.get("bare", 0) is None
        assert c.stats().corrupt == 1


def test_entries_of_the_older_header_format_are_still_served(tmp_path):
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        data = os.urandom(256 * KiB)
        c._cache.set(c.key("old", 0), encode_block(data))  # what earlier versions wrote
        assert c.get("old", 0) == data
        raw = bytearray(encode_block(data))
        raw[-1] ^= 0x01
        c._cache.set(c.key("old", 1), bytes(raw))
        assert c.get("old", 1) is None
        assert c.stats().corrupt == 1


def test_mount_read_stats_for_status(tmp_path):
    from omnifs.mountfs.replicas import StatsRegistry, mount_read_stats

    assert mount_read_stats(tmp_path) == []
    reg = StatsRegistry()
    reg.get("aws").record(0.02, 4 * MiB, 0.05)
    reg.save(tmp_path / "read-stats.json")
    rows = mount_read_stats(tmp_path)
    assert [r["provider"] for r in rows] == ["aws"]
    assert rows[0]["latency_ms"] is not None and rows[0]["age_s"] < 60
    assert mount_read_stats(tmp_path, max_age=-1) == []


def test_mapped_get_serves_the_checked_file_and_drops_damage(tmp_path):
    """The read path maps blocks: same bytes, same checks as a pread, entry still evictable."""
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        data = os.urandom(256 * KiB)
        c.put("m", 0, data)
        c.put("m", 1, data)
        got = c.get("m", 0, mapped=True)
        assert isinstance(got, mmap.mmap) and got[:] == data
        assert bytes(memoryview(got)[10:20]) == data[10:20]
        c.discard("m", 0)  # unlinked under the map: the map still reads
        assert got[:] == data
        with open(value_file(c, "m", 1), "r+b") as f:
            f.truncate(4096)
        assert c.get("m", 1, mapped=True) is None
        c.put("m", 1, data)
        raw = bytearray(value_file(c, "m", 1).read_bytes())
        raw[7] ^= 0x01
        value_file(c, "m", 1).write_bytes(bytes(raw))
        assert c.get("m", 1, mapped=True) is None
        assert c.stats().corrupt == 2


@pytest.mark.parametrize("size", [256 * KiB, 256 * KiB - 1000, 1000])
def test_streamed_blocks_are_written_whole(tmp_path, size):
    """Aligned stream buffers go to disk with O_DIRECT (an unaligned tail buffered).

    Others buffered.
    """
    from omnifs.blockcache import aligned_buffer

    data = os.urandom(size)
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        buf = aligned_buffer(size)
        buf[:] = data
        c.put("d", 0, buf)
        c.put("d", 1, data)
        assert value_file(c, "d", 0).read_bytes() == data
        assert c.get("d", 0) == data and c.get("d", 1) == data
        assert c.get("d", 0, mapped=True)[:] == data


def test_cache_on_a_filesystem_without_o_direct(tmp_path, monkeypatch):
    """A filesystem refusing O_DIRECT (EINVAL, as older tmpfs does) gets buffered writes."""
    import errno

    from omnifs.blockcache import aligned_buffer

    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with BlockCache(tmp_path, 16 * MiB, block_size=256 * KiB) as c:
        data = os.urandom(256 * KiB)
        for index in range(2):
            buf = aligned_buffer(len(data))
            buf[:] = data
            c.put("t", index, buf)
            assert c.get("t", index) == data
        assert c._cache._disk.direct_refused


def test_a_block_size_change_never_serves_old_blocks(tmp_path):
    """Blocks are keyed by size too: after ``block_size`` changes, old entries are misses."""
    with BlockCache(tmp_path / "c", 64 * 1024**2, block_size=4 * 1024**2) as big:
        big.put("sha", 1, b"B" * 100)
    with BlockCache(tmp_path / "c", 64 * 1024**2, block_size=1024**2) as small:
        assert small.get("sha", 1) is None
        small.put("sha", 1, b"s" * 10)
    with BlockCache(tmp_path / "c", 64 * 1024**2, block_size=4 * 1024**2) as big:
        assert big.get("sha", 1) == b"B" * 100


def test_entries_tagged_with_zlib_crc32_are_still_read(tmp_path):
    """Caches of earlier versions carry zlib's CRC-32 in the tag: still served, still checked."""
    import zlib

    from omnifs.blockfiles import Chunks as _Chunks

    data = os.urandom(100_000)
    with BlockCache(tmp_path / "c", 64 * 1024**2) as c:
        c._cache.set(c.key("old", 0), _Chunks(data), read=True,
                     tag=len(data) << 32 | zlib.crc32(data))
        c._cache.set(c.key("old", 1), _Chunks(data), read=True,
                     tag=len(data) << 32 | (zlib.crc32(data) ^ 1))
        assert c.get("old", 0) == data
        assert c.get("old", 1) is None and c.stats().corrupt == 1


def test_crc32c_of_every_buffer_kind_matches_the_reference(tmp_path):
    import mmap

    import google_crc32c

    from omnifs import crc32c

    assert crc32c.value is not None  # the wheel ships the library
    data = os.urandom(1 << 20)
    path = tmp_path / "f"
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for buf in (data, bytearray(data), memoryview(data)[7:9999], m, b""):
            assert crc32c.value(buf) == google_crc32c.value(bytes(buf))
