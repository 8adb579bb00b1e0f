"""Unread files decided by plan (omnifs/policy/unread.py): the same recommendations as
the engine file by file, on mixed files (shipped prices) and through ``cost recommend``
over a catalog on both engines."""

from __future__ import annotations

import random
import stat
import time

from omnifs.catalog import Catalog
from omnifs.catalog.access import day_of
from omnifs.config import parse_config
from omnifs.costing.apply import recommend, recommender
from omnifs.costing.inputs import file_records
from omnifs.policy.costpolicy import parse_cost_policy
from omnifs.policy.recommend import FileRecord, Recommender
from omnifs.policy.unread import PolicyByDir
from omnifs.prices import store_price

DAY = 86400
NOW = 2_000_000_000.0
STORES = {"s3": store_price("s3", "us-east-1"), "gcs": store_price("gs", "us-central1"),
          "az": store_price("az", "eastus")}
TIERS = {"s3": ["STANDARD", "", "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE"],
         "gcs": ["", "NEARLINE", "COLDLINE", "ARCHIVE"], "az": ["Hot", "Cool", "Archive"]}
POLICY = parse_cost_policy({"cool_after_days": 30, "cold_after_days": 90,
                            "archive_after_days": 180,
                            "rules": [{"paths": ["/b/**"], "archive_after_days": 7},
                                      {"paths": ["/k/**"], "allow_archive_only": True,
                                       "horizon_days": 30}]})


def mixed(n: int, seed: int = 29, shared: bool = True) -> list[FileRecord]:
    """Files of every kind: unread and read, young and old, 0 bytes to 1 PiB, one to three
    copies in any tier, under each rule, some named like a rule's directory."""
    rnd = random.Random(seed)
    sets: dict[tuple, dict[str, str]] = {}
    files = []
    for i in range(n):
        holders = rnd.sample(list(STORES), rnd.choice((1, 2, 2, 2, 3)))
        copies = {h: rnd.choice(TIERS[h]) for h in sorted(holders)}
        if shared:  # as the catalog gives them: one dict per set of copies
            copies = sets.setdefault(tuple(copies.items()), copies)
        size = rnd.choice((0, 1, 2**50, int(2 ** rnd.uniform(8, 40)), int(2 ** rnd.uniform(8, 40))))
        age = rnd.choice((rnd.uniform(0, 40), rnd.uniform(0, 800), 365.0, 30.0))
        idle = min(age, rnd.uniform(0, 400))
        read = i % 4 == 0
        reads = tuple(rnd.choice((0, 0, 1, 5)) for _ in range(30)) if read else ()
        path = rnd.choice(("/b", "/k", "/d", "/d/e", "")) + f"/f{i}"
        if i % 50 == 0:
            path = rnd.choice(("/b", "/k"))  # a file whose path is a rule's directory
        files.append(FileRecord(
            i, path, size, copies, created=NOW - age * DAY,
            last_read=NOW - idle * DAY if read or i % 3 == 0 else None,
            last_write=NOW - age * DAY if i % 2 else None, reads=reads,
            bytes_read=tuple(r * max(size, 1) for r in reads)))
    return files


def engine(plans: bool, **kw) -> Recommender:
    return Recommender(STORES, POLICY, now=NOW, copies=2, window_days=30, plans=plans, **kw)


def test_plans_give_exactly_what_the_engine_gives_file_by_file():
    for shared in (True, False):
        files = mixed(4000, shared=shared)
        alone, planned = engine(False), engine(True)
        want = list(alone.recommend(files))
        got = list(planned.recommend(files))
        assert got == want  # the same files, moves, savings and one-time costs, exactly
        assert planned.totals == alone.totals
        assert len(want) > 1000 and {r.kind for r in want} == {"tier", "placement"}
        assert planned._plans._plans  # plans were made and used


