"""The catalog without a mount: tree, replicas, migrations, work queue claims across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat

import pytest

from omnifs.catalog import ROOT_INODE, Catalog, schema
from omnifs.providers.errors import Conflict, NotFound

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


def test_fresh_catalog_has_root_and_schema_version(cat, tmp_path):
    root = cat.ns.get(ROOT_INODE)
    assert root.kind == "dir" and root.nlink == 2
    assert cat.schema_version == len(schema.MIGRATIONS)
    if not cat.is_postgres:
        assert cat.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Catalog(cat.target)  # reopening runs no migration twice
    assert again.schema_version == cat.schema_version
    again.close()


def test_newer_schema_is_refused(tmp_path):
    c = Catalog(tmp_path / "c.db")
    c.db.execute("UPDATE schema_version SET version = 999")
    c.close()
    with pytest.raises(RuntimeError, match="newer"):
        Catalog(tmp_path / "c.db")


def test_migrations_run_in_order_once(tmp_path, monkeypatch):
    calls = []

    def v2(db: sqlite3.Connection) -> None:
        calls.append("v2")
        db.execute("ALTER TABLE inodes ADD COLUMN extra TEXT")

    c = Catalog(tmp_path / "c.db")
    c.close()
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2])
    c = Catalog(tmp_path / "c.db")
    assert c.schema_version == len(schema.MIGRATIONS) and calls == ["v2"]
    c.close()
    Catalog(tmp_path / "c.db").close()
    assert calls == ["v2"]


def test_tree_create_lookup_paths_and_conflicts(cat):
    d = cat.ns.create(ROOT_INODE, "d", DIR, 0, 0)
    f = cat.ns.create(d.id, "f.txt", FILE, 0, 0)
    assert cat.ns.lookup(d.id, "f.txt").id == f.id
    assert cat.ns.path_of(f.id) == "d/f.txt"
    assert cat.ns.resolve("/d/f.txt").id == f.id
    assert cat.ns.get(ROOT_INODE).nlink == 3
    with pytest.raises(Conflict):
        cat.ns.create(d.id, "f.txt", FILE, 0, 0)
    with pytest.raises(NotFound):
        cat.ns.resolve("d/nope")
    assert [i.name for i in cat.ns.children(d.id)] == ["f.txt"]
    assert list(cat.ns.files_under(d.id)) == [(f.id, "d/f.txt")]


def test_children_offsets_are_stable(cat):
    ids = [cat.ns.create(ROOT_INODE, f"n{i}", FILE, 0, 0).id for i in range(10)]
    first = cat.ns.children(ROOT_INODE, limit=4)
    cat.ns.detach(ids[1])  # removal during a listing
    cat.ns.create(ROOT_INODE, "late", FILE, 0, 0)
    rest = cat.ns.children(ROOT_INODE, after_id=first[-1].id)
    names = [i.name for i in first + rest]
    assert names[:4] == ["n0", "n1", "n2", "n3"]
    assert names[4:] == [f"n{i}" for i in range(4, 10)] + ["late"]


def test_rename_exchange_and_orphans(cat):
    a = cat.ns.create(ROOT_INODE, "a", DIR, 0, 0)
    b = cat.ns.create(ROOT_INODE, "b", FILE, 0, 0)
    sub = cat.ns.create(a.id, "s", DIR, 0, 0)
    cat.ns.move_entry(sub.id, ROOT_INODE, "s2")
    assert cat.ns.get(a.id).nlink == 2 and cat.ns.path_of(sub.id) == "s2"
    cat.ns.exchange(a.id, b.id)
    assert cat.ns.lookup(ROOT_INODE, "a").id == b.id and cat.ns.lookup(ROOT_INODE, "b").id == a.id
    assert cat.ns.is_ancestor(a.id, a.id) and not cat.ns.is_ancestor(a.id, sub.id)
    cat.ns.detach(b.id)
    assert [o.id for o in cat.ns.orphans()] == [b.id] and cat.ns.path_of(b.id) is None


def test_hard_links_names_nlink_and_promotion(cat):
    d = cat.ns.create(ROOT_INODE, "d", DIR, 0, 0)
    f = cat.ns.create(ROOT_INODE, "f", FILE, 0, 0)
    assert cat.ns.add_link(f.id, d.id, "g").nlink == 2
    assert cat.ns.lookup(d.id, "g").id == f.id and cat.ns.has_children(d.id)
    with pytest.raises(Conflict):
        cat.ns.add_link(f.id, ROOT_INODE, "d")
    with pytest.raises(Conflict):
        cat.ns.create(d.id, "g", FILE, 0, 0)  # a link holds the name
    names = [(name, i.id) for _, name, i in cat.ns.entries(d.id)]
    assert names == [("g", f.id)]
    inode, promoted = cat.ns.remove_name(ROOT_INODE, "f")  # the primary name goes
    assert promoted and inode.nlink == 1 and cat.ns.path_of(f.id) == "d/g"
    assert cat.ns.link_names(f.id) == []
    cat.ns.add_link(f.id, ROOT_INODE, "h")
    inode, primary = cat.ns.rename_name(ROOT_INODE, "h", d.id, "h2")
    assert not primary and cat.ns.lookup(d.id, "h2").id == f.id
    e = cat.ns.create(ROOT_INODE, "e", FILE, 0, 0)
    assert cat.ns.exchange_names(d.id, "h2", ROOT_INODE, "e") == (False, True)
    assert cat.ns.lookup(ROOT_INODE, "e").id == f.id and cat.ns.path_of(e.id) == "d/h2"
    inode, promoted = cat.ns.remove_name(ROOT_INODE, "e")  # an extra name: nothing moves
    assert inode.nlink == 1 and not promoted
    inode, promoted = cat.ns.remove_name(d.id, "g")  # the last name: an orphan
    assert inode.nlink == 0 and not promoted and cat.ns.path_of(f.id) is None


def test_entries_offsets_span_links(cat):
    f = cat.ns.create(ROOT_INODE, "f", FILE, 0, 0)
    for i in range(3):
        cat.ns.add_link(f.id, ROOT_INODE, f"l{i}")
    first = cat.ns.entries(ROOT_INODE, limit=2)
    rest = cat.ns.entries(ROOT_INODE, after=first[-1][0])
    assert [n for _, n, _ in first + rest] == ["f", "l0", "l1", "l2"]


def test_replicas_versions_xattrs(cat):
    f = cat.ns.create(ROOT_INODE, "f", FILE, 0, 0)
    cat.replicas.set(f.id, "p1", "f", 1, "synced", "etag1")
    cat.replicas.set(f.id, "p2", "f", 1, "pending")
    cat.replicas.mark_others_stale(f.id, 2)
    states = {r.provider: r.state for r in cat.replicas.of(f.id)}
    assert states == {"p1": "stale", "p2": "pending"}
    assert [r.inode for r in cat.replicas.holders("p1", "f")] == [f.id]
    cat.replicas.add_version(f.id, 1, "ab", 3, 5)
    assert cat.replicas.versions(f.id)[0][:3] == (1, "ab", 3)
    cat.ns.set_xattr(f.id, b"user.a", b"1")
    assert cat.ns.get_xattr(f.id, b"user.a") == b"1" and cat.ns.list_xattrs(f.id) == [b"user.a"]
    assert cat.ns.remove_xattr(f.id, b"user.a") and not cat.ns.remove_xattr(f.id, b"user.a")
    cat.ns.delete(f.id)
    assert cat.replicas.of(f.id) == []


def test_work_queue_dedup_claim_fail_complete(cat):
    a = cat.work.enqueue("replicate", {"inode": 1, "provider": "p"}, dedup="r:1:p")
    b = cat.work.enqueue("replicate", {"inode": 1, "provider": "p", "v": 2}, dedup="r:1:p")
    assert a == b and cat.work.pending_count() == 1
    c = cat.work.enqueue("delete", {"provider": "p", "key": "k"})
    items = cat.work.claim("w1", limit=10)
    assert [i.id for i in items] == [a, c] and items[0].payload["v"] == 2
    assert cat.work.claim("w2") == []  # claimed items are not handed out twice
    # while claimed, a new request for the same work queues again
    assert cat.work.enqueue("replicate", {"inode": 1, "provider": "p"}, dedup="r:1:p") != a
    cat.work.fail(a, "boom", retry_in=3600)
    assert cat.work.work_items("pending")[0].last_error == "boom"
    cat.work.complete(c)
    cat.work.fail(a, "again", retry_in=None)
    assert [w.id for w in cat.work.work_items("failed")] == [a]


def test_expired_claims_are_taken_over(cat):
    w = cat.work.enqueue("move", {"x": 1})
    assert cat.work.claim("dead", lease=300)[0].id == w
    assert cat.work.claim("alive", lease=300) == []
    assert cat.work.claim("alive", lease=0)[0].claimed_by == "alive"


def _claimer(path: str, out) -> None:
    c = Catalog(path)
    got = []
    while True:
        items = c.work.claim(f"w{multiprocessing.current_process().pid}", limit=3)
        if not items:
            break
        got += [i.id for i in items]
        for i in items:
            c.work.complete(i.id)
    out.put(got)
    c.close()


def test_claims_are_atomic_across_processes(tmp_path):
    path = str(tmp_path / "c.db")
    c = Catalog(path)
    ids = [c.work.enqueue("replicate", {"n": i}) for i in range(300)]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(path, out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = [i for g in got for i in g]
    assert sorted(flat) == ids  # every item exactly once
    assert c.work.pending_count() == 0
    c.close()


# -- provider health (migration 3) ----------------------------------------------

def test_health_samples_verdicts_counters_and_load(cat):
    from omnifs.policy.health import Sample

    cat.health.record_sample("a", False, 0.5, error="a: connection refused\nsecond line", at=100.0)
    cat.health.record_samples("a", [Sample(101.0, 0.01, True), Sample(102.0, 0.2, False)],
                              source="probe", error="a: timed out")
    assert cat.health.samples("a", 100.5) == [Sample(101.0, 0.01, True), Sample(102.0, 0.2, False)]
    assert cat.health.errors("a", 0) == [(102.0, "probe", "a: timed out"),
                                         (100.0, "mount", "a: connection refused")]
    cat.health.prune_samples(101.5)
    assert len(cat.health.samples("a", 0)) == 1
    with pytest.raises(Exception, match="source"):
        cat.health.record_sample("a", True, 0.1, source="elsewhere")

    cat.health.set_verdict("a", "down", error_rate=1.0, down_since=90.0, updated_at=1.0)
    cat.health.set_verdict("b", "healthy", p50=0.01, p95=0.02)
    cat.health.set_verdict("b", "degraded", p50=0.5, p95=2.5, error_rate=0.2)
    rows = cat.health.verdicts()
    assert rows["a"].status == "down" and rows["a"].down_since == 90.0
    assert rows["b"].status == "degraded" and rows["b"].p95 == 2.5
    assert set(cat.health.verdicts(max_age=60)) == {"b"}  # a dead daemon's old verdict
    cat.health.forget("b")
    assert set(cat.health.verdicts()) == {"a"}

    cat.health.add_counter("bytes_replicated", 10)
    cat.health.add_counter("bytes_replicated", 5)
    assert cat.health.counters() == {"bytes_replicated": 15}

    cat.work.enqueue("replicate", {"inode": 2, "provider": "a"}, dedup="replicate:2:a")
    cat.work.enqueue("replicate", {"inode": 3, "provider": "a"}, dedup="replicate:3:a")
    cat.work.enqueue("replicate", {"inode": 3, "provider": "b"}, dedup="replicate:3:b")
    cat.work.enqueue("delete", {"provider": "b", "key": "x"})
    assert cat.work.queued_by_provider() == {"a": 2, "b": 1}


def test_health_migration_keeps_tables_the_daemon_made(tmp_path):
    """A catalog where daemon/state.py created the health tables first keeps their rows."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE provider_health (provider TEXT PRIMARY KEY, status TEXT NOT NULL, p50 REAL,
            p95 REAL, error_rate REAL NOT NULL DEFAULT 0, down_since REAL,
            updated_at REAL NOT NULL);
        CREATE TABLE health_samples (provider TEXT NOT NULL, at REAL NOT NULL,
            latency REAL NOT NULL, ok INTEGER NOT NULL, source TEXT NOT NULL DEFAULT 'probe');
        INSERT INTO provider_health VALUES ('a', 'healthy', 0.1, 0.2, 0, NULL, 5.0);
        INSERT INTO health_samples VALUES ('a', 5.0, 0.1, 1, 'probe');
    """)
    db.close()
    c = Catalog(path)
    try:
        assert c.health.verdicts()["a"].status == "healthy"
        assert len(c.health.samples("a", 0)) == 1
        c.health.record_sample("a", False, 1.0, error="boom", at=6.0)
        assert c.health.errors("a", 0) == [(6.0, "mount", "boom")]
    finally:
        c.close()


def test_queue_defer_release_complete_many_and_holders(cat):
    import time as _time

    ids = [cat.work.enqueue("replicate", {"n": i}) for i in range(4)]
    claimed = cat.work.claim("host:1:w0", limit=2)
    assert [w.id for w in claimed] == ids[:2]
    cat.work.claim("host_x:9:w0", limit=1)
    # '_' in a prefix is literal, not a LIKE wildcard
    assert cat.work.claim_holders("host:1:") == ["host:1:w0"]
    assert cat.work.claim_holders("host_") == ["host_x:9:w0"]
    # deferred: back to pending, not claimable yet, and no attempt counted
    cat.work.defer(claimed[0].id, _time.time() + 3600)
    assert [w.id for w in cat.work.claim("w2", limit=10)] == [ids[3]]
    assert cat.work.release_deferred(["replicate"]) == 1
    (again,) = cat.work.claim("w3", limit=10)
    assert again.id == claimed[0].id and again.attempts == claimed[0].attempts
    cat.work.complete_many([claimed[1].id, ids[2], ids[3], again.id])
    assert cat.work.pending_count() == 0 and cat.work.failed_count() == 0


def test_health_rows_samples_and_counters(cat):
    from omnifs.policy.health import Sample

    cat.health.record_sample("a", False, 0.5, error="boom\nsecond line", source="mount", at=10.0)
    cat.health.record_samples("a", [Sample(11.0, 0.01, True), Sample(12.0, 0.02, True)],
                              source="probe")
    assert [s.at for s in cat.health.samples("a", since=10.5)] == [11.0, 12.0]
    cat.health.prune_samples(before=11.5)
    assert [s.at for s in cat.health.samples("a", since=0)] == [12.0]
    cat.health.set_verdict("a", "down", p50=0.01, p95=0.02, error_rate=0.5, down_since=9.0,
                           updated_at=100.0)
    row = cat.health.verdicts()["a"]
    assert (row.status, row.down_since, row.error_rate) == ("down", 9.0, 0.5)
    assert cat.health.verdicts(max_age=5.0, now=110.0) == {}
    cat.health.forget("a")
    assert cat.health.verdicts() == {}
    cat.health.add_counter("bytes", 5)
    cat.health.add_counter("bytes", 7)
    assert cat.health.counters() == {"bytes": 12}
