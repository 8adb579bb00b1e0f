"""The daemon under governance rules: it never copies where a rule forbids, and it adds the
copies min_copies and distinct_regions want (files recorded as the mount records them)."""

from __future__ import annotations

import json

from omnifs.catalog import Catalog
from omnifs.config import parse_config
from omnifs.governance_config import audit_dir
from omnifs.providers import open_provider
from tests.integration.test_daemon import FAST_DAEMON, run_daemon_until, table_of, write_file


def _config(tmp_path, settings, regions, rules, copies=1):
    return parse_config({
        "catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": copies, "write_quorum": 1},
        "providers": {s.name: table_of(s, region=regions[s.name]) for s in settings},
        "daemon": FAST_DAEMON,
        "metrics": {"port": 0},
        "governance": {"rules": rules, "audit": {"flush_interval": 0.1}},
    })


def _synced(cat, ino):
    return sorted(r.provider for r in cat.replicas.of(ino) if r.state == "synced")


def test_a_queued_copy_to_a_forbidden_region_is_dropped_and_audited(make_settings, tmp_path):
    eu, us = make_settings("file", name="eu"), make_settings("s3", name="us")
    cfg = _config(tmp_path, [eu, us], {"eu": "eu-west-1", "us": "us-east-1"},
                  [{"name": "eu-only", "paths": ["/eu/**"], "regions": ["eu-*"]}], copies=2)
    cat = Catalog(cfg.catalog_path())
    ino = write_file(cat, open_provider(eu), "eu/p.csv", b"x,y\n", ["us"])  # queued before
    free = write_file(cat, open_provider(eu), "free/p.csv", b"ok\n", ["us"])
    run_daemon_until(cfg, lambda c: c.work.pending_count() == 0)
    assert _synced(cat, ino) == ["eu"] and _synced(cat, free) == ["eu", "us"]
    assert not open_provider(us).exists("eu/p.csv")
    recs = [json.loads(x) for x in (audit_dir(cfg.catalog_path()) / "audit.log").read_text()
            .splitlines()]
    denied = [r for r in recs if r["result"] == "denied"]
    assert [(r["op"], r["path"], r["rule"], r["source"]) for r in denied] == [
        ("replicate to us", "/eu/p.csv", "eu-only", "daemon")]
    assert ("replicate on us", "/free/p.csv") in [(r["op"], r["path"]) for r in recs]


def test_the_daemon_adds_copies_in_distinct_regions(make_settings, tmp_path):
    a, b, c = (make_settings("file", name=n) for n in ("a", "b", "c"))
    cfg = _config(tmp_path, [a, b, c], {"a": "us-east-1", "b": "us-west-2", "c": "eu-west-1"},
                  [{"paths": ["/records/**"], "min_copies": 3, "distinct_regions": 2}])
    cat = Catalog(cfg.catalog_path())
    ino = write_file(cat, open_provider(a), "records/r1.pdf", b"%PDF", [])
    run_daemon_until(cfg, lambda cat: len(_synced(cat, ino)) == 3, timeout=30)
    assert _synced(cat, ino) == ["a", "b", "c"]
