"""A PostgreSQL catalog against the SQLite one, in the same run (issue 22's numbers 1 and 3).

1. ``ls -l`` of a directory of 10,000 files through a mount: PostgreSQL ≤ 2 × SQLite and
   ≤ 0.5 s (medians of ``--runs``; each run after the kernel's attribute cache expired,
   so the mount answers every lookup from its catalog).
2. (number 2, two mounts on one namespace, is the coherence work's bench)
3. Replication of 2,000 small files by the daemon on one PostgreSQL queue: three
   ``omnifs daemon`` processes ≥ 2 × one (files per second, from the moment the queued
   items become due -- once every process runs -- until the queue is empty). Each of
   ``--runs`` rounds times one daemon, then three, on a fresh database; the medians are
   compared. CPU per file (daemon processes, and the PostgreSQL server's processes) shows
   the ceiling: on a machine of N cores, files/s can at most reach N / (CPU s per file).
   ``--profile cross-region`` puts every store of the daemons behind that network profile
   (bench/profiled_daemon.py), as between clouds, where items wait on the network rather
   than on this machine's CPU.

The tree is written once into a SQLite catalog and copied to PostgreSQL with
``omnifs catalog migrate`` (which this also times). Stores are ``file://`` directories;
PostgreSQL is a throwaway cluster (tests/servers.py) on loopback TCP.

    .venv/bin/python bench/pg_catalog.py [--files 10000] [--replicate 2000] [--runs 5]
        [--only ls|replication] [--profile NAME]
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
import signal
import stat
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass

ROOT = _HERE.parent

from omnifs.bench.netprofile import PROFILES
from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.processes import WORKER_PREFIX
from omnifs.providers import META_MTIME, META_SHA256, ProviderSettings, open_provider
from omnifs.work import Replicate, enqueue
from tests import servers as S

OMNIFS = [sys.executable, "-m", "omnifs"]


def sh(*argv: str) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def config(d: Path, url: str, stores: dict[str, Path], daemon: str = "") -> Path:
    text = (f'[catalog]\nurl = "{url}"\n[cache]\ndir = "{d}/cache"\n'
            f"[replication]\ncopies = {len(stores)}\nwrite_quorum = 1\n")
    for name, path in stores.items():
        text += f'[providers.{name}]\nuri = "file://{path}"\n'
    text += daemon + "[metrics]\nport = 0\n"
    cfg = d / "omnifs.toml"
    cfg.write_text(text)
    cfg.chmod(0o600)
    return cfg


def tree(path: Path, n: int) -> None:
    """A SQLite catalog with ``dir/`` of ``n`` files (attributes only: ``ls -l`` reads no bytes)."""
    cat = Catalog(path)
    with cat.transaction():
        d = cat.ns.create(ROOT_INODE, "dir", stat.S_IFDIR | 0o755, 0, 0)
        for i in range(n):
            cat.ns.create(d.id, f"f{i:05d}", stat.S_IFREG | 0o644, 0, 0, size=100 + i,
                          sha256=f"{i:064x}", version=1)
    cat.close()


def ls_l(work: Path, url: str, name: str, runs: int) -> float:
    d = work / name
    d.mkdir()
    (d / "s").mkdir()
    cfg = config(d, url, {"one": d / "s"})
    mp = d / "mnt"
    mp.mkdir()
    sh(*OMNIFS, "--config", str(cfg), "mount", str(mp))
    try:
        sh("ls", "-l", str(mp / "dir"))  # first: the kernel learns the entries
        times = []
        for _ in range(runs):
            time.sleep(1.2)  # past the mount's attribute timeout: every lookup reaches it
            t = time.perf_counter()
            out = sh("ls", "-l", str(mp / "dir"))
            times.append(time.perf_counter() - t)
        assert out.count("\n") >= 2, out[:200]
        return statistics.median(times)
    finally:
        sh(*OMNIFS, "--config", str(cfg), "umount", str(mp))


def replication_source(work: Path, n: int) -> tuple[Path, Path]:
    """``n`` small files in store ``one`` and a SQLite catalog queueing their copy to ``two``."""
    store = work / "one"
    store.mkdir()
    one = open_provider(ProviderSettings(name="one", uri=f"file://{store}"))
    cat = Catalog(work / "repl.db")
    d = cat.ns.create(ROOT_INODE, "r", stat.S_IFDIR | 0o755, 0, 0)
    with cat.transaction():
        for i in range(n):
            data = f"file {i}\n".encode() * 20
            sha = hashlib.sha256(data).hexdigest()
            t = time.time_ns()
            f = cat.ns.create(d.id, f"f{i:05d}", stat.S_IFREG | 0o644, 0, 0, size=len(data),
                              sha256=sha, version=1, mtime_ns=t)
            info = one.write_bytes(f"r/f{i:05d}", data,
                                   {META_SHA256: sha, META_MTIME: f"{t / 1e9:.9f}"})
            cat.replicas.set(f.id, "one", f"r/f{i:05d}", 1, "synced", info.etag)
            cat.replicas.set(f.id, "two", f"r/f{i:05d}", 1, "pending")
            cat.replicas.add_version(f.id, 1, sha, len(data), t)
            enqueue(cat.work, Replicate(inode=f.id, provider="two"))
    cat.close()
    one.close()
    return work / "repl.db", store


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(pg) -> list[int]:
    """The PostgreSQL cluster's processes: the postmaster and its children (the backends)."""
    master = int((pg.data / "postmaster.pid").read_text().split()[0])
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_ = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat_[1]) == master:
                pids.append(int(entry.name))
    return pids


