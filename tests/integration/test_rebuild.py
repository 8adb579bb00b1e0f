"""Rebuilding a lost catalog from the stores, against real servers (no mount needed).

Catalog snapshots (taken by the CLI and by the daemon, verified, pruned, a
damaged one passed over for an older one), the metadata rewrite a chmod
queues, and ``omnifs import`` committing in batches while another process
writes to the same catalog.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from omnifs import snapshot
from omnifs.catalog import Catalog
from omnifs.cli.daemon import gather, snapshot_line
from omnifs.config import load_config
from omnifs.importer import import_stores
from omnifs.layout import META_MODE, META_UID, SNAPSHOT_PREFIX
from omnifs.providers import META_SHA256, open_provider
from omnifs.replication import drain, queue_attrs
from tests.cli import run, write_config
from tests.integration.test_daemon import make_config, run_daemon_until, write_file
from tests.servers import catalog_url, lose_catalog


def snapshot_keys(p) -> list[str]:
    return sorted(o.key for o in p.list(SNAPSHOT_PREFIX))


@pytest.mark.parametrize("kinds", [("file", "s3"), ("az", "gs")], ids=lambda k: "-".join(k))
def test_a_damaged_newest_snapshot_is_passed_over_for_an_older_one(kinds, make_settings,
                                                                   catalog_target, tmp_path):
    a, b = make_settings(kinds[0], name="one"), make_settings(kinds[1], name="two")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b],
                       f'\n[catalog]\nurl = "{catalog_url(catalog_target)}"\n')
    config = load_config(cfg)
    cat = Catalog(config.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    write_file(cat, pa, "kept/early.txt", b"in both snapshots\n", [])
    d = cat.ns.ensure_dirs("kept/empty-dir")
    cat.ns.create(d, "link", stat.S_IFLNK | 0o777, 0, 0, target="../early.txt")
    first = snapshot.take(config.catalog_target(), {"one": pa, "two": pb}, clock=lambda: 1e9)
    write_file(cat, pa, "kept/late.txt", b"only in the newest snapshot\n", [])
    newest = snapshot.take(config.catalog_target(), {"one": pa, "two": pb},
                           clock=lambda: 1e9 + 60)
    cat.close()
    assert snapshot_keys(pa) == snapshot_keys(pb) == [first.key, newest.key]
    # the newest damaged in both stores: bytes that fail their SHA-256 in one, and in the
    # other bytes whose SHA-256 matches but that are no gzip of a catalog
    info = pa.head(newest.key)
    pa.write_bytes(newest.key, b"\x1f\x8b garbage", info.metadata)
    junk = gzip.compress(b"not a database at all" * 100)
    pb.write_bytes(newest.key, junk, {META_SHA256: hashlib.sha256(junk).hexdigest()})
    lose_catalog(config.catalog_target())

    proc = run("import", config=cfg, check=True)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert f"restored 1 file from snapshot one:{first.key}" in out, out
    assert err.count("snapshot refused") == 2 and "Traceback" not in err, err
    assert "SHA-256" in err and "not a catalog" in err, err
    cat = Catalog(config.catalog_target())
    try:
        link = cat.ns.resolve("kept/empty-dir/link")
        assert link.kind == "symlink" and link.target == "../early.txt"
        late = cat.ns.resolve("kept/late.txt")  # after the snapshot: from its object
        assert late.size == len(b"only in the newest snapshot\n")
        assert {r.provider: r.state for r in cat.replicas.of(late.id)} == {"one": "synced"}
    finally:
        cat.close()
    listed = run("snapshot", "--list", config=cfg, check=True).stdout.decode()
    assert listed.count("one") == 2 and listed.count("two") == 2, listed


def test_daemon_snapshots_after_changes_and_keeps_the_newest(make_settings, catalog_target,
                                                             tmp_path):
    a, b = make_settings("file", name="one"), make_settings("s3", name="two")
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url(catalog_target),
                      daemon={"snapshot_quiet": 0.3, "snapshot_interval": 60,
                              "snapshot_keep": 2})
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    ino = write_file(cat, pa, "f.txt", b"data\n", ["two"])
    seen: set[str] = set()

    def changes_then_snapshots(c, d):
        # after each new snapshot one more change: a symlink, then xattrs; each must
        # bring the next snapshot on its own (nothing else changes meanwhile)
        before = len(seen)
        seen.update(snapshot_keys(pb))
        if len(seen) > before:
            if len(seen) == 1:
                c.ns.create(1, "link1", stat.S_IFLNK | 0o777, 0, 0, target="f.txt")
            elif len(seen) < 4:
                with c.transaction():
                    c.ns.set_xattr(ino, f"user.n{len(seen)}".encode(), b"v")
                    c.ns.update(ino, ctime_ns=time.time_ns())
        return len(seen) >= 4

    run_daemon_until(cfg, changes_then_snapshots, timeout=120)
    # snapshot_keep; the last snapshot's thread may still be pruning once the daemon stopped
    deadline = time.monotonic() + 10
    while len(snapshot_keys(pb)) > 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(snapshot_keys(pa)) == len(snapshot_keys(pb)) == 2
    newest = snapshot.find({"two": pb})[0][0]
    line = snapshot_line(gather(cfg)["snapshot"], time.time())  # what `omnifs status` prints
    assert " ago on one, two (" in line and "entries)" in line, line
    fresh = Catalog(tmp_path / "rebuilt.db")
    try:
        assert snapshot.restore_newest(fresh, {"two": pb})[0] == newest
        assert fresh.ns.resolve("link1").target == "f.txt"
        assert fresh.ns.get_xattr(ino, b"user.n3") == b"v"
    finally:
        fresh.close()
        cat.close()


def test_daemons_sharing_a_catalog_take_one_snapshot_of_each_state(make_settings,
                                                                    catalog_target):
    """Several daemons on one catalog (PostgreSQL, several hosts) take turns: a state
    one of them wrote is not written again, and none starts while another is writing."""
    p = open_provider(make_settings("file", name="one"))
    cat, other = Catalog(catalog_target), Catalog(catalog_target)
    try:
        write_file(cat, p, "f.txt", b"data\n", [])
        mark = cat.ns.change_mark()
        first = snapshot.take_shared(cat, {"one": p}, mark)
        assert first is not None and snapshot_keys(p) == [first.key]
        assert snapshot.take_shared(other, {"one": p}, other.ns.change_mark()) is None
        cat.ns.create(1, "link", stat.S_IFLNK | 0o777, 0, 0, target="f.txt")
        with cat.held("catalog-snapshot"):  # another daemon is writing one
            assert snapshot.take_shared(other, {"one": p}, other.ns.change_mark()) is None
        second = snapshot.take_shared(other, {"one": p}, other.ns.change_mark())
        assert second is not None and snapshot_keys(p) == [first.key, second.key]
        assert snapshot.last_taken(cat)["key"] == second.key
    finally:
        cat.close()
        other.close()


@pytest.mark.parametrize("kind", ["s3", "az", "gs", "file"])
def test_chmod_and_chown_reach_the_objects_metadata(kind, make_settings, tmp_path):
    s = make_settings(kind, name="one")
    cfg = make_config(tmp_path, [s], copies=1)
    cat = Catalog(cfg.catalog_path())
    p = open_provider(s)
    ino = write_file(cat, p, "f.bin", b"x" * 1000, [])
    with cat.transaction():
        cat.ns.update(ino, mode=stat.S_IFREG | 0o600, uid=1234, ctime_ns=time.time_ns())
        assert queue_attrs(cat, ino) == 1
    time.sleep(1.1)  # the rewrite waits a second, so chmod + chown + utime make one
    res = drain(cat, {"one": p})
    assert res.done == 1 and not res.errors, res
    meta = p.head("f.bin").metadata
    assert (meta[META_MODE], meta[META_UID]) == ("600", "1234")
    assert meta[META_SHA256] == hashlib.sha256(b"x" * 1000).hexdigest()
    assert p.read_bytes("f.bin") == b"x" * 1000
    cat.close()


def test_import_commits_in_batches_so_other_writers_wait_little(make_settings, tmp_path):
    s = make_settings("file", name="one")
    p = open_provider(s)
    root = Path(p.location.path)
    n = 10_000
    for i in range(n):  # plain files are objects of a file:// store (another tool's)
        d = root / f"d{i % 10}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}").write_bytes(b"x")
    cfg = write_config(tmp_path / "omnifs.toml", [s],
                       f'\n[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n')
    config = load_config(cfg)
    cat = Catalog(config.catalog_path())
    waits: list[float] = []
    stop = threading.Event()

    def other_writer():
        db = sqlite3.connect(config.catalog_path(), isolation_level=None, timeout=60)
        while not stop.is_set():
            t = time.monotonic()
            db.execute("BEGIN IMMEDIATE")
            db.execute("COMMIT")
            waits.append(time.monotonic() - t)
            time.sleep(0.005)
        db.close()

    writer = threading.Thread(target=other_writer)
    writer.start()
    start = time.monotonic()
    try:
        res = import_stores(cat, {"one": p}, config)
    finally:
        took = time.monotonic() - start
        stop.set()
        writer.join()
        cat.close()
    assert res.files == n
    # short transactions with pauses between: the longest wait is one of them, not the import
    assert max(waits) < took / 4, (max(waits), took)


def test_import_gives_a_file_the_creation_time_its_object_records(make_settings, tmp_path):
    """Retention counts from a file's creation: a rebuilt catalog takes it from the object's
    omnifs_ctime (the last change omnifs recorded), else the import's own time."""
    from omnifs.layout import META_CTIME

    s = make_settings("file", name="one")
    p = open_provider(s)
    p.write_bytes("old.txt", b"old", {META_CTIME: "1700000000.250000000"})
    p.write_bytes("plain.txt", b"plain")
    cfg = write_config(tmp_path / "omnifs.toml", [s],
                       f'\n[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n')
    config = load_config(cfg)
    cat = Catalog(config.catalog_path())
    try:
        before = time.time_ns()
        assert import_stores(cat, {"one": p}, config).files == 2
        assert cat.ns.resolve("old.txt").birth_ns == 1_700_000_000_250_000_000
        assert cat.ns.resolve("plain.txt").birth_ns >= before
    finally:
        cat.close()
