"""Typed work items (omnifs/work.py) and the free_key steps (omnifs/replication.py).

The payload round trip is the wire format existing catalogs hold: the
payloads below are written out literally, as the catalog stores them. The
free_key steps run against a local directory store (no server needed).
"""

from __future__ import annotations

import hashlib
import stat

import pytest

from omnifs import work
from omnifs.catalog import ROOT_INODE, Catalog, WorkItem
from omnifs.providers import InvalidInput, NotFound, ProviderSettings, open_provider
from omnifs.replication import Relocation, execute, free_key, free_key_steps
from omnifs.work import (
    Attrs,
    Delete,
    DropCopy,
    KeepVersion,
    Malformed,
    Move,
    Replicate,
    TierChange,
)

FILE = stat.S_IFREG | 0o644

#: one item of each kind with the payload the catalog stores for it
WIRE = [
    (Replicate(inode=3, provider="b"), "replicate", {"inode": 3, "provider": "b"}),
    (Move(inode=3, provider="b", src="old/f"), "move",
     {"inode": 3, "provider": "b", "src": "old/f"}),
    (Delete(provider="a", key="gone/f"), "delete", {"provider": "a", "key": "gone/f"}),
    (Attrs(inode=7, provider="a"), "attrs", {"inode": 7, "provider": "a"}),
    (TierChange(inode=4, provider="a", tier="STANDARD_IA", move=2), "tier",
     {"inode": 4, "provider": "a", "tier": "STANDARD_IA", "move": 2, "archive_only": 0,
      "asked": 0}),
    (DropCopy(inode=4, provider="c", after="b", move=3), "drop",
     {"inode": 4, "provider": "c", "after": "b", "move": 3}),
    (KeepVersion(provider="a", key=".omnifs/kept/3-2-ab", path="/d/f", made_ns=5,
                 replaced_ns=9), "keep",
     {"provider": "a", "key": ".omnifs/kept/3-2-ab", "path": "/d/f", "made_ns": 5,
      "replaced_ns": 9}),
]


def listed(kind: str, payload: dict) -> WorkItem:
    return WorkItem(1, kind, payload, "claimed", 0, 0.0, "w", 0.0, None)


# -- the wire format -------------------------------------------------------------------

@pytest.mark.parametrize(("item", "kind", "payload"), WIRE)
def test_payload_round_trip(item, kind, payload):
    assert kind == item.KIND
    assert item.payload() == payload
    assert work.parse(kind, payload) == item
    assert work.from_item(listed(kind, payload)) == item


def test_every_kind_is_listed_once():
    assert sorted(work.KINDS) == ["attrs", "delete", "drop", "keep", "move", "replicate",
                                  "tier"]
    assert {item.KIND for item, _, _ in WIRE} == set(work.KINDS)


def test_fields_a_kind_does_not_have_are_ignored():
    # a stored move may name its destination: the executor takes it from the file's path
    stored = {"inode": 3, "provider": "b", "src": "old/f", "dst": "new/f"}
    assert work.parse("move", stored) == Move(inode=3, provider="b", src="old/f")


@pytest.mark.parametrize(("kind", "payload", "message"), [
    ("tiering", {"inode": 1, "provider": "a"}, "unknown work kind 'tiering'"),
    ("tier", {"inode": 1, "provider": "a"}, "'tier' is None, not a string"),
    ("replicate", {"provider": "a"}, "'inode' is None, not an integer"),
    ("replicate", {"inode": "1", "provider": "a"}, "'inode' is '1', not an integer"),
    ("attrs", {"inode": True, "provider": "a"}, "'inode' is True, not an integer"),
    ("move", {"inode": 1, "provider": "a"}, "'src' is None, not a string"),
    ("delete", {"provider": 5, "key": "k"}, "'provider' is 5, not a string"),
    ("delete", ["a", "k"], "payload is not an object"),
])
def test_a_malformed_item_is_one_error(kind, payload, message):
    with pytest.raises(Malformed) as e:
        work.parse(kind, payload)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, InvalidInput)  # the CLI prints it as one line


# -- dedup keys and what an item touches -------------------------------------------------

