"""Each fallback of omnifs/fallbacks.py, forced on real servers: the feature still works.

``forced_off`` turns one ability off on one open provider, as a store that
lacks it would look (and as ``[providers.NAME] disable`` does through
``open_provider``); the same call then goes the fallback's way. One test per
feature of issue 21, at least:

* copy, server-side copy off -> streamed and hashed: the copy and rename tests;
* verification, native checksums off -> the bytes hashed: the two verification tests;
* tiers off -> a copy keeping its tier, and a cost tier move, skip the tier and say why;
* the daemon's replica writes, conditional writes off -> the catalog-side check
  (the mount's: tests/mount/test_overwrite_behind.py);
* governance, object lock off -> omnifs-enforced, said in the report:
  tests/mount/test_gov_lock_disabled.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
from decimal import Decimal

import pytest

from omnifs import fallbacks
from omnifs.catalog import Catalog
from omnifs.copy_options import Options
from omnifs.costing.moves import change_tier
from omnifs.migration.plan import Entry
from omnifs.migration.sides import Sides
from omnifs.migration.verify import Usage, check_entry
from omnifs.object_copy import copy_object
from omnifs.providers import open_provider
from omnifs.providers.capabilities import forced_off
from omnifs.replication import drain
from omnifs.work import Move, TierChange, enqueue
from tests.integration.test_daemon import write_file

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def _pair_over_one_bucket(make_settings):
    settings = make_settings("s3", name="a")
    a = open_provider(settings)
    settings.name = "b"
    return a, open_provider(settings)


def test_copy_in_one_store_streams_when_the_store_cannot_copy(make_settings):
    src, dst = _pair_over_one_bucket(make_settings)
    try:
        src.write_bytes("src", DATA)  # no SHA-256 recorded
        assert fallbacks.server_copy(src, dst)
        copy_object(src, "src", dst, "server")
        # the store's copy keeps the metadata verbatim: no SHA-256 was added
        assert dst.head("server").sha256 is None
        forced_off(src, "server_side_copy")
        assert not fallbacks.server_copy(src, dst)
        copy_object(src, "src", dst, "streamed")
        assert dst.head("streamed").sha256 == SHA  # hashed on its way through this machine
        assert dst.read_bytes("streamed") == DATA
    finally:
        src.close()
        dst.close()


def test_verification_hashes_the_bytes_when_the_store_has_no_native_checksum(make_provider):
    src, dst = make_provider("gs"), make_provider("file")
    src.write_bytes("obj", DATA)
    info = src.head("obj")
    assert set(fallbacks.native_expect(src, info)) == {"crc32c"}
    forced_off(src, "checksums")
    assert fallbacks.native_expect(src, info) == {}
    assert fallbacks.shared_natives(src, dst) == ()
    for small in (1 << 30, 0):  # read whole into memory, and streamed
        copy_object(src, "obj", dst, f"copy{small}", options=Options(small_object=small))
        assert dst.head(f"copy{small}").sha256 == SHA
        assert dst.read_bytes(f"copy{small}") == DATA


def test_keep_tier_skips_a_store_without_tiers(make_provider, caplog):
    src, dst = make_provider("s3"), make_provider("az", name="tierless")
    src.write_bytes("obj", DATA)
    src.set_tier("obj", "STANDARD_IA")
    keep = Options(keep_tier=True)
    copy_object(src, "obj", dst, "tiered", options=keep)
    assert dst.head("tiered").tier == "Cool"
    forced_off(dst, "tiers")
    assert fallbacks.tier_for(dst, "STANDARD_IA") is None
    with caplog.at_level(logging.WARNING, logger="omnifs.transfer"):
        copy_object(src, "obj", dst, "plain", options=keep)
    assert dst.head("plain").tier != "Cool"
    assert dst.read_bytes("plain") == DATA
    assert "cannot keep tier 'STANDARD_IA' (this store has: none)" in caplog.text
    assert "tierless: cannot keep tier" in caplog.text


def test_fast_verify_reads_the_bytes_when_a_store_has_no_native_checksum(make_provider):
    src, dst = make_provider("gs"), make_provider("gs")
    src.write_bytes("obj", DATA)
    dst.write_bytes("obj", DATA)
    sides = Sides(src, "", dst, "")
    entry = Entry("copy", "obj", len(DATA), "missing")

    def check() -> dict[str, float]:
        usage = Usage()
        assert check_entry(sides, entry, None, fast=True, usage=usage).verdict == "ok"
        return {f"{side} {kind}": n for side, kind, n in usage.drain()}

    assert "dst bytes_out" not in check()  # equal crc32c sufficed: no byte read
    forced_off(dst, "checksums")
    spent = check()  # both sides hashed
    assert spent["src bytes_out"] == spent["dst bytes_out"] == len(DATA)


def test_a_rename_moves_the_object_by_streaming_when_the_store_cannot_copy(make_provider,
                                                                           tmp_path):
    store = forced_off(make_provider("s3", name="one"), "server_side_copy")
    cat = Catalog(tmp_path / "catalog.db")
    ino = write_file(cat, store, "d/old.bin", DATA, [])
    with cat.transaction():
        cat.ns.move_entry(ino, cat.ns.resolve("d").id, "new.bin")
        for r in cat.replicas.of(ino):
            enqueue(cat.work, Move(inode=ino, provider=r.provider, src=r.key))
    drain(cat, {"one": store})
    assert store.read_bytes("d/new.bin") == DATA
    assert store.head("d/new.bin").sha256 == SHA
    assert not store.exists("d/old.bin")
    assert [r.key for r in cat.replicas.of(ino)] == ["d/new.bin"]


def _conflicts(cat: Catalog, directory: str, name: str) -> list[str]:
    parent = cat.ns.resolve(directory).id
    return sorted(e.name for e in cat.ns.children(parent)
                  if e.name.startswith(f"{name}.conflict-"))


@pytest.mark.parametrize("forced", [False, True], ids=["store-precondition", "forced-off"])
def test_a_replica_changed_behind_our_back_is_kept_beside_ours(make_provider, tmp_path, forced):
    """The replicator's write of a replica is conditional (if-match the catalog's etag,
    if-absent for a first one); forced off, a HEAD compares first. Either way their
    version is kept as a conflict file and ours goes to the key."""
    a, b = make_provider("file", name="a"), make_provider("s3", name="b")
    if forced:
        forced_off(b, "conditional_writes")
    check = fallbacks.write_check(b, False, "etag")
    assert (check.if_match, check.compare_first) == ("etag", forced)
    providers = {"a": a, "b": b}
    cat = Catalog(tmp_path / "catalog.db")
    ino = write_file(cat, a, "d/f.bin", DATA, ["b"])
    drain(cat, providers)
    assert b.read_bytes("d/f.bin") == DATA
    new = os.urandom(5000)
    write_file(cat, a, "d/f.bin", new, ["b"])  # b's replica is stale now, its copy queued
    b.write_bytes("d/f.bin", b"theirs, behind our back")
    # a first replica whose key someone else took meanwhile
    write_file(cat, a, "d/g.bin", DATA, ["b"])
    b.write_bytes("d/g.bin", b"theirs first")
    drain(cat, providers)
    assert b.read_bytes("d/f.bin") == new and b.read_bytes("d/g.bin") == DATA
    [kept_f] = _conflicts(cat, "d", "f.bin")
    [kept_g] = _conflicts(cat, "d", "g.bin")
    assert b.read_bytes(f"d/{kept_f}") == b"theirs, behind our back"
    assert b.read_bytes(f"d/{kept_g}") == b"theirs first"
    # the kept versions are files like any other: replicated to the file's other store
    drain(cat, providers)
    assert a.read_bytes(f"d/{kept_f}") == b"theirs, behind our back"
    assert [r.state for r in cat.replicas.of(ino)] == ["synced", "synced"]


def test_a_tier_move_on_a_store_whose_tiers_are_disabled_leaves_the_copy_and_says_why(
        make_settings, tmp_path):
    """``disable = ["tiers"]`` (as omnifs.toml gives it to open_provider): ``cost apply``'s
    tier move ends without touching the copy, its reason in one line, and the file reads
    as before; on the same bucket with tiers on, the move is made."""
    settings = make_settings("s3", name="cold")
    on = open_provider(settings)
    settings.extra["disable"] = ["tiers"]
    off = open_provider(settings)
    assert on.capabilities.tiers and off.capabilities.tiers == ()
    cat = Catalog(tmp_path / "catalog.db")
    ino = write_file(cat, on, "d/f.bin", DATA, [])

    def move(store) -> tuple[str, str | None]:
        m = cat.cost.record_move(inode=ino, path="/d/f.bin", kind="tier", store="cold",
                                 source="STANDARD", target="STANDARD_IA",
                                 saving_per_month=Decimal("0.5"), one_time=Decimal("0.01"))
        change_tier(cat, {"cold": store}, TierChange(inode=ino, provider="cold",
                                                     tier="STANDARD_IA", move=m))
        got = cat.cost.move(m)
        return got.state, got.detail

    assert move(off) == ("failed", "cold has no tier like STANDARD_IA")
    assert on.head("d/f.bin").tier in (None, "STANDARD")
    assert cat.replicas.get(ino, "cold").tier is None
    assert off.read_bytes("d/f.bin") == DATA
    assert move(on) == ("done", None)
    assert on.head("d/f.bin").tier == "STANDARD_IA"
    on.close()
    off.close()
