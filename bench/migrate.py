"""``omnifs migrate`` numbers (issue 15) beside ``rclone copy``, on local servers, one run.

Every row prints its baseline measured in the same run, the process CPU time
(user + system, from the children's rusage) of ours and of the baseline, and
the machine's load average: on a shared machine, read the ratios, not the times.
The throughput and planning rows run ``--repeat`` (3) times, ours and the
baseline interleaved, and report medians.

Rows (``--rows``, comma-separated; all by default):

* ``throughput`` (1): ``--objects`` (10,000) x 64 KiB objects s3->gs and s3->az
  (``--throughput-dst``: gs, az or both).
  omnifs = ``migrate plan`` + ``migrate run --parallel P``, timed together;
  baseline = ``rclone copy --transfers P`` of the same objects between the same
  servers into a fresh prefix. Reported as objects/s of each and omnifs / rclone
  (goal >= 1.3).
* ``plan`` (2): ``migrate plan`` of ``--plan-objects`` (100,000) objects present on
  both sides (``--plan-pair``, s3->az: every pair decided by the listings' md5),
  wall time (goal <= 30 s), with peak RSS; baseline: ``rclone lsf -R`` of each
  side on the same servers (the listing alone, which bounds any planner). Its
  objects live in buckets of their own (``s3p``, ``azp``): moto searches the
  whole bucket for every listing page, so they would slow row 1's listings. Not
  s3->gs by default: the GCS emulator ignores ``maxResults`` and answers a
  100,000-object listing in one page, whose parse alone (in the SDK) costs
  hundreds of MiB that real GCS, paging by 1,000, never asks for. moto and
  Azurite list slowly (moto searches the whole bucket for every page), so the
  planner's own cost shows best with ``--plan-pair file,file`` (two local
  directories: listing them takes seconds).
* ``resume`` (3): the throughput row's s3->gs run killed with SIGKILL once half of
  its items are done (counted in the catalog, ``cat.migrations.counts``), then run
  again to the end. Goal: first part + rerun <= 1.1 x an uninterrupted run + the
  restart (the wall time of ``migrate run`` on a plan already done: start-up and
  reading the state).
* ``rss`` (4): peak RSS of ``migrate plan`` and of ``migrate run`` for
  ``--plan-objects`` objects (goal <= 300 MiB each; RSS sampled from
  /proc/PID/status VmHWM every 20 ms). ``rss`` runs the plan only; ``rss-run``
  adds the run (``--rss-run-share S < 1``: killed once that share is done, for
  a run too long to wait for; its memory is set at start-up).

Objects are seeded with rclone from a local folder (the fastest writer at hand),
then the folder is removed. The rows that run a migration need ``omnifs migrate
run`` (``PLAN --parallel N``, state in the catalog); without it they print one
line and are skipped.

The numbers measured, and how to read them: bench/README.md.

Not a timed test. Usage::

    .venv/bin/python bench/migrate.py --rows plan,rss            # rows 2 and 4 (plan)
    .venv/bin/python bench/migrate.py --objects 1000 --plan-objects 10000   # a quick run
    .venv/bin/python bench/migrate.py --rows throughput,resume,rss-run --parallel 16
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds copy.py, which would shadow the stdlib's copy module for this script
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import hashlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from omnifs.catalog import Catalog
from omnifs.catalog.migrations import migration_id
from omnifs.migration.planfile import load as load_plan
from omnifs.providers import open_provider
from tests import servers as S
from tests.cli import write_config

ROOT = _HERE.parent
OMNIFS = [str(ROOT / ".venv" / "bin" / "omnifs")]
MiB = 1024 * 1024
ROWS = ("throughput", "plan", "resume", "rss", "rss-run")
KINDS = ("s3", "gs", "az", "file")
#: the suffixes of the stores holding the planning rows' objects (source, destination)
PLAN = ("p", "q")


def _hwm(pid: int) -> int:
    """A process's own RSS high-water mark (VmHWM, reset at exec unlike ru_maxrss)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Child:
    """One child process measured: wall time, CPU time (user + system), peak RSS."""

    wall: float
    cpu: float
    rss: int
    killed: bool = False