def test_dedup_keys():
    assert Replicate(inode=3, provider="b").dedup == "replicate:3:b"
    assert Move(inode=3, provider="b", src="x").dedup == "move:3:b"
    assert Attrs(inode=3, provider="b").dedup == "attrs:3:b"
    # two deletes of one key may both be queued: each runs only once no row points at it
    assert Delete(provider="b", key="x").dedup is None
    # one pending item per (kind, file, provider), whatever else it says
    assert Move(inode=3, provider="b", src="x").dedup == Move(inode=3, provider="b",
                                                              src="y").dedup
    assert len({Replicate(inode=3, provider="b").dedup, Replicate(inode=3, provider="c").dedup,
                Replicate(inode=4, provider="b").dedup, Attrs(inode=3, provider="b").dedup}) == 4


def test_providers_target_and_named_objects():
    for item, _, _ in WIRE:
        assert item.providers == ((item.provider,) if not isinstance(item, DropCopy)
                                  else (item.provider, *item.stores_after))
        assert item.target == item.provider
    assert Move(inode=3, provider="b", src="x").objects == ("x",)
    assert Delete(provider="a", key="k").objects == ("k",)
    assert Replicate(inode=3, provider="b").objects == ()
    assert Attrs(inode=3, provider="b").objects == ()


def test_items_are_frozen():
    item = Replicate(inode=3, provider="b")
    with pytest.raises(AttributeError):
        item.provider = "c"  # type: ignore[misc]


