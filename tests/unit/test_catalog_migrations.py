"""cat.migrations: a migration's state per object, resumable, paged and counted."""

import pytest

from omnifs.catalog import Catalog, migration_id
from omnifs.providers import InvalidInput


def _create(cat, mid="m1", checksum="sha256:aa", n=3):
    return cat.migrations.create(
        mid, plan_checksum=checksum, src="s3://a", dst="gs://b", mode="copy",
        plan={"summary": {}}, entries=[(f"k{i:03}", "copy", i) for i in range(n)])


def test_migration_id_is_the_plan_checksum_prefix():
    assert migration_id("sha256:" + "ab" * 32) == "ab" * 8


def test_create_is_idempotent_for_the_same_plan_and_refuses_another(cat):
    m = _create(cat)
    assert m.state == "planned" and m.plan == {"summary": {}}
    assert _create(cat).created_at == m.created_at
    with pytest.raises(InvalidInput):
        _create(cat, checksum="sha256:bb")


def test_items_page_in_key_order_and_filter(cat):
    _create(cat, n=12)
    assert [i.key for i in cat.migrations.items("m1", page=5)] == [f"k{i:03}" for i in range(12)]
    cat.migrations.update_items("m1", [("k003", {"state": "failed", "attempts": 2,
                                                 "error": "boom\nsecond line"}),
                                       ("k004", {"state": "done", "sha256": "x"})])
    failed = list(cat.migrations.items("m1", states=["failed"]))
    assert [(i.key, i.attempts, i.error) for i in failed] == [("k003", 2, "boom")]
    assert cat.migrations.item("m1", "k004").sha256 == "x"
    counts = cat.migrations.counts("m1")
    assert counts["copy"]["pending"]["objects"] == 10
    assert counts["copy"]["done"] == {"objects": 1, "bytes": 4}


def test_updating_while_iterating_sees_every_item_once(cat):
    _create(cat, n=11)
    seen = []
    for it in cat.migrations.items("m1", states=["pending"], page=4):
        seen.append(it.key)
        cat.migrations.update_items("m1", [(it.key, {"state": "done"})])
    assert len(seen) == 11 == len(set(seen))


def test_bad_fields_and_states_are_refused(cat):
    _create(cat)
    with pytest.raises(ValueError):
        cat.migrations.update_items("m1", [("k000", {"nope": 1})])
    with pytest.raises(ValueError):
        cat.migrations.update_items("m1", [("k000", {"state": "weird"})])
    with pytest.raises(ValueError):
        cat.migrations.set_state("m1", "weird")


def test_usage_adds_up_and_state_survives_reopen(cat, tmp_path):
    _create(cat)
    cat.migrations.add_usage("m1", [("src", "get_requests", 2), ("dst", "bytes_in", 10)])
    cat.migrations.add_usage("m1", [("src", "get_requests", 3)])
    cat.migrations.set_state("m1", "running", started_at=5.0)
    assert cat.migrations.usage("m1") == {"src": {"get_requests": 5}, "dst": {"bytes_in": 10}}
    again = Catalog(cat.target)
    m = again.migrations.get("m1")
    assert m.state == "running" and m.started_at == 5.0
    assert [x.id for x in again.migrations.list()] == ["m1"]
    again.close()
