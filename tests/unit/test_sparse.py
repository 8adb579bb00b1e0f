"""Local copies keep holes: the shared sparse helper, the file:// store and the block cache."""

from __future__ import annotations

import io
import os
import random

import pytest

from omnifs.blockcache import BlockCache
from omnifs.providers import ProviderSettings
from omnifs.providers.local import LocalProvider
from omnifs.providers.sparse import PAGE, copy_fd, copy_stream, data_extents, data_runs

MiB = 1 << 20


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def reference_runs(data: bytes, base: int) -> list[tuple[int, int]]:
    """The runs data_runs must give, found the slow and obvious way."""
    zero = bytearray(len(data))
    a = (-base) % PAGE
    while a + PAGE <= len(data):
        if data[a:a + PAGE] == bytes(PAGE):
            zero[a:a + PAGE] = b"\1" * PAGE
        a += PAGE
    runs, i = [], 0
    while i < len(data):
        if zero[i]:
            i += 1
            continue
        j = i
        while j < len(data) and not zero[j]:
            j += 1
        runs.append((i, j))
        i = j
    return runs


@pytest.mark.parametrize("seed", range(40))
def test_data_runs_leave_out_exactly_the_aligned_zero_pages(seed):
    rnd = random.Random(seed)
    data = b"".join(bytes(rnd.randrange(0, 14000)) if rnd.random() < 0.5
                    else rnd.randbytes(rnd.randrange(1, 9000)) for _ in range(rnd.randrange(1, 10)))
    base = rnd.randrange(0, 3 * PAGE)
    want = reference_runs(data, base)
    assert list(data_runs(data, base)) == want
    assert list(data_runs(memoryview(bytearray(data)), base)) == want


def sparse_source(path, size: int, pieces: dict[int, bytes]) -> None:
    with open(path, "wb") as f:
        for off, data in pieces.items():
            f.seek(off)
            f.write(data)
        f.truncate(size)


def test_copy_fd_copies_data_extents_only(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    pieces = {0: b"head", 64 * MiB: os.urandom(100_000), 200 * MiB - 3: b"end"}
    sparse_source(src, 200 * MiB, pieces)
    assert len(list(data_extents(os.open(src, os.O_RDONLY)))) >= 2
    with open(src, "rb") as s, open(dst, "wb") as d:
        assert copy_fd(s.fileno(), d.fileno()) == 200 * MiB
    assert os.path.getsize(dst) == 200 * MiB
    with open(dst, "rb") as d:
        for off, data in pieces.items():
            d.seek(off)
            assert d.read(len(data)) == data
        d.seek(1 * MiB)
        assert d.read(PAGE) == bytes(PAGE)
    assert allocated(dst) < 2 * MiB


def test_copy_stream_skips_zero_pages_of_any_stream(tmp_path):
    data = os.urandom(5000) + bytes(50 * MiB) + b"tail"
    dst = tmp_path / "dst"
    with open(dst, "wb") as d:
        assert copy_stream(io.BytesIO(data), d.fileno()) == len(data)
    assert dst.read_bytes() == data
    assert allocated(dst) < 1 * MiB


def test_file_store_write_and_copy_keep_holes(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    p = LocalProvider(ProviderSettings(name="l", uri=f"file://{root}"))
    src = tmp_path / "sparse"
    sparse_source(src, 300 * MiB, {300 * MiB - 4096: b"x" * 4096})
    with open(src, "rb") as f:
        p.write("a/sparse", f, 300 * MiB, {"k": "v"})
    p.copy("a/sparse", "b/copy")
    p.write("c/streamed", io.BufferedReader(io.BytesIO(src.read_bytes())), 300 * MiB)
    for key in ("a/sparse", "b/copy", "c/streamed"):
        assert p.head(key).size == 300 * MiB
        assert allocated(root / key) < 1 * MiB, key
        assert p.read_bytes(key, 300 * MiB - 4096) == b"x" * 4096
    assert p.head("b/copy").metadata == {"k": "v"}


def test_block_cache_stores_zero_pages_as_holes(tmp_path):
    cache = BlockCache(tmp_path / "c", 64 * MiB)
    try:
        zeros = bytes(4 * MiB)
        mostly = bytearray(4 * MiB)
        mostly[100:200] = b"y" * 100
        cache.put("z", 0, zeros)
        cache.put("m", 0, mostly)
        assert cache.get("z", 0) == zeros
        assert cache.get("m", 0) == bytes(mostly)
        assert bytes(cache.get("m", 0, mapped=True)) == bytes(mostly)
        files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "c" / "blocks")
                 for f in fs if f.endswith(".val")]
        assert len(files) == 2
        assert sum(allocated(f) for f in files) <= 64 * 1024
        assert cache.volume() < 1 * MiB
    finally:
        cache.close()


def test_a_block_with_holes_is_read_not_mapped(tmp_path):
    """Mapping a hole on tmpfs allocates a page on the read fault: a SIGBUS on a full one."""
    import mmap

    cache = BlockCache(tmp_path / "c", 64 * MiB)
    try:
        mostly = bytearray(4 * MiB)
        mostly[:100] = b"y" * 100
        dense = os.urandom(4 * MiB)
        cache.put("m", 0, mostly)
        cache.put("d", 0, dense)
        got = cache.get("m", 0, mapped=True)
        assert not isinstance(got, mmap.mmap) and bytes(got) == bytes(mostly)
        assert isinstance(cache.get("d", 0, mapped=True), mmap.mmap)
    finally:
        cache.close()