@dataclass
class Round:
    files_per_s: float
    #: CPU seconds per file of the daemon processes, and of the PostgreSQL server
    daemon_cpu: float
    server_cpu: float
    load: float


def replicate(work: Path, pg, source: Path, store: Path, procs: int, tag: str,
              net: str | None = None) -> Round:
    """Files per second ``procs`` daemon processes replicate from one PostgreSQL queue, their
    stores behind the network profile ``net`` when one is named."""
    d = work / f"daemons{procs}{tag}"
    d.mkdir()
    (d / "two").mkdir()
    url = pg.database(f"repl{procs}{tag}")
    sh(*OMNIFS, "catalog", "migrate", "--from", f"sqlite:///{source}", "--to", url)
    cat = Catalog(url)
    items = cat.work.work_items("pending")
    for it in items:  # held back until every process runs: start-up is not measured
        cat.work.defer(it.id, time.time() + 3600)
    cfg = config(d, url, {"one": store, "two": d / "two"},
                 daemon="[daemon]\nidle_poll = 0.05\nreconcile_interval = 0\n"
                        "snapshot_interval = 0\n")
    launch = [sys.executable, str(_HERE / "profiled_daemon.py"), net] if net else OMNIFS
    running = [subprocess.Popen([*launch, "--config", str(cfg), "daemon"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(procs)]
    try:
        while len(cat.meta_items(WORKER_PREFIX)) < procs:
            for p in running:
                if p.poll() is not None:
                    raise RuntimeError(p.stderr.read().decode()[-400:])  # type: ignore[union-attr]
            time.sleep(0.05)
        time.sleep(1.0)
        mine = [p.pid for p in running]
        theirs = server_pids(pg)
        cpu0 = [cpu_seconds(p) for p in mine], {p: cpu_seconds(p) for p in theirs}
        start = time.monotonic()
        cat.work.release_deferred(["replicate"])
        while cat.work.pending_count():
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        daemon_cpu = sum(cpu_seconds(p) for p in mine) - sum(cpu0[0])
        # backends that came and went in between are not counted (the daemons keep theirs)
        server_cpu = sum(cpu_seconds(p) - cpu0[1].get(p, 0.0) for p in server_pids(pg))
        load = os.getloadavg()[0]
    finally:
        for p in running:
            p.send_signal(signal.SIGTERM)
        for p in running:
            p.wait(timeout=60)
    assert len(os.listdir(d / "two" / "r")) == len(items)
    cat.close()
    n = len(items)
    return Round(n / elapsed, daemon_cpu / n, server_cpu / n, load)


def summary(rounds: list[Round]) -> str:
    med = statistics.median
    return (f"{med(r.files_per_s for r in rounds):.0f} files/s "
            f"(runs {', '.join(f'{r.files_per_s:.0f}' for r in rounds)}; CPU per file: daemons "
            f"{med(r.daemon_cpu for r in rounds) * 1000:.1f} ms, PostgreSQL "
            f"{med(r.server_cpu for r in rounds) * 1000:.1f} ms; load "
            f"{med(r.load for r in rounds):.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--replicate", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=("ls", "replication"))
    ap.add_argument("--profile", choices=sorted(PROFILES),
                    help="the daemons' stores behind this network profile (number 3)")
    args = ap.parse_args()
    reason = S.postgres_missing()
    if reason:
        print(f"skipped: {reason}")
        return 1
    work = Path(tempfile.mkdtemp(prefix="omnifs-pgbench-"))
    pg = S.PostgresCluster()
    ok = True
    try:
        if args.only in (None, "ls"):
            tree(work / "tree.db", args.files)
            url = pg.database("ls")
            t = time.perf_counter()
            sh(*OMNIFS, "catalog", "migrate", "--from", f"sqlite:///{work}/tree.db", "--to", url)
            print(f"catalog migrate of {args.files} files to PostgreSQL: "
                  f"{time.perf_counter() - t:.1f} s")
            lite = ls_l(work, f"sqlite:///{work}/tree.db", "sqlite", args.runs)
            post = ls_l(work, url, "postgresql", args.runs)
            ratio = post / lite
            good = ratio <= 2.0 and post <= 0.5
            ok &= good
            print(f"1. ls -l of {args.files} files (median of {args.runs}): SQLite {lite:.3f} s, "
                  f"PostgreSQL {post:.3f} s, ratio {ratio:.2f} (goal <= 2 and <= 0.5 s: "
                  f"{'met' if good else 'MISSED'})")
        if args.only in (None, "replication"):
            source, store = replication_source(work, args.replicate)
            ones: list[Round] = []
            threes: list[Round] = []
            for i in range(args.runs):
                ones.append(replicate(work, pg, source, store, 1, f"r{i}", args.profile))
                threes.append(replicate(work, pg, source, store, 3, f"r{i}", args.profile))
            one = statistics.median(r.files_per_s for r in ones)
            three = statistics.median(r.files_per_s for r in threes)
            good = three >= 2 * one
            ok &= good
            where = f"stores behind {args.profile}" if args.profile else "local file:// stores"
            print(f"3. replication of {args.replicate} small files, {where} "
                  f"(median of {args.runs}):\n"
                  f"   1 daemon  {summary(ones)}\n   3 daemons {summary(threes)}\n"
                  f"   x{three / one:.2f} (goal >= 2: {'met' if good else 'MISSED'}; "
                  f"{os.cpu_count()} cores)")
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
