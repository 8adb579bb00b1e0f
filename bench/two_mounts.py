"""Two mounts of one namespace at once vs one mount alone: a metadata-heavy workload.

Each client process creates ``files / clients`` small files in a directory of
its own (open, write 100 bytes, close), stats each, renames each and unlinks
each: 4 operations per file. Two setups, mounted side by side and run in
turn, on the same kind of store (a local directory without fsync, copies =
1, so the stores cost little and the catalog and the mounts are measured):

- one mount alone, with 2 client processes;
- two mounts on one catalog (docs/multi-mount.md), one client process on each.

``--catalog``: the catalog is a SQLite file (the default) or a database of a
throwaway PostgreSQL cluster (tests/servers.py, as the tests and
bench/pg_catalog.py start it: loopback TCP, fsync off), one database per setup.

Printed: aggregate operations per second of each (median of ``--runs``), and
the ratio two / one. Goal (issue 22): >= 1.5. Per run also the 1-minute load
average and the CPU time per operation of each kind of process (the mounts,
the clients, PostgreSQL's server processes) and the cores they kept busy in
all: the host may have fewer cores than two mounts, two clients and the
database can use, and then no ratio beyond what the cores allow can show. On
SQLite every catalog write of both mounts takes one file's write lock; see
docs/multi-mount.md for the numbers measured here.

Usage::

    .venv/bin/python bench/two_mounts.py              # 10,000 files, 3 runs, SQLite
    .venv/bin/python bench/two_mounts.py --catalog postgresql
    .venv/bin/python bench/two_mounts.py --files 2000 --runs 1
"""

from __future__ import annotations

import sys

# bench/ holds a copy.py (the copy-engine bench) that would shadow the stdlib
# module when this script's directory leads sys.path
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnifs.providers import ProviderSettings
from tests import servers as S
from tests.mount.conftest import Mounted, write_config

#: what one client process does (argv: directory, number of files); prints its op count
#: and the CPU seconds it used
CLIENT = """
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
sys.stdin.readline()  # the start signal: every client starts at once
names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
for p in names:
    with open(p, "wb") as f:
        f.write(b"x" * 100)
for p in names:
    os.stat(p)
for p in names:
    os.rename(p, p + ".r")
for p in names:
    os.unlink(p + ".r")
t = os.times()
print(4 * n, t.user + t.system)
"""

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds ``pid`` used (all its threads; with ``children``, its waited-for
    children's too); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def postgres_cpu(cluster: S.PostgresCluster | None) -> float:
    """CPU seconds of the cluster's server: the postmaster (with its ended children)
    and every live child (backends, writers)."""
    if cluster is None:
        return 0.0
    master = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = cpu_of(master, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == master:
            total += cpu_of(int(entry.name))
    return total


class Run:
    """One run's figures: ops/s, load average, CPU seconds of each kind of process."""

    def __init__(self, ops: int, wall: float, cpu: dict[str, float]):
        self.ops, self.wall, self.cpu = ops, wall, cpu
        self.rate = ops / wall
        self.load = os.getloadavg()[0]

    def line(self) -> str:
        per = ", ".join(f"{k} {1e6 * v / self.ops:,.0f}" for k, v in self.cpu.items())
        cores = sum(self.cpu.values()) / self.wall
        return (f"{self.rate:,.0f} ops/s; CPU us/op: {per}; cores busy {cores:.2f}; "
                f"load {self.load:.1f}")


def make_mounts(root: Path, count: int, catalog: Path | str) -> list[Mounted]:
    store = root / "store"
    store.mkdir()
    settings = {"file0": ProviderSettings(name="file0", uri=f"file://{store}")}
    made = []
    for i in range(count):
        side = root / f"m{i}"
        (side / "mnt").mkdir(parents=True)
        # no fsync per object: the bench measures the catalog and the mounts, not the disk
        cfg = write_config(side, settings, copies=1, catalog=catalog,
                           extra={"file0": {"fsync": False}})
        made.append(Mounted(side, side / "mnt", cfg, list(settings), settings))
    return made


def workload(dirs: list[Path], files: int, mounts: list[Mounted],
             cluster: S.PostgresCluster | None) -> Run:
    """Run one client per directory at once; the run's figures."""
    per = files // len(dirs)
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(d), str(per)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for d in dirs]
    time.sleep(0.5)  # the clients have started their interpreters
    mount_cpu = sum(cpu_of(m.pid) for m in mounts if m.pid)
    pg_cpu = postgres_cpu(cluster)
    start = time.monotonic()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    ops, client_cpu = 0, 0.0
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"a client failed ({p.returncode})")
        n, used = out.split()
        ops += int(n)
        client_cpu += float(used)
    wall = time.monotonic() - start
    cpu = {"mounts": sum(cpu_of(m.pid) for m in mounts if m.pid) - mount_cpu,
           "clients": client_cpu}
    if cluster is not None:
        cpu["postgres"] = postgres_cpu(cluster) - pg_cpu
    return Run(ops, wall, cpu)


