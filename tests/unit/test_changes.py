"""The catalog's change log and leases (omnifs/catalog/changes.py, leases.py), two processes'
connections on one catalog file."""

from __future__ import annotations

import stat
import threading
import time

from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.catalog.changes import ChangeFeed


def test_every_namespace_change_is_logged_in_its_transaction(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    start = cat.changes.last_seq()
    f = cat.ns.create(ROOT_INODE, "f", stat.S_IFREG | 0o644, 0, 0)
    d = cat.ns.create(ROOT_INODE, "d", stat.S_IFDIR | 0o755, 0, 0)
    cat.ns.update(f.id, version=1, size=3)
    cat.ns.update(f.id, mode=stat.S_IFREG | 0o600)
    cat.ns.update(f.id, staged=1)  # nothing any mount shows: not logged
    cat.ns.rename_name(ROOT_INODE, "f", d.id, "g")
    cat.ns.add_link(f.id, ROOT_INODE, "h")
    cat.ns.set_xattr(f.id, b"user.a", b"1")
    cat.ns.remove_name(ROOT_INODE, "h")
    changes, newest, gap = cat.changes.since(start)
    assert not gap and newest == changes[-1].seq
    got = [(c.inode, c.parent, c.name, c.data) for c in changes]
    assert got == [
        (f.id, ROOT_INODE, "f", False), (d.id, ROOT_INODE, "d", False),
        (f.id, None, None, True), (f.id, None, None, False),
        (f.id, ROOT_INODE, "f", False), (f.id, d.id, "g", False),
        (f.id, ROOT_INODE, "h", False), (f.id, None, None, False),
        (f.id, ROOT_INODE, "h", False)]
    assert {c.origin for c in changes} == {cat.changes.origin}
    # a change rolled back leaves no row
    try:
        with cat.transaction():
            cat.ns.touch_dir(d.id)
            raise RuntimeError
    except RuntimeError:
        pass
    assert cat.changes.since(changes[-1].seq)[0] == []
    assert cat.changes.since(start, skip_origin=cat.changes.origin)[:2] == ([], newest)


def test_the_feed_wakes_on_another_connections_change(tmp_path):
    writer = Catalog(tmp_path / "c.db")
    feed = ChangeFeed(Catalog(tmp_path / "c.db"))
    after = feed.cat.changes.last_seq()
    assert not feed.wait(after, 0.1)
    threading.Timer(0.2, lambda: writer.ns.create(ROOT_INODE, "x", stat.S_IFREG, 0, 0)).start()
    start = time.monotonic()
    assert feed.wait(after, 5)
    assert 0.15 < time.monotonic() - start < 1.0
    (change,), _, gap = feed.cat.changes.since(after)
    assert change.name == "x" and change.origin == writer.changes.origin and not gap
    feed.close()


def test_trimming_keeps_the_newest_and_a_follower_behind_sees_a_gap(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    for i in range(5):
        cat.ns.create(ROOT_INODE, f"f{i}", stat.S_IFREG, 0, 0)
    last = cat.changes.last_seq()
    assert cat.changes.trim(last + 1) == last - 1
    assert cat.changes.last_seq() == last
    assert cat.changes.since(last) == ([], last, False)  # up to date: nothing lost
    rows, _, gap = cat.changes.since(last - 2)  # behind what was trimmed
    assert [c.seq for c in rows] == [last] and gap


def test_leases_exclude_other_owners_until_they_expire(tmp_path):
    one, two = Catalog(tmp_path / "c.db"), Catalog(tmp_path / "c.db")
    assert one.leases.take("flock:a", "one", 0.3, "host1 pid 1")
    assert one.leases.take("flock:a", "one", 0.3)  # renewal
    assert not two.leases.take("flock:a", "two", 10)
    assert two.leases.holder("flock:a").owner == "one"
    assert [le.key for le in two.leases.live("flock:")] == ["flock:a"]
    time.sleep(0.35)  # the holder stopped renewing (a dead host)
    assert two.leases.holder("flock:a") is None
    assert two.leases.take("flock:a", "two", 10)
    one.leases.release("flock:a", "one")  # not its lease any more: nothing happens
    assert two.leases.holder("flock:a").owner == "two"
    two.leases.release("flock:a", "two")
    assert one.leases.live("flock:") == []
