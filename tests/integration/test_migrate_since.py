"""``omnifs migrate plan --since OLD.json``: incremental plans over real servers.

A second plan after a copy finds exactly what changed since (changed and new
objects), and reuses the first inventory's SHA-256s for the source objects
that did not change, so the pairs the listings cannot decide are headed on
the destination side only (counted with the faulty wrapper's ``calls``).
"""

from __future__ import annotations

import hashlib
import time

import pytest

from omnifs.migration.plan import Entry, Reused, plan_migration, unchanged
from omnifs.migration.planfile import load
from omnifs.providers import META_SHA256, ObjectInfo, open_provider
from omnifs.providers.faulty import FaultyProvider
from omnifs.tree_copy import copy_tree
from tests.cli import one_line_error, run, write_config

PAIRS = [("file", "s3"), ("s3", "gs"), ("gs", "az")]


def _put(p, key: str, data: bytes) -> None:
    p.write_bytes(key, data, metadata={META_SHA256: hashlib.sha256(data).hexdigest()})


@pytest.mark.parametrize("pair", PAIRS, indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_second_plan_after_a_copy_moves_only_what_changed(pair, tmp_path):
    cfg, src, dst = pair
    for i in range(8):
        _put(src, f"tree/d{i % 3}/f{i}.txt", f"object number {i}".encode())
    first = tmp_path / "first.json"
    run("migrate", "plan", "src:/tree", "dst:/copy", "--no-probe", "-o", str(first),
        config=cfg, check=True)
    old = load(first)
    assert {e.action for e in old.entries} == {"copy"} and len(old.entries) == 8
    # what tells the next plan an object is unchanged
    assert all(e.src_etag or e.src_mtime is not None for e in old.entries)

    result = copy_tree(src, "tree", dst, "copy")
    assert result.ok and len(result.copied) == 8
    time.sleep(1.1)  # a store's last-modified has one-second resolution
    _put(src, "tree/d0/f0.txt", b"object NUMBER 0")  # same size, other bytes
    _put(src, "tree/d1/f4.txt", b"object number 4, grown")
    _put(src, "tree/d2/new.txt", b"a new object")

    second = tmp_path / "second.json"
    proc = run("migrate", "plan", "src:/tree", "dst:/copy", "--since", str(first),
               "--no-probe", "-o", str(second), config=cfg, check=True)
    plan = load(second)
    moving = {e.key: e.action for e in plan.entries if e.action != "skip"}
    assert moving == {"d0/f0.txt": "overwrite", "d1/f4.txt": "overwrite",
                      "d2/new.txt": "copy"}, moving
    assert sum(e.action == "skip" for e in plan.entries) == 6
    assert "reused the checksums of " in proc.stdout.decode()

    # the run copies those three; a third plan since the second finds nothing to do
    assert len(copy_tree(src, "tree", dst, "copy").copied) == 3
    third = tmp_path / "third.json"
    run("migrate", "plan", "src:/tree", "dst:/copy", "--since", str(second), "--no-probe",
        "-o", str(third), config=cfg, check=True)
    assert {e.action for e in load(third).entries} == {"skip"}


def test_unchanged_objects_need_no_source_head(make_settings):
    # a local tree lists no checksums: against S3 every equal-size pair needs a head
    src = FaultyProvider(open_provider(make_settings("file", name="src")))
    dst = open_provider(make_settings("s3", name="dst"))
    try:
        for i in range(6):
            data = f"same bytes {i}".encode()
            _put(src, f"a/{i}.bin", data)
            _put(dst, f"b/{i}.bin", data)
        first = plan_migration(src, "a", dst, "b")
        assert {e.action for e in first} == {"skip"}
        assert src.calls["head"] == 6 and all(e.sha256 for e in first)

        src.calls.clear()
        reused = Reused()
        again = plan_migration(src, "a", dst, "b", since=first, reused=reused)
        assert [(e.key, e.action) for e in again] == [(e.key, e.action) for e in first]
        assert src.calls["head"] == 0 and src.calls["list"] == 1
        assert (reused.checksums, reused.heads_saved) == (6, 6)

        # a changed object is headed again (its old checksum is not trusted)
        time.sleep(0.01)
        _put(src, "a/3.bin", b"other bytes3")
        src.calls.clear()
        reused = Reused()
        third = plan_migration(src, "a", dst, "b", since=again, reused=reused)
        assert {e.key: e.action for e in third if e.action != "skip"} == {"3.bin": "overwrite"}
        assert src.calls["head"] == 1 and reused.heads_saved == 5
    finally:
        src.close()
        dst.close()


def test_unchanged_is_size_and_etag_else_mtime():
    old = Entry("copy", "k", 5, "missing", src_etag="e1", src_mtime=100.0)
    assert unchanged(old, ObjectInfo("k", 5, last_modified=200.0, etag="e1"))
    assert not unchanged(old, ObjectInfo("k", 5, last_modified=100.0, etag="e2"))
    assert not unchanged(old, ObjectInfo("k", 6, last_modified=100.0, etag="e1"))
    assert unchanged(old, ObjectInfo("k", 5, last_modified=100.0))
    assert not unchanged(old, ObjectInfo("k", 5, last_modified=101.0))
    # an older plan without them: nothing can be reused
    assert not unchanged(Entry("copy", "k", 5, "missing"), ObjectInfo("k", 5, 100.0, "e1"))
    assert not unchanged(Entry("delete", "k", 5, "extra", src_etag="e1"),
                         ObjectInfo("k", 5, etag="e1"))


def test_since_refuses_another_places_or_an_edited_plan(make_settings, tmp_path):
    a, b = make_settings("file", name="one"), make_settings("s3", name="two")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    pa = open_provider(a)
    _put(pa, "x/f.txt", b"data")
    pa.close()
    old = tmp_path / "old.json"
    run("migrate", "plan", "one:/x", "two:/y", "--no-probe", "-o", str(old), config=cfg,
        check=True)
    out = str(tmp_path / "new.json")
    other = run("migrate", "plan", "one:/x", "two:/z", "--since", str(old), "-o", out,
                config=cfg)
    assert other.returncode == 2
    assert "plan for another DST (two:/y)" in one_line_error(other)
    old.write_bytes(old.read_bytes().replace(b'"size":4', b'"size":5', 1))
    edited = run("migrate", "plan", "one:/x", "two:/y", "--since", str(old), "-o", out,
                 config=cfg)
    assert edited.returncode == 2 and "was edited or damaged" in one_line_error(edited)


def test_an_older_plan_without_the_new_fields_loads_and_keeps_its_checksum(tmp_path):
    """Plans written before time_estimate / src_etag / src_mtime existed still load."""
    from omnifs.migration.planfile import MigrationPlan, Place, checksum

    plan = MigrationPlan(src=Place("s3://b/a", "s3://b", "s3://b", "a"),
                         dst=Place("gs://c/a", "gs://c", "gs://c", "a"), mode="copy",
                         entries=[Entry("copy", "k", 3, "missing")])
    data = plan.to_json()
    assert "time_estimate" not in data
    assert "src_etag" not in data["entries"][0] and "src_mtime" not in data["entries"][0]
    path = tmp_path / "old.json"
    plan.save(path)
    back = load(path)
    assert back.time_estimate is None and back.entries[0].src_etag is None
    assert back.to_json()["checksum"] == data["checksum"] == checksum(back.body())


def test_the_streamed_checksum_is_the_canonical_one(tmp_path):
    """save() hashes entry by entry: the same checksum as the whole body's canonical JSON."""
    import json

    from omnifs.migration.planfile import MigrationPlan, Place, checksum

    entries = [Entry("copy", f"d/ünï {i} #%.bin", i, "missing", src_tier="STANDARD",
                     checksums={"md5": f"{i:032x}"}, src_etag=f"e{i}", src_mtime=1.5 + i)
               for i in range(50)]
    entries.append(Entry("delete", "z", 3, "extra", dst_tier="COOL", dst_size=3))
    plan = MigrationPlan(src=Place("a:/x", "a", "s3://a", "x"),
                         dst=Place("b:/y", "b", "gs://b", "y"), mode="move", entries=entries,
                         time_estimate={"seconds": 1.0, "parallel": 8, "objects": 51,
                                        "bytes": 1225, "overhead": 0.01,
                                        "read_bytes_per_s": 1e6, "write_bytes_per_s": 2e6,
                                        "measured": "2026-12-06"})
    path = tmp_path / "p.json"
    plan.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    body = {k: v for k, v in data.items() if k != "checksum"}
    assert data["checksum"] == checksum(body) == checksum(plan.body()) == plan.checksum()
    back = load(path)
    assert back.entries == entries and back.time_estimate == plan.time_estimate