def dirs_for(mounts: list[Mounted], run: int) -> list[Path]:
    """Two client directories: both on a lone mount, or one on each of two mounts."""
    if len(mounts) == 1:
        return [mounts[0].mp / f"r{run}c{c}" for c in range(2)]
    return [m.mp / f"r{run}c{c}" for c, m in enumerate(mounts)]


def measure(counts: tuple[int, ...], files: int, runs: int,
            cluster: S.PostgresCluster | None) -> dict[int, list[Run]]:
    """``runs`` runs of each setup (1 or 2 mounts of one catalog, two clients in all), the
    setups mounted side by side and their runs taken in turn, so that a change in the
    host's load over the minutes hits both alike. ``cluster``: the catalogs are databases
    of it, else SQLite files."""
    with tempfile.TemporaryDirectory(prefix="omnifs-two-") as tmp:
        setups = {}
        for count in counts:
            root = Path(tmp) / str(count)
            root.mkdir()
            catalog = cluster.database("two") if cluster else root / "catalog.db"
            setups[count] = make_mounts(root, count, catalog)
        try:
            for mounts in setups.values():
                for m in mounts:
                    m.mount()
            results: dict[int, list[Run]] = {count: [] for count in counts}
            for run in range(runs):
                for count, mounts in setups.items():
                    results[count].append(workload(dirs_for(mounts, run), files, mounts,
                                                   cluster))
                    print(f"  {count} mount(s), run {run + 1}: {results[count][-1].line()}",
                          flush=True)
            return results
        finally:
            for mounts in setups.values():
                for m in mounts:
                    m.umount()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--catalog", choices=("sqlite", "postgresql"), default="sqlite",
                    help="the catalog's engine (postgresql: a throwaway local cluster)")
    ap.add_argument("--only", choices=("one", "two"),
                    help="measure one side only (e.g. one mount before and after a change)")
    args = ap.parse_args()
    cluster = None
    if args.catalog == "postgresql":
        reason = S.postgres_missing()
        if reason:
            print(f"two_mounts: {reason}", file=sys.stderr)
            return 1
        cluster = S.PostgresCluster()
    try:
        return report(args, cluster)
    finally:
        if cluster is not None:
            cluster.destroy()


def report(args: argparse.Namespace, cluster: S.PostgresCluster | None) -> int:
    if args.only:
        count = 1 if args.only == "one" else 2
        got = statistics.median(r.rate for r in measure((count,), args.files, args.runs,
                                                        cluster)[count])
        print(f"{args.only} mount(s): {got:,.0f} ops/s (median of {args.runs}, {args.catalog})")
        return 0
    results = measure((1, 2), args.files, args.runs, cluster)
    one = statistics.median(r.rate for r in results[1])
    two = statistics.median(r.rate for r in results[2])
    ratio = two / one
    print(f"catalog {args.catalog}, files {args.files:,}, 4 ops each (create+write+close, "
          f"stat, rename, unlink), medians of {args.runs} runs")
    print(f"one mount, 2 clients:           {one:,.0f} ops/s")
    print(f"two mounts, 1 client each:      {two:,.0f} ops/s")
    print(f"ratio two / one: {ratio:.2f} (goal >= 1.5: "
          f"{'met' if ratio >= 1.5 else f'missed by {1.5 - ratio:.2f}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
