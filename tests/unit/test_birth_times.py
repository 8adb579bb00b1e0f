"""Each inode's creation time: set once, kept through upgrades, dumps and every later change;
WORM retention counts from it."""

from __future__ import annotations

import io
import json
import sqlite3
import stat

from omnifs.catalog import ROOT_INODE, Catalog, portable, schema
from omnifs.catalog.schema import MIGRATIONS
from omnifs.policy.governance import parse

FILE = stat.S_IFREG | 0o644
S = 10**9


def test_birth_is_set_on_create_and_no_change_moves_it(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    try:
        f = cat.ns.create(ROOT_INODE, "f", FILE, 0, 0)
        d = cat.ns.create(ROOT_INODE, "d", stat.S_IFDIR | 0o755, 0, 0)
        assert f.birth_ns == f.ctime_ns > 0
        born = f.birth_ns
        cat.ns.update(f.id, mode=FILE | 0o600, ctime_ns=born + 5 * S)
        cat.ns.move_entry(f.id, d.id, "g")
        cat.ns.add_link(f.id, ROOT_INODE, "h")
        now = cat.ns.get(f.id)
        assert now is not None and now.ctime_ns > born and now.birth_ns == born
        old = cat.ns.create(ROOT_INODE, "imported", FILE, 0, 0, birth_ns=7 * S)
        assert old.birth_ns == 7 * S and cat.ns.get(ROOT_INODE).birth_ns > 0
    finally:
        cat.close()


def test_an_older_catalog_gets_the_earliest_time_it_knows(tmp_path):
    path = tmp_path / "old.db"
    cat = Catalog(path)
    with cat.transaction():
        a = cat.ns.create(ROOT_INODE, "a", FILE, 0, 0, version=1)
        cat.replicas.add_version(a.id, 1, None, 0, 0)
        b = cat.ns.create(ROOT_INODE, "b", FILE, 0, 0)
    cat.close()
    # the inodes as schema 8 left them: no birth column; a's first version older than its ctime
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE inodes DROP COLUMN birth_ns")
    db.execute("UPDATE inodes SET ctime_ns = ?", (500 * S,))
    db.execute("UPDATE versions SET time = 100.5 WHERE inode = ?", (a.id,))
    assert schema._v9_birth_times in MIGRATIONS
    db.execute("BEGIN")
    schema._v9_birth_times(db)  # the upgrade step, whatever its number after a merge
    db.execute("COMMIT")
    db.close()
    cat = Catalog(path)
    try:
        assert cat.ns.get(a.id).birth_ns == 100_500_000_000  # its first version
        assert cat.ns.get(b.id).birth_ns == 500 * S  # no version: its ctime
    finally:
        cat.close()


def test_dump_and_load_keep_births_and_fill_an_older_dump_s(tmp_path):
    src = Catalog(tmp_path / "a.db")
    f = src.ns.create(ROOT_INODE, "f", FILE, 0, 0, birth_ns=3 * S)
    out = io.StringIO()
    portable.dump(src, out)
    src.close()
    data = json.loads(out.getvalue())
    dst = Catalog(tmp_path / "b.db")
    try:
        portable.load(dst, data)
        assert dst.ns.get(f.id).birth_ns == 3 * S
        for row in data["inodes"]:  # a dump written before creation times were kept
            del row["birth_ns"]
            row["ctime_ns"] = 9 * S
        portable.load(dst, data, force=True)
        assert dst.ns.get(f.id).birth_ns == 9 * S
    finally:
        dst.close()


def test_retention_counts_from_creation_not_from_the_last_change():
    gov = parse([{"name": "worm", "paths": ["/w/**"], "retention": "10s"}])
    born = 1_000 * S
    rule = gov.rules[0]
    assert rule.retained_until(born) == 1_010.0
    d = gov.check_change("delete", "/w/f", born_ns=born, now=1_009.9)
    assert d is not None and d.reason == "retained (WORM) for 0 s more"
    assert gov.check_change("delete", "/w/f", born_ns=born, now=1_010.0) is None
    # what the mount passes is the birth time: a later ctime (chmod, rename, ln) is no input
    assert gov.check_change("chmod", "/w/f", born_ns=born, now=10_000.0) is None
    legal = parse([{"paths": ["/w/**"], "legal_hold": True}]).rules[0]
    assert legal.retained_until(born) is None


def test_the_fill_runs_on_either_engine(catalog_target):
    from omnifs.catalog.schema import fill_birth_times

    cat = Catalog(catalog_target)
    try:
        with cat.transaction():
            a = cat.ns.create(ROOT_INODE, "a", FILE, 0, 0, version=1)
            cat.replicas.add_version(a.id, 1, None, 0, 0)
            b = cat.ns.create(ROOT_INODE, "b", FILE, 0, 0)
            cat.db.execute("UPDATE inodes SET birth_ns = NULL, ctime_ns = ? WHERE id IN (?, ?)",
                           (500 * S, a.id, b.id))
            cat.db.execute("UPDATE versions SET time = 100.5 WHERE inode = ?", (a.id,))
            fill_birth_times(cat.db)
        assert cat.ns.get(a.id).birth_ns == 100_500_000_000
        assert cat.ns.get(b.id).birth_ns == 500 * S
        assert cat.ns.get(ROOT_INODE).birth_ns > 500 * S  # had one: left alone
    finally:
        cat.close()
