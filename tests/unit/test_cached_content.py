"""Whole contents in the block cache: only verified bytes go in, and only whole ones come out.

A local directory store stands in as the destination (no server needed);
the copies through the mount and to every kind of store are in
tests/mount/test_written_cache.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from omnifs.blockcache import BlockCache
from omnifs.cached_content import CachedContent, CacheMiss, holds, keep_file
from omnifs.layout import object_meta
from omnifs.providers import ProviderSettings, open_provider
from omnifs.replication import copy_from_cache

KiB = 1024


@pytest.fixture
def cache(tmp_path):
    with BlockCache(tmp_path / "cache", 64 * 1024**2, block_size=64 * KiB) as c:
        yield c


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    p = open_provider(ProviderSettings(name="dst", uri=f"file://{root}"))
    yield p
    p.close()


def _file(tmp_path, data: bytes):
    path = tmp_path / "written"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [1, 64 * KiB, 64 * KiB + 1, 200 * KiB])
def test_kept_file_reads_back_whole(cache, tmp_path, size):
    data = os.urandom(size)
    path, sha = _file(tmp_path, data)
    assert keep_file(cache, path, sha, size) == -(-size // (64 * KiB))
    assert holds(cache, sha, size)
    assert keep_file(cache, path, sha, size) == 0  # already there: nothing put again
    r = CachedContent(cache, sha, size)
    assert b"".join(iter(lambda: r.read(5000), b"")) == data


def test_file_that_is_not_the_recorded_version_is_not_kept(cache, tmp_path):
    data = os.urandom(150 * KiB)
    path, sha = _file(tmp_path, data)
    path.write_bytes(data[:-1] + b"!")  # changed after hashing
    assert keep_file(cache, path, sha, len(data)) == -1
    assert not any(cache.contains(sha, i) for i in range(3))
    path.write_bytes(data[:-1])  # wrong size
    assert keep_file(cache, path, sha, len(data)) == -1


def test_a_block_leaving_the_cache_mid_stream_is_a_miss(cache, tmp_path):
    data = os.urandom(200 * KiB)
    path, sha = _file(tmp_path, data)
    keep_file(cache, path, sha, len(data))
    cache.discard(sha, 2)
    r = CachedContent(cache, sha, len(data))
    assert r.read(128 * KiB) and r.read(1)  # blocks 0 and 1
    with pytest.raises(CacheMiss):
        while r.read(64 * KiB):
            pass


def test_copy_from_cache_uploads_verified_bytes(cache, store, tmp_path):
    data = os.urandom(150 * KiB)
    path, sha = _file(tmp_path, data)
    keep_file(cache, path, sha, len(data))
    out = copy_from_cache(cache, sha, len(data), store, "k", object_meta(sha, 10**9))
    assert out is not None and out.nbytes == len(data)
    assert store.read_bytes("k") == data
    assert store.head("k").sha256 == sha


def test_copy_from_cache_gives_up_cleanly_on_a_gap_or_bad_bytes(cache, store, tmp_path):
    data = os.urandom(150 * KiB)
    path, sha = _file(tmp_path, data)
    keep_file(cache, path, sha, len(data))
    cache.discard(sha, 1)
    assert copy_from_cache(cache, sha, len(data), store, "gap", object_meta(sha, 0)) is None
    assert not store.exists("gap")
    other = os.urandom(10 * KiB)
    cache.put("f" * 64, 0, other)  # a block that is not what its hash says
    assert copy_from_cache(cache, "f" * 64, len(other), store, "bad", object_meta("f" * 64, 0)) \
        is None
    assert not store.exists("bad")
