"""Catalog snapshots and ``omnifs import`` on a PostgreSQL catalog, beside SQLite's (issue 22).

A catalog of ``--files`` files (100 per directory, each with a version, a synced
replica and its object in a ``file://`` store, one xattr in ten files) is built in
SQLite and copied to PostgreSQL (``catalog migrate``'s copy). Then, alternating the
engines in each of ``--runs`` runs (so noise falls on both alike):

- **snapshot**: ``snapshot.take`` of the live catalog into the store (SQLite:
  ``VACUUM INTO``; PostgreSQL: the verified copy from one REPEATABLE READ state into a
  SQLite file), compressed and written;
- **import**: ``import_stores`` into a new empty catalog of that engine (a new SQLite
  file, a new database): the newest snapshot restored, then settled against the
  store's listing.

Medians are printed with the SQLite figure beside PostgreSQL's, and the load average.
PostgreSQL is a throwaway cluster (tests/servers.py) on loopback TCP.

    .venv/bin/python bench/pg_snapshot.py [--files 10000] [--runs 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

# this folder holds copy.py: it must not shadow the standard library's copy module
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import hashlib
import os
import shutil
import stat
import statistics
import tempfile
import time

from omnifs import snapshot
from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.catalog.engine_copy import copy_catalog
from omnifs.config import load_config
from omnifs.importer import import_stores
from omnifs.providers import META_MTIME, META_SHA256, ProviderSettings, open_provider
from tests import servers as S


def build(path: Path, store: Path, n: int) -> None:
    one = open_provider(ProviderSettings(name="one", uri=f"file://{store}"))
    cat = Catalog(path)
    with cat.transaction():
        for i in range(n):
            if i % 100 == 0:
                d = cat.ns.create(ROOT_INODE, f"d{i // 100:03d}", stat.S_IFDIR | 0o755, 0, 0)
            data = f"file {i}\n".encode()
            sha = hashlib.sha256(data).hexdigest()
            t = time.time_ns()
            key = f"d{i // 100:03d}/f{i:05d}"
            f = cat.ns.create(d.id, f"f{i:05d}", stat.S_IFREG | 0o644, 1000, 1000,
                              size=len(data), sha256=sha, version=1, mtime_ns=t)
            info = one.write_bytes(key, data, {META_SHA256: sha, META_MTIME: f"{t / 1e9:.9f}"})
            cat.replicas.set(f.id, "one", key, 1, "synced", info.etag)
            cat.replicas.add_version(f.id, 1, sha, len(data), t)
            if i % 10 == 0:
                cat.ns.set_xattr(f.id, b"user.tag", b"bench")
    cat.set_meta("imported", "1")
    cat.close()
    one.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    reason = S.postgres_missing()
    if reason:
        print(f"skipped: {reason}")
        return 1
    work = Path(tempfile.mkdtemp(prefix="omnifs-pgsnap-"))
    pg = S.PostgresCluster()
    try:
        store = work / "store"
        store.mkdir()
        build(work / "live.db", store, args.files)
        url = pg.database("live")
        src, dst = Catalog(work / "live.db"), Catalog(url)
        copy_catalog(src, dst)
        src.close()
        dst.close()
        live = {"sqlite": work / "live.db", "postgresql": url}
        one = open_provider(ProviderSettings(name="one", uri=f"file://{store}"))
        taken: dict[str, list[float]] = {e: [] for e in live}
        imported: dict[str, list[float]] = {e: [] for e in live}
        for run in range(args.runs):
            for engine, target in live.items():
                t = time.perf_counter()
                snapshot.take(target, {"one": one}, keep=1)
                taken[engine].append(time.perf_counter() - t)
                new = (work / f"new{run}.db") if engine == "sqlite" else pg.database("new")
                cfg = work / "omnifs.toml"
                new_url = new if isinstance(new, str) else f"sqlite:///{new}"
                cfg.write_text(f'[catalog]\nurl = "{new_url}"\n'
                               f'[cache]\ndir = "{work}/cache"\n[replication]\ncopies = 1\n'
                               f'[providers.one]\nuri = "file://{store}"\n')
                cat = Catalog(new)
                t = time.perf_counter()
                res = import_stores(cat, {"one": one}, load_config(cfg))
                imported[engine].append(time.perf_counter() - t)
                assert res.snapshot and res.restored == args.files and not res.missing, res
                assert cat.ns.count_inodes() == args.files + args.files // 100 + 1
                cat.close()
        one.close()
        load = os.getloadavg()
        for what, times in (("snapshot", taken), ("import", imported)):
            lite, post = (statistics.median(times[e]) for e in ("sqlite", "postgresql"))
            print(f"{what} of a {args.files}-file catalog (median of {args.runs}): "
                  f"SQLite {lite:.2f} s, PostgreSQL {post:.2f} s, ratio {post / lite:.1f}")
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
