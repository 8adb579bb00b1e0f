"""The catalog as a portable thing without any store: object metadata, copies, dump and load."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
from pathlib import Path

import pytest

from omnifs.catalog import ROOT_INODE, Catalog, portable
from omnifs.catalog.engine_copy import tree_checksum
from omnifs.layout import (
    META_CTIME,
    META_MODE,
    FileAttrs,
    attrs_of,
    file_attrs,
    mtime_ns_of,
    object_meta,
)
from omnifs.providers import ObjectInfo
from omnifs.providers.errors import IntegrityError, InvalidInput
from omnifs.snapshot import parse_key, snapshot_key

FILE = stat.S_IFREG | 0o644


def build(cat: Catalog) -> dict[str, int]:
    """A small tree with every kind of thing the catalog alone knows."""
    d = cat.ns.create(ROOT_INODE, "dir", stat.S_IFDIR | 0o2750, 0, 4321)
    cat.ns.create(ROOT_INODE, "empty", stat.S_IFDIR | 0o700, 1000, 1000)
    f = cat.ns.create(d.id, "file", stat.S_IFREG | 0o600, 1000, 1000, size=3, sha256="ab" * 32,
                      version=1, mtime_ns=1_000_000_000_123_456_789)
    cat.ns.add_link(f.id, ROOT_INODE, "hard")
    cat.ns.create(ROOT_INODE, "link", stat.S_IFLNK | 0o777, 0, 0, target="dir/file")
    cat.ns.create(ROOT_INODE, "fifo", stat.S_IFIFO | 0o640, 0, 0)
    cat.ns.set_xattr(f.id, b"user.bin", bytes(range(256)))
    cat.ns.set_xattr(d.id, b"user.empty", b"")
    cat.replicas.add_version(f.id, 1, "ab" * 32, 3, 1_000_000_000_123_456_789)
    cat.replicas.set(f.id, "one", "dir/file", 1, "synced", "etag1", 1234.5)
    cat.work.enqueue("delete", {"provider": "one", "key": "old/gone"})
    return {"dir": d.id, "file": f.id}


def tree(cat: Catalog) -> dict:
    return {t: cat.db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
            for t in ("inodes", "links", "xattrs", "versions", "replicas")}


def test_object_metadata_round_trips_the_attributes():
    attrs = FileAttrs(mode=stat.S_IFREG | 0o4755, uid=1234, gid=5678,
                      ctime_ns=1_700_000_000_000_000_001, origin=("c0ffee", 42))
    meta = object_meta("ab" * 32, 1_700_000_000_123_456_789, attrs)
    assert meta[META_MODE] == "4755" and meta[META_CTIME] == "1700000000.000000001"
    assert all(k.replace("_", "").isalnum() and k.islower() for k in meta)  # Azure: no '-'
    assert sum(len(k) + len(v) for k, v in meta.items()) < 300  # S3 allows 2 KiB
    info = ObjectInfo("k", metadata=meta)
    got = attrs_of(info)
    assert (got.mode, got.uid, got.gid, got.ctime_ns, got.origin) == (
        0o4755, 1234, 5678, 1_700_000_000_000_000_001, ("c0ffee", 42))
    assert mtime_ns_of(info) == 1_700_000_000_123_456_789  # exact, no float rounding


@pytest.mark.parametrize("meta", [
    {META_MODE: "100644"}, {META_MODE: "rwx"}, {"omnifs_uid": "-1"},
    {"omnifs_uid": "99999999999"}, {"omnifs_origin": "nocolon"}, {META_CTIME: "soon"},
])
def test_garbage_in_object_metadata_is_ignored(meta):
    got = attrs_of(ObjectInfo("k", metadata=meta))
    assert got == FileAttrs()


def test_file_attrs_of_an_inode(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    f = cat.ns.create(ROOT_INODE, "f", stat.S_IFREG | 0o640, 7, 8)
    a = file_attrs(f, cat.catalog_id())
    assert (a.mode, a.uid, a.gid, a.origin) == (f.mode, 7, 8, (cat.catalog_id(), f.id))
    assert cat.catalog_id() == cat.catalog_id()  # made once
    cat.close()


def test_snapshot_keys_sort_by_time_and_parse_back():
    a, b = snapshot_key(1_700_000_000.5, "host one"), snapshot_key(1_700_000_001.25, "h")
    assert a < b and a.startswith(".omnifs/catalog/") and " " not in a
    assert parse_key(b) == (1_700_000_001.25, "h")
    assert parse_key(".omnifs/catalog/other") is None


def test_change_mark_moves_with_the_tree_only(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    ids = build(cat)
    mark = cat.ns.change_mark()
    cat.replicas.set(ids["file"], "two", "dir/file", 1, "pending")  # replication: no change
    cat.work.enqueue("replicate", {"inode": ids["file"], "provider": "two"})
    assert cat.ns.change_mark() == mark
    cat.ns.set_xattr(ids["dir"], b"user.more", b"x")
    assert cat.ns.change_mark() != mark
    cat.close()


@pytest.fixture
def new_catalog(catalog_target, request, tmp_path):
    """Factory: a fresh catalog on the engine of ``catalog_target`` (a file, or a database
    of the session's PostgreSQL cluster); ``engine="sqlite"`` a SQLite one whatever it is."""
    made: list[Catalog] = []

    def make(engine: str | None = None) -> Catalog:
        if engine == "sqlite" or (engine is None and isinstance(catalog_target, Path)):
            c = Catalog(tmp_path / f"new{len(made)}.db")
        else:
            c = Catalog(request.getfixturevalue("postgres").database("io"))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_copy_check_and_restore(cat, new_catalog, tmp_path):
    build(cat)
    cat.set_meta("daemon", "host:1")
    cat.db.execute("INSERT INTO health_samples (provider, at, latency, ok) VALUES ('x', 1, 1, 1)")
    gone = cat.ns.create(ROOT_INODE, "gone", FILE, 0, 0)
    cat.ns.remove_name(ROOT_INODE, "gone")
    cat.ns.delete(gone.id)  # its id is never handed out again
    found = portable.copy_catalog(cat.target, tmp_path / "copy.db")
    assert found["inodes"] == 6 and found["links"] == 1 and "health_samples" not in found
    assert portable.check_copy(tmp_path / "copy.db") == found
    # into the same engine and into the other one (a snapshot of either restores into either)
    for fresh in (new_catalog(), new_catalog("sqlite" if cat.is_postgres else "postgresql")):
        assert fresh.is_empty()
        portable.restore(fresh, tmp_path / "copy.db")
        assert tree_checksum(fresh) == tree_checksum(cat)
        assert fresh.get_meta("daemon") is None and fresh.catalog_id() == cat.catalog_id()
        assert fresh.ns.create(ROOT_INODE, "new", FILE, 0, 0).id > gone.id
    (tmp_path / "bad.db").write_bytes(b"SQLite format 3\0" + b"\0" * 5000)
    with pytest.raises(IntegrityError):
        portable.check_copy(tmp_path / "bad.db")


def test_dump_load_round_trip_and_refusals(cat, new_catalog):
    build(cat)
    gone = cat.ns.create(ROOT_INODE, "gone", FILE, 0, 0)
    cat.ns.remove_name(ROOT_INODE, "gone")
    cat.ns.delete(gone.id)
    out = io.StringIO()
    counts = portable.dump(cat, out)
    data = json.loads(out.getvalue())
    assert data["format"] == "omnifs-dump" and data["counts"] == counts
    xattr = next(r for r in data["xattrs"] if r["value"] != {"base64": ""})
    assert set(xattr["value"]) == {"base64"}

    other = new_catalog()
    assert portable.load(other, data) == counts
    assert tree_checksum(other) == tree_checksum(cat)
    assert other.catalog_id() == cat.catalog_id()
    assert ([w.payload for w in other.work.work_items()]
            == [w.payload for w in cat.work.work_items()])
    with pytest.raises(InvalidInput, match="not empty"):
        portable.load(other, data)
    portable.load(other, data, force=True)
    assert tree_checksum(other) == tree_checksum(cat)
    assert other.ns.create(ROOT_INODE, "new", FILE, 0, 0).id > gone.id

    short = json.loads(out.getvalue())
    short["links"] = []  # a truncated or edited dump: nothing is loaded
    empty = new_catalog()
    with pytest.raises(IntegrityError, match="links"):
        portable.load(empty, short)
    assert empty.ns.count_inodes() == 1 and not portable.has_tree(empty)
    with pytest.raises(InvalidInput, match="not an omnifs dump"):
        portable.load(empty, {"hello": 1})
    if not empty.is_postgres:
        empty.close()
        assert sqlite3.connect(empty.target).execute(
            "SELECT count(*) FROM inodes").fetchone() == (1,)
