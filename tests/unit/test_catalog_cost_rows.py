"""``cat.cost.rows`` / ``files``: every file with its synced copies of the current version
and its reads over a window, one query per page (omnifs/catalog/cost.py)."""

from __future__ import annotations

import stat

from omnifs.catalog import Catalog

FILE = stat.S_IFREG | 0o644


def test_rows_give_copies_reads_and_share_equal_copy_sets(cat: Catalog):
    d = cat.ns.ensure_dirs("d")
    a = cat.ns.create(d, "a", FILE, 0, 0, size=10, mtime_ns=2_000_000_000, version=2).id
    b = cat.ns.create(d, "b", FILE, 0, 0, size=20, version=1).id
    c = cat.ns.create(1, "c", FILE, 0, 0, size=30, version=1).id
    cat.replicas.set(a, "z", "d/a", 2, "synced")
    cat.replicas.set(a, "y", "d/a", 2, "synced")
    cat.replicas.set_tier(a, "y", "Cool")
    cat.replicas.set(a, "x", "d/a", 1, "synced")  # an older version: not a copy of it
    cat.replicas.set(b, "z", "d/b", 1, "synced")
    cat.replicas.set(b, "y", "d/b", 1, "pending")  # not synced yet
    cat.replicas.set(c, "z", "c", 1, "synced")
    cat.access.record([(a, 100, 2, 20, 0, 50.0, None), (a, 90, 5, 50, 1, None, 40.0),
                       (c, 101, 1, 30, 0, 60.0, None)])
    rows = {r[0]: r for r in cat.cost.rows(95, page=2)}
    assert set(rows) == {a, b, c}
    assert rows[a][1:] == (d, "a", 10, 2.0, 50.0, 40.0, 2, 20, {"y": "Cool", "z": ""})
    assert list(rows[a][9]) == ["y", "z"]  # in store order
    assert rows[b][7:] == (0, 0, {"z": ""})
    assert rows[c][7:] == (1, 30, {"z": ""})
    assert rows[b][9] is rows[c][9]  # the same copies: one dict
    files = list(cat.cost.files(0))
    assert [(f.inode, f.reads, f.bytes_read) for f in files] == [(a, 7, 70), (b, 0, 0),
                                                                 (c, 1, 30)]
