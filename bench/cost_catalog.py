"""`omnifs cost recommend` and `cost report` end to end over a catalog of synthetic files.

The engine alone (bench/cost_recommend.py) is fed from memory; this one reads the
files from a real SQLite catalog as the commands do (omnifs/costing: every file with
its synced copies, its path and its last 30 days of reads, a page at a time), so it
measures the catalog's side too. Target (issue 16): 1,000,000 files in <= 20 s and
<= 500 MiB RSS for `cost recommend`.

The catalog is built first through the catalog API (not timed): 100 directories,
files of 1 KiB to 4 GiB on two of three stores (S3, GCS, Azure prices), ages up to
two years, one file in five read in the last 30 days. `recommend` lists the 1,000 best
and totals them all, as the command does.

One run (2 CPUs shared with other work, load average 13-14), 1,000,000 files: catalog
built in 381 s; `cost recommend` 94.4 s wall, 18.7 s of CPU, peak RSS 36 MiB (1,122,022
recommendations: 1,066,978 tier, 55,044 placement); `cost report` 50.5 s wall. The CPU
time is within the target; the wall time is the machine's load.

    .venv/bin/python bench/cost_catalog.py --files 200000
    .venv/bin/python bench/cost_catalog.py               # 1,000,000 files
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import random
import resource
import stat
import tempfile
import time

from omnifs.catalog import Catalog
from omnifs.catalog.access import day_of
from omnifs.config import parse_config
from omnifs.costing.apply import recommend
from omnifs.costing.bill import month_bill

NOW = time.time()
DAY = 86400
STORES = ("s3", "gcs", "azure")
TIERS = {"s3": ("", "STANDARD_IA"), "gcs": ("", "NEARLINE"), "azure": ("", "Cool")}


def config(root: Path):
    return parse_config({
        "catalog": {"url": f"sqlite:///{root}/catalog.db"},
        "cache": {"dir": str(root / "cache")},
        "replication": {"copies": 2},
        "providers": {"s3": {"uri": "s3://bench", "region": "us-east-1"},
                      "gcs": {"uri": "gs://bench", "region": "us-central1"},
                      "azure": {"uri": "az://bench", "connection_string": "x"}},
        "cost": {"cool_after_days": 30, "cold_after_days": 90, "archive_after_days": 180,
                 "rules": [{"paths": ["/backups/**"], "archive_after_days": 7}]},
    })


def build(cat: Catalog, n: int, seed: int = 16) -> None:
    rnd = random.Random(seed)
    today = day_of(NOW)
    with cat.transaction():
        dirs = [cat.ns.ensure_dirs(f"d{i}") for i in range(99)] + [cat.ns.ensure_dirs("backups")]
    batch = 20_000
    for start in range(0, n, batch):
        counts = []
        with cat.transaction():
            for i in range(start, min(n, start + batch)):
                size = int(2 ** rnd.uniform(10, 32))
                mtime = NOW - rnd.uniform(0, 730) * DAY
                ino = cat.ns.create(dirs[i % 100], f"f{i}", stat.S_IFREG | 0o644, 0, 0,
                                    size=size, mtime_ns=int(mtime * 1e9), version=1).id
                for s in rnd.sample(STORES, 2):
                    cat.replicas.set(ino, s, f"d/f{i}", 1, "synced")
                    tier = TIERS[s][rnd.random() < 0.2]
                    if tier:
                        cat.replicas.set_tier(ino, s, tier)
                if i % 5 == 0:
                    reads = rnd.choice((1, 2, 5))
                    counts.append((ino, today - rnd.randrange(30), reads, reads * size, 0,
                                   NOW - rnd.uniform(0, 30) * DAY, None))
        cat.access.record(counts)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = config(root)
        cat = Catalog(cfg.catalog_path())
        t = time.perf_counter()
        build(cat, args.files)
        print(f"catalog of {args.files:,} files built in {time.perf_counter() - t:.0f} s "
              f"(not timed below); RSS so far {peak_rss_mib():.0f} MiB")
        t, cpu = time.perf_counter(), time.process_time()
        found = recommend(cat, cfg, limit=1000, now=NOW)
        took, cpu = time.perf_counter() - t, time.process_time() - cpu
        target = 20 * args.files / 1_000_000
        print(f"cost recommend: {args.files:,} files in {took:.1f} s ({cpu:.1f} s of CPU; "
              f"target <= {target:.0f} s), peak RSS {peak_rss_mib():.0f} MiB; "
              f"{found.totals.recommendations:,} recommendations {found.totals.by_kind}")
        t = time.perf_counter()
        bill = month_bill(cat, cfg, NOW)
        print(f"cost report: {args.files:,} files in {time.perf_counter() - t:.1f} s, total "
              f"{bill.total().total:.2f} {bill.currency}/month; peak RSS "
              f"{peak_rss_mib():.0f} MiB")
        cat.close()
    return 0 if took <= target else 1


if __name__ == "__main__":
    sys.exit(main())
