"""Two mounts of one namespace at once vs one mount alone: a metadata-heavy workload.

Each client process creates ``files / clients`` small files in a directory of
its own (open, write 100 bytes, close), stats each, renames each and unlinks
each: 4 operations per file. Two setups, mounted side by side and run in
turn, on the same kind of store (a local directory without fsync, copies =
1, so the stores cost little and the catalog and the mounts are measured):

- one mount alone, with 2 client processes;
- two mounts on one catalog (docs/multi-mount.md), one client process on each.

Printed: aggregate operations per second of each (median of ``--runs``), and
the ratio two / one. Goal (issue 22): >= 1.5. On SQLite every catalog write
of both mounts takes one file's write lock, and a 2-core host runs both
mounts and both clients on two cores: see docs/multi-mount.md for the
numbers measured here; PostgreSQL is the catalog for the multi-host case.

Usage::

    .venv/bin/python bench/two_mounts.py              # 10,000 files, 3 runs
    .venv/bin/python bench/two_mounts.py --files 2000 --runs 1
"""

from __future__ import annotations

import sys

# bench/ holds a copy.py (the copy-engine bench) that would shadow the stdlib
# module when this script's directory leads sys.path
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnifs.providers import ProviderSettings
from tests.mount.conftest import Mounted, write_config

#: what one client process does (argv: directory, number of files); prints its op count
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
print(4 * n)
"""


def make_mounts(root: Path, count: int) -> list[Mounted]:
    store = root / "store"
    store.mkdir()
    settings = {"file0": ProviderSettings(name="file0", uri=f"file://{store}")}
    made = []
    for i in range(count):
        side = root / f"m{i}"
        (side / "mnt").mkdir(parents=True)
        # no fsync per object: the bench measures the catalog and the mounts, not the disk
        cfg = write_config(side, settings, copies=1, catalog=root / "catalog.db",
                           extra={"file0": {"fsync": False}})
        made.append(Mounted(side, side / "mnt", cfg, list(settings), settings))
    return made


def workload(dirs: list[Path], files: int) -> float:
    """Run one client per directory at once; aggregate operations per second."""
    per = files // len(dirs)
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(d), str(per)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for d in dirs]
    time.sleep(0.5)  # the clients have started their interpreters
    start = time.monotonic()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    ops = 0
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"a client failed ({p.returncode})")
        ops += int(out.strip())
    return ops / (time.monotonic() - start)


def dirs_for(mounts: list[Mounted], run: int) -> list[Path]:
    """Two client directories: both on a lone mount, or one on each of two mounts."""
    if len(mounts) == 1:
        return [mounts[0].mp / f"r{run}c{c}" for c in range(2)]
    return [m.mp / f"r{run}c{c}" for c, m in enumerate(mounts)]


def measure(counts: tuple[int, ...], files: int, runs: int) -> dict[int, list[float]]:
    """ops/s of ``runs`` runs of each setup (1 or 2 mounts of one catalog, two clients in
    all), the setups mounted side by side and their runs taken in turn, so that a change in
    the host's load over the minutes hits both alike."""
    with tempfile.TemporaryDirectory(prefix="omnifs-two-") as tmp:
        setups = {}
        for count in counts:
            (Path(tmp) / str(count)).mkdir()
            setups[count] = make_mounts(Path(tmp) / str(count), count)
        try:
            for mounts in setups.values():
                for m in mounts:
                    m.mount()
            results: dict[int, list[float]] = {count: [] for count in counts}
            for run in range(runs):
                for count, mounts in setups.items():
                    results[count].append(workload(dirs_for(mounts, run), files))
                    print(f"  {count} mount(s), run {run + 1}: {results[count][-1]:,.0f} ops/s",
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
    ap.add_argument("--only", choices=("one", "two"),
                    help="measure one side only (e.g. one mount before and after a change)")
    args = ap.parse_args()
    if args.only:
        count = 1 if args.only == "one" else 2
        got = statistics.median(measure((count,), args.files, args.runs)[count])
        print(f"{args.only} mount(s): {got:,.0f} ops/s (median of {args.runs})")
        return 0
    results = measure((1, 2), args.files, args.runs)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    ratio = two / one
    print(f"files {args.files:,}, 4 ops each (create+write+close, stat, rename, unlink), "
          f"medians of {args.runs} runs")
    print(f"one mount, 2 clients:           {one:,.0f} ops/s")
    print(f"two mounts, 1 client each:      {two:,.0f} ops/s")
    print(f"ratio two / one: {ratio:.2f} (goal >= 1.5: "
          f"{'met' if ratio >= 1.5 else f'missed by {1.5 - ratio:.2f}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
