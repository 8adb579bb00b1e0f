"""The daemon's whole-catalog scan (files short of their copies) on both engines, in one run.

The daemon counts under-replicated files for its metrics and its repair; that
count reads every file. This times ``Replicas.under_replicated`` on a catalog
of ``--files`` files with two replicas each (a tenth of them short of one), on
SQLite and on a throwaway PostgreSQL cluster (tests/servers.py), median of
``--runs``, and prints the share of a daemon's time it takes: paced as now (the
next round after ``SCAN_PACE`` times its duration, never within 5 s,
daemon/main.py) beside the baseline, every 5 s whatever it costs (as before).

    .venv/bin/python bench/catalog_scan.py [--files 100000] [--runs 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

# this folder holds copy.py: it must not shadow the standard library's copy module
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import stat
import statistics
import tempfile
import time

from daemon.main import SCAN_PACE
from omnifs.catalog import Catalog
from tests.servers import PostgresCluster, postgres_missing

FILE = stat.S_IFREG | 0o644
#: the daemon's stats round (daemon/main.py: probe_interval, at least 5 s)
ROUND = 5.0


def fill(cat: Catalog, files: int) -> None:
    """``files`` files, each with two replicas; one file in ten has only one synced."""
    with cat.transaction():
        for i in range(files):
            f = cat.ns.create(1, f"f{i}", FILE, 0, 0)
            cat.ns.update(f.id, version=1)
            cat.replicas.set(f.id, "a", f"k{i}", 1, "pending" if i % 10 == 0 else "synced")
            cat.replicas.set(f.id, "b", f"k{i}", 1, "synced")


def share(t: float, pace: float) -> float:
    """The share of a daemon's time a scan of ``t`` s takes when it runs every
    max(ROUND, pace * t) s."""
    return t / max(ROUND, pace * t)


def measure(target, engine: str, args: argparse.Namespace) -> None:
    cat = Catalog(target)
    try:
        t0 = time.perf_counter()
        fill(cat, args.files)
        filled = time.perf_counter() - t0
        cat.replicas.under_replicated(2)  # warm
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            n = cat.replicas.under_replicated(2)
            times.append(time.perf_counter() - t0)
        assert n == args.files // 10, n
        t = statistics.median(times)
        print(f"{engine:10} {args.files} files (filled in {filled:.0f} s): scan {t * 1000:.0f} ms; "
              f"share of a daemon's time {share(t, SCAN_PACE) * 100:.1f} % paced, "
              f"{share(t, 0) * 100:.1f} % every {ROUND:.0f} s (before)", flush=True)
    finally:
        cat.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(Path(tmp) / "catalog.db", "sqlite", args)
    missing = postgres_missing()
    if missing:
        print(f"postgresql: skipped ({missing})")
        return
    pg = PostgresCluster()
    try:
        measure(pg.database("scan"), "postgresql", args)
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
