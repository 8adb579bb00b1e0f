"""The daemon's whole-catalog scan (files short of their copies) on both engines, in one run.

The daemon counts under-replicated files for its metrics and its repair; that
count reads every file. This times ``Replicas.under_replicated`` (one join
grouped by file) beside the correlated count per file it replaced, on a catalog
of ``--files`` files with two replicas each (a tenth of them short of one), on
SQLite and on a throwaway PostgreSQL cluster (tests/servers.py), median of
``--runs``. The daemon runs the scan (and a repair) at most every ``SCAN_PACE``
times its duration (daemon/main.py), so its cost stays a bounded share.

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
import statistics
import tempfile
import time

from omnifs.catalog import Catalog
from tests.servers import PostgresCluster, postgres_missing

#: the count it replaced: a count of replicas per file, file by file (the baseline)
PER_FILE = ("SELECT count(*) FROM inodes i WHERE i.kind = 'file' AND i.parent IS NOT NULL AND "
            "(SELECT count(*) FROM replicas r WHERE r.inode = i.id AND r.state = 'synced' "
            "AND r.version = i.version) < ?")


def fill(cat: Catalog, files: int) -> None:
    db = cat.db
    with cat.transaction():
        db.executemany("INSERT INTO inodes (id, parent, name, kind, mode, atime_ns, mtime_ns, "
                       "ctime_ns, sha256, version) VALUES (?, 1, ?, 'file', 420, 1, 1, 1, 'x', 1)",
                       [(i + 2, f"f{i}") for i in range(files)])
        db.executemany("INSERT INTO replicas (inode, provider, key, version, state) "
                       "VALUES (?, ?, ?, 1, ?)",
                       [(i + 2, p, f"k{i}", "pending" if p == "a" and i % 10 == 0 else "synced")
                        for i in range(files) for p in ("a", "b")])


def medians_ms(a, b, runs: int) -> tuple[float, float, int, int]:
    """Medians of ``a`` and ``b`` run alternately (after one untimed run of each), ms."""
    ta, tb, ra, rb = [], [], a(), b()
    for _ in range(runs):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000, ra, rb


def measure(target, engine: str, args: argparse.Namespace) -> None:
    cat = Catalog(target)
    try:
        fill(cat, args.files)
        if engine == "postgresql":
            cat.db.execute("ANALYZE")
        ours, base, n, m = medians_ms(lambda: cat.replicas.under_replicated(2),
                                      lambda: cat.db.execute(PER_FILE, (2,)).fetchone()[0],
                                      args.runs)
        assert n == m == args.files // 10, (n, m)
        print(f"{engine:10} {args.files} files: {ours:6.0f} ms, per-file count {base:6.0f} ms "
              f"({base / ours:.1f}x faster)", flush=True)
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
