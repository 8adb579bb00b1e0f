"""diskcache's private parts used by omnifs/blockcache.py and blockfiles.py.

* ``Cache._disk.put(key)`` -> ``(db_key, raw)``: how a key is stored in the ``Cache`` table;
* ``Cache._sql(statement, params)``: a statement on the cache's own connection, and the
  ``Cache`` table's columns (rowid, key, raw, tag, mode, filename, value, expire_time,
  access_time);
* ``access_time`` is what least-recently-used eviction orders by, so writing it (the
  block cache's deferred touches) is a touch;
* ``Disk.store(value, read, key=UNKNOWN)`` -> ``(size, mode, filename, value)`` and
  ``Disk.filename(key, value)`` -> ``(filename, full_path)``, which the block cache's
  ``Disk`` overrides and calls; ``diskcache.core.MODE_RAW``, ``MODE_BINARY``, ``UNKNOWN``.
"""

from __future__ import annotations

import inspect
import io
import os
import time

import diskcache
import pytest

from omnifs.blockcache import BlockCache

MiB = 1 << 20
ROW = ("SELECT rowid, tag, mode, filename, value FROM Cache WHERE key = ? AND raw = ?"
       " AND (expire_time IS NULL OR expire_time > ?)")


@pytest.fixture
def cache(tmp_path):
    c = diskcache.Cache(str(tmp_path / "c"), eviction_policy="least-recently-used",
                        statistics=False)
    yield c
    c.close()


def test_disk_put_and_sql_find_what_set_stored(cache):
    cache.set("small", b"inline bytes", tag=7)
    cache.set("large", io.BytesIO(b"x" * 100_000), read=True, tag=9)
    db_key, raw = cache._disk.put("small")
    rows = cache._sql(ROW, (db_key, raw, time.time())).fetchall()
    assert len(rows) == 1
    _rowid, tag, mode, filename, value = rows[0]
    assert (tag, mode, filename, bytes(value)) == (7, diskcache.core.MODE_RAW, None,
                                                   b"inline bytes")
    db_key, raw = cache._disk.put("large")
    (_rowid, tag, mode, filename, value), = cache._sql(ROW, (db_key, raw, time.time()))
    assert (tag, mode, value) == (9, diskcache.core.MODE_BINARY, None)
    with open(os.path.join(cache.directory, filename), "rb") as f:
        assert f.read() == b"x" * 100_000
    db_key, raw = cache._disk.put("absent")
    assert cache._sql(ROW, (db_key, raw, time.time())).fetchall() == []


def test_writing_access_time_is_a_touch_for_lru_eviction(tmp_path):
    c = diskcache.Cache(str(tmp_path / "lru"), eviction_policy="least-recently-used",
                        size_limit=3 * MiB + MiB // 2, cull_limit=1, statistics=False)
    try:
        for name in ("a", "b", "c"):
            c.set(name, io.BytesIO(bytes(MiB)), read=True)
        db_key, raw = c._disk.put("a")
        rowid, = c._sql("SELECT rowid FROM Cache WHERE key = ? AND raw = ?",
                        (db_key, raw)).fetchone()
        with c.transact(retry=True):
            c._sql("UPDATE Cache SET access_time = ? WHERE rowid = ?", (time.time() + 60, rowid))
        c.set("d", io.BytesIO(bytes(MiB)), read=True)  # over the limit: one entry goes
        assert sorted(c) == ["a", "c", "d"]  # "a" was touched: the oldest untouched one went
    finally:
        c.close()


def test_disk_store_and_filename_have_the_shape_the_block_cache_overrides():
    assert list(inspect.signature(diskcache.Disk.store).parameters) == [
        "self", "value", "read", "key"]
    assert inspect.signature(diskcache.Disk.store).parameters["key"].default is \
        diskcache.core.UNKNOWN
    assert list(inspect.signature(diskcache.Disk.filename).parameters) == [
        "self", "key", "value"]


def test_disk_store_answers_size_mode_filename_value(tmp_path):
    disk = diskcache.Disk(str(tmp_path))
    size, mode, filename, value = disk.store(io.BytesIO(b"y" * 50_000), True)
    assert (size, mode, value) == (50_000, diskcache.core.MODE_BINARY, None)
    assert os.path.getsize(os.path.join(tmp_path, filename)) == 50_000
    name, full_path = disk.filename()
    assert full_path == os.path.join(str(tmp_path), name)


def test_the_block_cache_takes_the_fast_lookup(tmp_path, monkeypatch):
    """With this diskcache, ``BlockCache`` finds blocks through ``_disk`` and ``_sql``, not
    through its fallback for a diskcache without them."""
    bc = BlockCache(tmp_path / "blocks", 64 * MiB, block_size=MiB)
    try:
        def refuse(*args):
            raise AssertionError("BlockCache fell back to Cache.get: _disk or _sql is gone")

        monkeypatch.setattr(bc, "_lookup_slow", refuse)
        data = os.urandom(MiB)
        assert bc.put("sha-contract", 0, data)
        assert bytes(bc.get("sha-contract", 0)) == data
        assert bc.get("sha-contract", 1) is None
    finally:
        bc.close()