def measured(argv: list[str], env: dict | None = None, *, stop=None) -> Child:
    """Run one child (alone: the CPU time is the children's rusage before and after it),
    sampling its RSS high-water mark every 20 ms; ``stop()`` true has it killed (SIGKILL)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, killed = 0, False
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid))
        if stop is not None and not killed and stop():
            proc.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0 and not killed:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): "
                           f"{err.strip()[-500:]}")
    return Child(elapsed, cpu, peak, killed)


def load() -> str:
    """The machine's load average (1, 5, 15 min), to read the row's numbers by."""
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def azure_sas_url(endpoint: str, container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        account_name=S.AZURE_ACCOUNT, container_name=container, account_key=S.AZURE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                                           create=True),
        expiry=datetime.now(UTC) + timedelta(hours=6))
    return f"{endpoint}/{S.AZURE_ACCOUNT}/{container}?{sas}"


def blob(n: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="omnifs-bench-migrate-"))
        kinds = tuple(sorted(set(args.plan_pair) | ({"s3", *args.throughput_dst}
                                                    if {"throughput", "resume"} & set(args.rows)
                                                    else set())))
        self.servers = {k: S.start(k) for k in kinds if k != "file"}
        # a store is a bucket on one server: "s3", "gs", "az" hold the throughput rows'
        # objects, "s3p", "azp"... the planning rows' (a bucket apart: moto searches the whole
        # bucket for every listing page, so 100,000 planning objects would slow every listing
        # of the throughput rows, ours and rclone's alike)
        self.kind = {k: k for k in kinds} | {k + s: k for k, s in zip(args.plan_pair, PLAN,
                                                                       strict=True)}
        # a bucket per store; a "file" store is a directory of its own
        self.buckets = {store: str(self.tmp / store) if kind == "file" else S.unique_bucket("bench")
                        for store, kind in self.kind.items()}
        for store, bucket in self.buckets.items():
            if self.kind[store] == "file":
                os.makedirs(bucket)
            else:
                S.create_bucket(self.kind[store], self.servers[self.kind[store]].endpoint, bucket)
        self.settings = {store: S.settings_for(
            self.kind[store], None if self.kind[store] == "file" else
            self.servers[self.kind[store]].endpoint, b, name=f"b{store}", local_root=b)
            for store, b in self.buckets.items()}
        for s in self.settings.values():
            s.timeout = 120.0
        self.catalog = self.tmp / "catalog.db"
        Catalog(self.catalog).close()
        self.config = write_config(self.tmp / "omnifs.toml", list(self.settings.values()),
                                   f'\n[catalog]\nurl = "sqlite:///{self.catalog}"\n')
        self.providers = {k: open_provider(s) for k, s in self.settings.items()}
        self.rclone_env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        # rclone's remotes named like our stores, on the same servers (as bench/copy.py does)
        for store, kind in self.kind.items():
            env = f"RCLONE_CONFIG_{store.upper()}_"
            end = self.servers[kind].endpoint if kind != "file" else ""
            self.rclone_env.update({env + k: v for k, v in {
                "s3": {"TYPE": "s3", "PROVIDER": "Other", "ENDPOINT": end,
                       "ACCESS_KEY_ID": "test", "SECRET_ACCESS_KEY": "test",
                       "REGION": "us-east-1"},
                "gs": {"TYPE": "gcs", "ANONYMOUS": "true", "PROJECT_NUMBER": "1234",
                       "ENDPOINT": f"{end}/storage/v1/"},
                "az": {"TYPE": "azureblob",
                       "SAS_URL": azure_sas_url(end, self.buckets[store])},
                "file": {"TYPE": "local"},
            }[kind].items()})
        self.failed: list[str] = []
        self.watchers: list[Catalog] = []

    def close(self) -> None:
        for c in self.watchers:
            c.close()
        for p in self.providers.values():
            p.close()
        for s in self.servers.values():
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- places and data ------------------------------------------------------
    def plan_stores(self) -> tuple[str, str]:
        """The stores of the planning rows' objects (source, destination)."""
        a, b = (k + s for k, s in zip(self.args.plan_pair, PLAN, strict=True))
        return a, b

    def rclone_path(self, kind: str, prefix: str) -> str:
        return f"{kind}:{self.buckets[kind]}/{prefix}"

    def omnifs_path(self, kind: str, prefix: str) -> str:
        return f"b{kind}:/{prefix}"

    def rclone(self, *argv: str) -> None:
        subprocess.run(["rclone", *argv], env=self.rclone_env, check=True,
                       stdout=subprocess.DEVNULL)

    def seed(self, kinds: tuple[str, ...], prefix: str, count: int, size: int) -> None:
        """``count`` objects of ``size`` bytes under ``prefix/`` in every store of ``kinds``."""
        t0 = time.perf_counter()
        local = self.tmp / "seed"
        for i in range(count):
            d = local / f"d{i % 100:02d}"
            if i < 100:
                d.mkdir(parents=True)
            (d / f"obj{i:06d}.bin").write_bytes(blob(size, i))
        copies = [subprocess.Popen(["rclone", "copy", "--transfers", "32", "--checkers", "32",
                                    "--no-check-dest", str(local),
                                    self.rclone_path(kind, prefix)],
                                   env=self.rclone_env, stdout=subprocess.DEVNULL)
                  for kind in kinds]
        if any(c.wait() != 0 for c in copies):
            raise RuntimeError(f"seeding {prefix}/ with rclone failed")
        shutil.rmtree(local)
        print(f"  seeded {count} x {size} B under {prefix}/ in {', '.join(kinds)} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def clear(self, kind: str, prefix: str) -> None:
        self.rclone("purge", self.rclone_path(kind, prefix))

    # -- omnifs steps -------------------------------------------------------------
    def cli(self, *argv: str, omnifs: list[str] = OMNIFS) -> list[str]:
        return [*omnifs, "--config", str(self.config), *argv]

    def plan(self, src: str, dst: str, name: str, omnifs: list[str] = OMNIFS
             ) -> tuple[Child, Path]:
        out = self.tmp / f"{name}.json"
        return measured(self.cli("migrate", "plan", src, dst, "-o", str(out),
                                 omnifs=omnifs)), out

    def run(self, plan: Path, *, stop=None) -> Child:
        return measured(self.cli("migrate", "run", str(plan), "--parallel",
                                 str(self.args.parallel)), stop=stop)

    def done_share(self, plan: Path):
        """A function telling the share of ``plan``'s items done so far (from the catalog).

        One read-only connection, asked at most every 0.2 s: opening the catalog
        (a schema check under BEGIN IMMEDIATE) each time would slow the run it watches.
        """
        p = load_plan(plan)
        mid, total = migration_id(p.checksum()), len(p.entries)
        cat = Catalog(self.catalog, create=False)
        self.watchers.append(cat)
        last = [0.0, 0.0]

        def share() -> float:
            if time.monotonic() - last[0] >= 0.2:
                counts = cat.migrations.counts(mid)
                done = sum(st.get("done", {}).get("objects", 0) for st in counts.values())
                last[:] = [time.monotonic(), done / max(1, total)]
            return last[1]

        return share

    def has_run(self) -> bool:
        ok = subprocess.run(self.cli("migrate", "run", "--help"), capture_output=True)
        if ok.returncode != 0:
            print("  skipped: this omnifs has no `migrate run` yet", flush=True)
        return ok.returncode == 0

    def check(self, label: str, ok: bool) -> str:
        if not ok:
            self.failed.append(label)
        return "ok" if ok else "MISSED"

    # -- the rows -------------------------------------------------------------------
    def row_throughput(self) -> None:
        n, reps = self.args.objects, self.args.repeat
        print(f"(1) {n} x 64 KiB, --parallel {self.args.parallel}, {reps} interleaved run(s) "
              "each, medians", flush=True)
        if not self.has_run():
            return
        for dst in self.args.throughput_dst:
            label = f"(1) s3->{dst}"
            ours: list[Child] = []
            theirs: list[Child] = []
            loads = []
            for i in range(reps):
                plan, pl = self.plan(self.omnifs_path("s3", "many"),
                                     self.omnifs_path(dst, f"out-omnifs{i}"), f"tp-{dst}-{i}")
                run = self.run(pl)
                ours.append(Child(plan.wall + run.wall, plan.cpu + run.cpu, max(plan.rss, run.rss)))
                self.clear(dst, f"out-omnifs{i}")
                theirs.append(measured(["rclone", "copy", "--transfers", str(self.args.parallel),
                                        "--s3-no-head", self.rclone_path("s3", "many"),
                                        self.rclone_path(dst, f"out-rclone{i}")], self.rclone_env))
                self.clear(dst, f"out-rclone{i}")
                loads.append(load())
                print(f"    run {i + 1}: omnifs {n / ours[-1].wall:7.1f} obj/s "
                      f"({ours[-1].wall:.1f} s, plan {plan.wall:.1f} s + run {run.wall:.1f} s, "
                      f"CPU {ours[-1].cpu:.1f} s)  rclone {n / theirs[-1].wall:7.1f} obj/s "
                      f"({theirs[-1].wall:.1f} s, CPU {theirs[-1].cpu:.1f} s)  {loads[-1]}",
                      flush=True)
            w_ours = statistics.median(c.wall for c in ours)
            w_rc = statistics.median(c.wall for c in theirs)
            per = 10_000 / n
            ratio = w_rc / w_ours
            print(f"{label:<14} omnifs {n / w_ours:7.1f} obj/s  rclone copy {n / w_rc:7.1f} obj/s  "
                  f"ratio {ratio:.2f} (goal >= 1.3: {self.check(label, ratio >= 1.3)})  "
                  f"CPU per 10,000 objects: omnifs "
                  f"{statistics.median(c.cpu for c in ours) * per:.1f} s, rclone "
                  f"{statistics.median(c.cpu for c in theirs) * per:.1f} s  {load()}", flush=True)

    def lsf(self, kind: str, prefix: str) -> Child:
        return measured(["rclone", "lsf", "-R", "--files-only", self.rclone_path(kind, prefix)],
                        self.rclone_env)

    def row_plan(self) -> None:
        n, reps = self.args.plan_objects, self.args.repeat
        a, b = self.plan_stores()
        ka, kb = self.args.plan_pair
        plans: list[Child] = []
        base: list[tuple[Child, Child]] = []
        other: list[Child] = []
        for i in range(reps):
            child, plan = self.plan(self.omnifs_path(a, "plan"), self.omnifs_path(b, "plan"),
                                    f"plan-big-{i}")
            plans.append(child)
            base.append((self.lsf(a, "plan"), self.lsf(b, "plan")))
            print(f"    run {i + 1}: plan {child.wall:.1f} s (CPU {child.cpu:.1f} s, peak RSS "
                  f"{child.rss / MiB:.0f} MiB); rclone lsf -R {ka} {base[-1][0].wall:.1f} s, "
                  f"{kb} {base[-1][1].wall:.1f} s  {load()}", flush=True)
            if self.args.compare_omnifs:
                c, _ = self.plan(self.omnifs_path(a, "plan"), self.omnifs_path(b, "plan"),
                                 f"plan-other-{i}", [self.args.compare_omnifs])
                other.append(c)
                print(f"           {self.args.compare_omnifs}: plan {c.wall:.1f} s (CPU "
                      f"{c.cpu:.1f} s, peak RSS {c.rss / MiB:.0f} MiB)  {load()}", flush=True)
        s = load_plan(plan).summary
        wall = statistics.median(c.wall for c in plans)
        la = statistics.median(x.wall for x, _ in base)
        lb = statistics.median(y.wall for _, y in base)
        print(f"(2) plan {n} objects {ka}->{kb} (both sides listed) {wall:6.1f} s  "
              f"({n / wall:.0f} obj/s; CPU {statistics.median(c.cpu for c in plans):.1f} s; "
              f"skip {s['skip']['objects']}, copy {s['copy']['objects']}, overwrite "
              f"{s['overwrite']['objects']})  goal <= 30 s: {self.check('(2) plan', wall <= 30)}"
              f"  {load()}", flush=True)
        print(f"    baseline: rclone lsf -R {ka} {la:.1f} s, {kb} {lb:.1f} s (the listing alone, "
              f"one side at a time); plan / slower listing {wall / max(la, lb):.2f}", flush=True)
        peak = max(c.rss for c in plans)
        print(f"(4) plan {n} objects {ka}->{kb} peak RSS {peak / MiB:6.0f} MiB  goal <= 300 MiB: "
              f"{self.check('(4) plan RSS', peak <= 300 * MiB)}", flush=True)
        if other:
            print(f"    the other omnifs ({self.args.compare_omnifs}), same data: plan "
                  f"{statistics.median(c.wall for c in other):.1f} s, CPU "
                  f"{statistics.median(c.cpu for c in other):.1f} s, peak RSS "
                  f"{max(c.rss for c in other) / MiB:.0f} MiB", flush=True)

    def row_resume(self) -> None:
        n = self.args.objects
        print(f"(3) resume after kill -9 at 50 %: {n} x 64 KiB s3->gs", flush=True)
        if not self.has_run():
            return
        _, plan = self.plan(self.omnifs_path("s3", "many"),
                            self.omnifs_path("gs", "out-whole"), "whole")
        whole = self.run(plan).wall
        restart = self.run(plan).wall  # already done: start-up and reading the state
        self.clear("gs", "out-whole")
        _, plan = self.plan(self.omnifs_path("s3", "many"),
                            self.omnifs_path("gs", "out-killed"), "killed")
        share = self.done_share(plan)
        cut = self.run(plan, stop=lambda: share() >= 0.5)
        time.sleep(0.25)
        at = share()
        rest = self.run(plan).wall
        time.sleep(0.25)
        final = share()
        self.clear("gs", "out-killed")
        total = cut.wall + rest
        ok = cut.killed and final == 1.0 and total <= 1.1 * whole + restart
        print(f"    uninterrupted {whole:.1f} s, restart {restart:.1f} s; killed at "
              f"{at * 100:.0f} % after {cut.wall:.1f} s, rerun {rest:.1f} s: total {total:.1f} s "
              f"(goal <= {1.1 * whole + restart:.1f} s: {self.check('(3) resume', ok)})  "
              f"{load()}", flush=True)

    def row_rss_run(self) -> None:
        n, cut = self.args.plan_objects, self.args.rss_run_share
        part = "" if cut >= 1 else f", stopped (SIGKILL) once {cut * 100:.0f} % of it is done"
        print(f"(4) run {n} objects{part}", flush=True)
        if not self.has_run():
            return
        a, b = self.plan_stores()
        _, plan = self.plan(self.omnifs_path(a, "plan"), self.omnifs_path(b, "out-rss"),
                            "rss-run")
        share = self.done_share(plan)
        run = self.run(plan, stop=(lambda: share() >= cut) if cut < 1 else None)
        time.sleep(0.25)
        done = share()
        print(f"(4) run {n} objects peak RSS {run.rss / MiB:6.0f} MiB ({run.wall:.0f} s, CPU "
              f"{run.cpu:.0f} s, {done * 100:.0f} % done)  goal <= 300 MiB: "
              f"{self.check('(4) run RSS', run.rss <= 300 * MiB)}  {load()}", flush=True)
        # the last row: its copies go with the servers' temporary directories (purging
        # 100,000 blobs one request each would take Azurite longer than the run)

    def main(self) -> None:
        rows = self.args.rows
        if {"throughput", "resume"} & set(rows):
            self.seed(("s3",), "many", self.args.objects, 64 * 1024)
        if {"plan", "rss", "rss-run"} & set(rows):
            # the planning rows diff two full sides; the run copies from the source alone
            sides = self.plan_stores() if {"plan", "rss"} & set(rows) else self.plan_stores()[:1]
            self.seed(sides, "plan", self.args.plan_objects, self.args.plan_size)
        if "throughput" in rows:
            self.row_throughput()
        if "plan" in rows or "rss" in rows:
            self.row_plan()
        if "resume" in rows:
            self.row_resume()
        if "rss-run" in rows:
            self.row_rss_run()
        if self.failed:
            print(f"missed: {', '.join(self.failed)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS),
                    help=f"comma-separated rows to run, of {', '.join(ROWS)} (all)")
    ap.add_argument("--objects", type=int, default=10_000,
                    help="64 KiB objects of the throughput and resume rows (10000)")
    ap.add_argument("--plan-objects", type=int, default=100_000,
                    help="objects of the planning and RSS rows (100000)")
    ap.add_argument("--plan-size", type=int, default=1024,
                    help="bytes per object of the planning and RSS rows (1024)")
    ap.add_argument("--plan-pair", default="s3,az",
                    help="SRC,DST stores of the planning and RSS rows (s3,az)")
    ap.add_argument("--compare-omnifs", metavar="PATH",
                    help="plan and rss rows: also run `migrate plan` with this omnifs (another "
                         "build, e.g. main's .venv/bin/omnifs) on the same data, after ours")
    ap.add_argument("--throughput-dst", default="gs,az",
                    help="destinations of the throughput row, of gs, az (gs,az)")
    ap.add_argument("--rss-run-share", type=float, default=1.0,
                    help="rss-run: stop the run (SIGKILL) once this share of it is done (1.0: "
                         "the whole run; the run's memory is set by its start-up: the plan "
                         "loaded, the catalog's items, the queue)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="interleaved runs of the throughput and planning rows (3; medians)")
    ap.add_argument("--parallel", type=int, default=8,
                    help="migrate run --parallel and rclone --transfers (8)")
    args = ap.parse_args()
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    args.plan_pair = [k.strip() for k in args.plan_pair.split(",")]
    if len(args.plan_pair) != 2 or not set(args.plan_pair) <= set(KINDS):
        sys.exit(f"--plan-pair: two stores of {', '.join(KINDS)}, e.g. s3,az or file,file")
    args.throughput_dst = [k.strip() for k in args.throughput_dst.split(",") if k.strip()]
    if not args.throughput_dst or not set(args.throughput_dst) <= {"gs", "az"}:
        sys.exit("--throughput-dst: gs, az or gs,az")
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        sys.exit(f"unknown row {unknown[0]!r}: use {', '.join(ROWS)}")
    if not shutil.which("rclone"):
        sys.exit("bench/migrate.py needs rclone in PATH (apt-get install rclone)")
    bench = Bench(args)
    try:
        bench.main()
    finally:
        bench.close()
    sys.exit(1 if bench.failed else 0)


if __name__ == "__main__":
    main()