def test_plans_with_the_best_match_the_stream_file_by_file():
    files = mixed(4000)
    for limit in (1, 100, 10_000):
        alone = engine(False)
        every = list(alone.recommend(files))
        want = sorted(every, key=lambda r: -r.saving_per_month)[:limit]
        planned = engine(True)
        assert planned.best(files, limit) == want
        a, b = alone.totals, planned.totals
        assert (b.recommendations, b.by_kind) == (a.recommendations, a.by_kind)
        assert abs(a.saving_per_month - b.saving_per_month) < 1e-15
        assert abs(a.one_time - b.one_time) < 1e-15


def test_plans_keep_the_placement_rules():
    def allowed(path: str, store: str) -> bool:
        return store != "az" if path.startswith("/d/") else True

    files = mixed(2000)
    want = list(engine(False, allowed=allowed).recommend(files))
    assert list(engine(True, allowed=allowed).recommend(files)) == want
    assert not any(r.kind == "placement" and "az" in r.target.split(",")
                   for r in want if r.path.startswith("/d/"))


def test_policy_by_directory_is_the_policy_by_path():
    paths = ["/b", "/b/x", "/b/c/x", "/bx/y", "/k", "/d/k", "/x", "/d/e/f"]
    by_dir = PolicyByDir(POLICY)
    for p in paths * 2:  # cached the second time
        assert by_dir.of(p) is POLICY.for_path(p), p
    globbed = parse_cost_policy({"rules": [{"paths": ["/d/*.log"], "archive_after_days": 1}]})
    by_dir = PolicyByDir(globbed)
    for p in ("/d/a.log", "/d/a.txt", "/d/a.log"):
        assert by_dir.of(p) is globbed.for_path(p), p


def test_cost_recommend_over_a_catalog_gives_what_the_engine_gives_file_by_file(
        catalog_target, tmp_path):
    cfg = parse_config({
        "catalog": {"url": catalog_target if isinstance(catalog_target, str)
                    else f"sqlite:///{catalog_target}"},
        "cache": {"dir": str(tmp_path / "cache")}, "replication": {"copies": 2},
        "providers": {"s3": {"uri": "s3://bkt", "region": "us-east-1"},
                      "gcs": {"uri": "gs://bkt", "region": "us-central1"},
                      "azure": {"uri": "az://bkt", "connection_string": "x"}},
        "cost": {"cool_after_days": 30, "cold_after_days": 90, "archive_after_days": 180}})
    now = time.time()
    rnd = random.Random(16)
    cat = Catalog(cfg.catalog_target())
    try:
        with cat.transaction():
            dirs = [cat.ns.ensure_dirs(f"d{i}") for i in range(3)]
            counts = []
            for i in range(300):
                size = int(2 ** rnd.uniform(10, 36))
                ino = cat.ns.create(dirs[i % 3], f"f{i}", stat.S_IFREG | 0o644, 0, 0,
                                    size=size, version=1,
                                    mtime_ns=int((now - rnd.uniform(0, 400) * DAY) * 1e9)).id
                for s in rnd.sample(["s3", "gcs", "azure"], 2):
                    cat.replicas.set(ino, s, f"f{i}", 1, "synced")
                if i % 5 == 0:
                    counts.append((ino, day_of(now), 2, 2 * size, 0, now - DAY, None))
        cat.access.record(counts)
        found = recommend(cat, cfg, now=now, limit=50)
        alone = recommender(cfg, now)
        alone._plans = None  # the engine alone, file by file
        every = list(alone.recommend(file_records(cat, now)))
        assert found.recommendations == sorted(every, key=lambda r: -r.saving_per_month)[:50]
        assert (found.totals.recommendations, found.totals.by_kind) == (
            alone.totals.recommendations, alone.totals.by_kind)
        assert abs(found.totals.saving_per_month - alone.totals.saving_per_month) < 1e-15
        assert found.totals.recommendations > 50 and len(found.totals.by_kind) == 2
    finally:
        cat.close()
