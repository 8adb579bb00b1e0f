"""Disasters through a real mount: a store wiped entirely, and the catalog host lost."""

from __future__ import annotations

import json
import os
import shutil
import time

from omnifs.layout import SNAPSHOT_PREFIX

from .test_dr import add_dr, backup, omnifs, state
from .test_rebuild import build_tree, lose_catalog, settle


def test_a_wiped_store_fails_over_then_back(make_mount, tmp_path):
    m = make_mount(("file", "file", "file"), copies=2)
    add_dr(m, tmp_path / "vault")
    replicated = {f"r/{i}": os.urandom(3000 + i) for i in range(6)}
    for name, data in replicated.items():
        (m.mp / name).parent.mkdir(exist_ok=True)
        (m.mp / name).write_bytes(data)
    settle(m)
    only = os.urandom(5000)
    (m.mp / "only-on-file0").write_bytes(only)  # not replicated yet: one copy
    assert m.homes("only-on-file0") == ["file0"]
    backup(m)
    store0 = m.root / "store-0"
    shutil.rmtree(store0)
    store0.mkdir()

    report = tmp_path / "failover.json"
    out = omnifs("dr", "failover", "--from", "file0", "--report", str(report),
                 config=m.config).stdout
    assert "1 from backups" in out and "0 short of copies, 0 lost" in out, out
    assert json.loads(report.read_text())["kind"] == "dr-failover"
    for name in [*replicated, "only-on-file0"]:
        assert sorted(m.homes(name)) == ["file1", "file2"], name
    # the running mount goes on: every file reads (from the stores: the cache is emptied),
    # and new files go elsewhere (the mount re-reads the draining mark every second)
    omnifs("cache", "clear", config=m.config)
    for name, data in [*replicated.items(), ("only-on-file0", only)]:
        assert (m.mp / name).read_bytes() == data
    time.sleep(1.2)
    (m.mp / "after").write_bytes(b"placed while file0 is out")
    assert "file0" not in m.homes("after")

    out = omnifs("dr", "failback", "file0", config=m.config).stdout
    assert "verified" in out, out


def test_catalog_host_lost_rebuilds_from_a_backup(make_mount, tmp_path):
    m = make_mount()
    add_dr(m, tmp_path / "vault")
    build_tree(m.mp)
    settle(m)
    before = state(m.mp)
    backup(m)
    lose_catalog(m)
    for name in m.names:  # no catalog snapshot left in any store: only the backup has one
        p = m.provider(name)
        for info in list(p.list(SNAPSHOT_PREFIX)):
            p.delete(info.key)
    out = omnifs("dr", "catalog", config=m.config).stdout
    assert "restored into" in out, out
    m.mount()
    assert state(m.mp) == before