def test_enqueue_stores_kind_payload_and_dedup(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    try:
        first = work.enqueue(cat.work, Move(inode=3, provider="b", src="a"))
        again = work.enqueue(cat.work, Move(inode=3, provider="b", src="b"))
        assert again == first  # the pending move of (3, b) now says src b
        d1 = work.enqueue(cat.work, Delete(provider="b", key="k"))
        d2 = work.enqueue(cat.work, Delete(provider="b", key="k"))
        later = work.enqueue(cat.work, Attrs(inode=3, provider="b"), not_before=2e9)
        assert len({first, d1, d2, later}) == 4
        items = cat.work.work_items()
        assert [(i.kind, i.payload) for i in items] == [
            ("move", {"inode": 3, "provider": "b", "src": "b"}),
            ("delete", {"provider": "b", "key": "k"}),
            ("delete", {"provider": "b", "key": "k"}),
            ("attrs", {"inode": 3, "provider": "b"})]
        assert items[-1].not_before == 2e9
        assert [work.from_item(i) for i in items] == [
            Move(inode=3, provider="b", src="b"), Delete(provider="b", key="k"),
            Delete(provider="b", key="k"), Attrs(inode=3, provider="b")]
        # a claimed item is not replaced: the next one for that file queues anew
        claimed = cat.work.claim("w", kinds=("move",), limit=1)
        assert [c.id for c in claimed] == [first]
        assert work.enqueue(cat.work, Move(inode=3, provider="b", src="c")) != first
    finally:
        cat.close()


# -- free_key ----------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    p = open_provider(ProviderSettings(name="s", uri=f"file://{root}"))
    yield p
    p.close()


def _file(cat: Catalog, name: str, key: str, store, data: bytes | None) -> int:
    """A file whose replica on ``s`` is recorded at ``key`` (holding ``data`` unless None)."""
    ino = cat.ns.create(ROOT_INODE, name, FILE, 0, 0, version=1).id
    cat.replicas.set(ino, "s", key, 1, "synced", "etag")
    if data is not None:
        store.write_bytes(key, data)
    return ino


def test_free_key_moves_another_files_object_to_its_own_path(cat, store):
    # mv a b, not yet moved in the store: b's bytes still sit at key "a"
    moved = _file(cat, "b", "a", store, b"b's bytes")
    writer = cat.ns.create(ROOT_INODE, "a", FILE, 0, 0).id
    free_key(cat, {"s": store}, "s", "a", writer)
    assert store.read_bytes("b") == b"b's bytes"
    assert cat.replicas.get(moved, "s").key == "b"
    assert cat.replicas.get(moved, "s").state == "synced"
    assert cat.replicas.holders("s", "a") == []


def test_free_key_leaves_the_owners_own_object(cat, store):
    owner = _file(cat, "a", "a", store, b"mine")
    free_key(cat, {"s": store}, "s", "a", owner)
    assert cat.replicas.get(owner, "s").key == "a" and store.read_bytes("a") == b"mine"
    with pytest.raises(NotFound):
        store.head("b")


def test_free_key_frees_the_destination_first(cat, store):
    # mv b c; mv a b, neither moved yet: c's bytes at "b", b's bytes at "a"
    at_a = _file(cat, "b", "a", store, b"now b")
    at_b = _file(cat, "c", "b", store, b"now c")
    free_key(cat, {"s": store}, "s", "a", cat.ns.create(ROOT_INODE, "a", FILE, 0, 0).id)
    assert store.read_bytes("b") == b"now b" and store.read_bytes("c") == b"now c"
    assert cat.replicas.get(at_a, "s").key == "b" and cat.replicas.get(at_b, "s").key == "c"


def test_free_key_drops_a_row_whose_object_never_arrived(cat, store):
    never = _file(cat, "b", "a", store, None)
    free_key(cat, {"s": store}, "s", "a", cat.ns.create(ROOT_INODE, "a", FILE, 0, 0).id)
    assert cat.replicas.get(never, "s") is None


def test_free_key_keeps_no_row_for_a_file_removed_during_the_relocation(cat, store):
    moved = _file(cat, "b", "a", store, b"bytes")
    writer = cat.ns.create(ROOT_INODE, "a", FILE, 0, 0).id
    steps = free_key_steps(cat, store, "s", "a", writer)
    assert next(steps).run(store)
    assert steps.send(True) is None
    with cat.transaction():  # what the mount records for `rm b` meanwhile
        cat.replicas.drop(moved, "s")
        cat.ns.delete(moved)
    with pytest.raises(StopIteration):
        steps.send(None)
    assert cat.replicas.of(moved) == []

def test_free_key_steps_announce_each_write_and_leave_copies_to_the_driver(cat, store):
    moved = _file(cat, "b", "a", store, b"bytes")
    writer = cat.ns.create(ROOT_INODE, "a", FILE, 0, 0).id
    steps = free_key_steps(cat, store, "s", "a", writer)
    first = next(steps)
    assert first == Relocation("a", "b", "b")
    with pytest.raises(NotFound):
        store.head("b")  # nothing copied: that is the driver's part
    # the driver reports the copy done; the catalog write is announced before it happens
    assert steps.send(True) is None
    assert cat.replicas.get(moved, "s").key == "a"
    with pytest.raises(StopIteration):
        steps.send(None)
    assert cat.replicas.get(moved, "s").key == "b"


# -- a replicate whose file goes away ------------------------------------------------------

def test_a_file_removed_during_its_copy_leaves_no_row_and_no_object(cat, tmp_path, store):
    """rm while the daemon copies: no replica row for a gone inode, the new object removed."""
    root = tmp_path / "b"
    root.mkdir()
    b = open_provider(ProviderSettings(name="b", uri=f"file://{root}"))
    ino = _file(cat, "f", "f", store, b"bytes")
    cat.ns.update(ino, size=5, sha256=hashlib.sha256(b"bytes").hexdigest())
    item = listed("replicate", {"inode": ino, "provider": "b"})

    def removed(_copied) -> None:  # what the mount records for `rm f` mid-copy
        with cat.transaction():
            for r in cat.replicas.of(ino):
                cat.replicas.drop(ino, r.provider)
            cat.ns.delete(ino)

    assert execute(cat, {"s": store, "b": b}, item, on_copy=removed) == len(b"bytes")
    assert cat.replicas.of(ino) == [] and not b.exists("f")
    b.close()


def test_a_file_removed_during_its_move_leaves_no_row_and_no_object(cat, store):
    """rm while the daemon moves the object (mv a b; rm b): no row, neither key left."""
    ino = _file(cat, "b", "a", store, b"bytes")  # renamed to b; its object still at "a"
    item = listed("move", {"inode": ino, "provider": "s", "src": "a"})
    copy = store.copy

    def removed_meanwhile(src, dst, meta):  # what the mount records for `rm b` mid-move
        info = copy(src, dst, meta)
        with cat.transaction():
            cat.replicas.drop(ino, "s")
            cat.ns.delete(ino)
        return info

    store.copy = removed_meanwhile
    execute(cat, {"s": store}, item)
    assert cat.replicas.of(ino) == []
    assert not store.exists("a") and not store.exists("b")
