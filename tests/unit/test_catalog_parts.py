"""The catalog's parts share one connection, and the queries that the daemon, ``omnifs status``,
the importer and the mount ask by name answer what they answered as raw SQL."""

from __future__ import annotations

import stat

import pytest

from omnifs.catalog import Catalog

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


def test_one_transaction_spans_every_part(cat):
    f = cat.ns.create(1, "f", FILE, 0, 0)
    with pytest.raises(RuntimeError), cat.transaction():
        cat.ns.update(f.id, size=5)
        cat.replicas.set(f.id, "a", "f", 1, "synced")
        cat.work.enqueue("replicate", {"inode": f.id, "provider": "b"})
        cat.health.add_counter("bytes", 5)
        raise RuntimeError("abandon")
    assert cat.ns.get(f.id).size == 0
    assert cat.replicas.of(f.id) == [] and cat.replicas.is_empty()
    assert cat.work.pending_count() == 0 and cat.health.counters() == {}


def test_change_count_moves_with_this_connections_writes(cat, tmp_path):
    before = cat.change_count()
    assert cat.change_count() == before  # reads move nothing
    cat.ns.get(1)
    assert cat.change_count() == before
    cat.ns.create(1, "f", FILE, 0, 0)
    assert cat.change_count() > before
    other = Catalog(tmp_path / "c.db")
    try:
        seen = cat.change_count()
        other.ns.create(1, "g", FILE, 0, 0)  # another connection's write
        assert cat.change_count() == seen
    finally:
        other.close()


def test_namespace_counts_and_ids(cat):
    d = cat.ns.create(1, "d", DIR, 0, 0)
    a = cat.ns.create(d.id, "a", FILE, 0, 0)
    b = cat.ns.create(1, "b", FILE, 0, 0)
    gone = cat.ns.create(1, "gone", FILE, 0, 0)
    cat.ns.update(b.id, staged=1)
    cat.ns.update(gone.id, staged=1)
    cat.ns.detach(gone.id)  # an orphan: open but unlinked
    assert cat.ns.file_ids() == [a.id, b.id]
    assert cat.ns.count_files() == 2
    assert cat.ns.staged_ids() == {b.id, gone.id}
    assert cat.ns.staged_count() == 1


def test_work_pending_by_kind(cat):
    cat.work.enqueue("replicate", {"n": 1})
    cat.work.enqueue("replicate", {"n": 2})
    cat.work.enqueue("delete", {"n": 3})
    done = cat.work.claim("w", kinds=("delete",))
    cat.work.complete(done[0].id)
    cat.work.claim("w", kinds=("replicate",), limit=1)  # claimed items are still queued
    bad = cat.work.enqueue("move", {"n": 4})
    cat.work.fail(bad, "no", retry_in=None)
    assert cat.work.pending_by_kind() == {"replicate": 2}


def test_replica_listings(cat):
    f = cat.ns.create(1, "f", FILE, 0, 0)
    g = cat.ns.create(1, "g", FILE, 0, 0)
    cat.replicas.set(f.id, "a", "f", 0, "synced")
    cat.replicas.set(f.id, "b", "f", 0, "pending")
    cat.replicas.set(g.id, "a", "g", 0, "stale")
    assert sorted(cat.replicas.all_keys()) == [("a", "f"), ("a", "g"), ("b", "f")]
    assert sorted(cat.replicas.inodes_on("a")) == [f.id, g.id]
    assert cat.replicas.inodes_in_state("a", "synced") == [f.id]
    assert cat.replicas.keys("a") == {"f", "g"}


def test_short_of_and_surplus_stale(cat):
    """The failover repair's two questions: who lacks copies, which stale copies are spare."""
    files = {}
    for name, synced, stale in (("one", ["a"], []), ("two", ["a", "b"], ["c"]),
                                ("lost", ["x"], []), ("on_lost", ["a", "x"], ["c"])):
        f = cat.ns.create(1, name, FILE, 0, 0)
        cat.ns.update(f.id, version=1)
        for p in synced:
            cat.replicas.set(f.id, p, name, 1, "synced")
        for p in stale:
            cat.replicas.set(f.id, p, name, 0, "stale")
        files[name] = f.id
    staged = cat.ns.create(1, "staged", FILE, 0, 0)
    cat.ns.update(staged.id, version=1, staged=1)
    cat.replicas.set(staged.id, "a", "staged", 1, "synced")
    never = cat.ns.create(1, "never", FILE, 0, 0)  # version 0: nothing uploaded yet
    cat.replicas.set(never.id, "a", "never", 0, "synced")

    assert sorted(cat.replicas.short_of(2, set(), 100)) == [files["one"], files["lost"]]
    # a copy on a lost provider does not count; a file with none left at all is not here
    assert sorted(cat.replicas.short_of(2, {"x"}, 100)) == [files["one"], files["on_lost"]]
    assert cat.replicas.short_of(2, {"x"}, 1) == [files["one"]]
    assert sorted(cat.replicas.surplus_stale(2, set(), 100)) == [
        (files["two"], "c", "two"), (files["on_lost"], "c", "on_lost")]
    assert cat.replicas.surplus_stale(2, {"x"}, 100) == [(files["two"], "c", "two")]


def test_under_replicated_counts_files_short_of_current_synced_copies(cat):
    """Only synced replicas of the file's current version count; directories do not."""
    for name, replicas in (("full", [("a", 1, "synced"), ("b", 1, "synced")]),
                           ("one", [("a", 1, "synced"), ("b", 1, "pending")]),
                           ("old", [("a", 1, "synced"), ("b", 0, "synced")]),
                           ("none", []),
                           ("three", [("a", 1, "synced"), ("b", 1, "synced"),
                                      ("c", 1, "synced")])):
        f = cat.ns.create(1, name, FILE, 0, 0)
        cat.ns.update(f.id, version=1)
        for p, version, state in replicas:
            cat.replicas.set(f.id, p, name, version, state)
    cat.ns.create(1, "dir", stat.S_IFDIR | 0o755, 0, 0)
    assert cat.replicas.under_replicated(2) == 3  # one, old, none
    assert cat.replicas.under_replicated(3) == 4
    assert cat.replicas.under_replicated(1) == 1  # none
