"""Replication throughput, lag and failover of the daemon, beside rclone, in one run.

(a) throughput: N x 256 KiB files, then one big file, recorded on store A the
    way the mount's publisher records a close (upload to A, queue the copy to
    B); the daemon runs until every copy is synced. Baseline: ``rclone copy``
    of the same objects from A to a fresh bucket on B (same two servers, same
    concurrency). Reported as MB/s, files/s and ours / rclone (>= 1.0 is the goal).
(b) lag: files written at a steady rate (20/s) while the daemon runs; lag is
    the time from a file's close being recorded to its second copy being synced.
(c) failover: server B is stopped; how long until the daemon's health state
    says "down", and until a read of a file (ranked by that state, falling
    back on error) succeeds from the other replica.

Two moto servers (separate processes) stand in for two clouds. Usage::

    .venv/bin/python bench/replication.py --small     # 200 files + 64 MiB, 8 s of load
    .venv/bin/python bench/replication.py             # 1,000 files + 1 GiB, 30 s of load
    .venv/bin/python bench/replication.py --only big --repeat 5   # one case, median of 5

Reading the small-file ratio: on a 2-core host running both moto servers,
the run is CPU-bound. Measured here per 256 KiB object: moto (both servers)
~5 ms, rclone ~1 ms, this process ~6 ms (py-spy --gil: boto3's GET + PUT ~65%
of it, ~1.5 and ~2 ms of CPU each even with botocore's dateutil timestamp
parsing replaced; trio's thread hops and the worker bookkeeping ~25%; the
catalog ~1%), so the ratio tracks (moto + rclone CPU) / (moto + our CPU),
about 0.7. The big file is bound by the destination server for both (ratio ~1).
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
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import trio

from daemon.main import Daemon
from daemon.state import read_health
from omnifs.catalog import Catalog
from omnifs.config import parse_config
from policy.placement import ProviderView, rank_reads
from providers import META_MTIME, META_SHA256, OmnifsError, open_provider
from tests import servers as S

KiB = 1024
MiB = 1024 * KiB
CONCURRENCY = 8


def provider_table(endpoint: str, bucket: str, timeout: float = 5.0) -> dict:
    return {"uri": f"s3://{bucket}", "endpoint": endpoint, "access_key": "t", "secret_key": "t",
            "region": "us-east-1", "timeout": timeout}


def make_config(work: Path, a: dict, b: dict, **daemon) -> object:
    return parse_config({
        "catalog": {"url": f"sqlite:///{work}/catalog.db"},
        "cache": {"dir": str(work / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {"a": a, "b": b},
        "daemon": {"workers": CONCURRENCY, "per_provider": CONCURRENCY, "probe_interval": 0.5,
                   "probe_timeout": 1.0, "idle_poll": 0.02, "reconcile_interval": 0,
                   "retry_base": 0.2, "retry_max": 2.0} | daemon,
        "metrics": {"port": 0},
    })


def record(cat: Catalog, path: str, sha: str, size: int, t_ns: int, etag: str | None) -> int:
    """The catalog rows the mount's publisher writes after uploading to A."""
    parent_path, _, name = path.rpartition("/")
    parent = cat.ensure_dirs(parent_path)
    import stat

    ino = cat.create(parent, name, stat.S_IFREG | 0o644, 0, 0).id
    with cat.transaction():
        cat.update(ino, version=1, sha256=sha, size=size, mtime_ns=t_ns)
        cat.set_replica(ino, "a", path, 1, "synced", etag)
        cat.enqueue("replicate", {"inode": ino, "provider": "b"}, dedup=f"replicate:{ino}:b")
        cat.add_version(ino, 1, sha, size, t_ns)
    return ino


def upload(provider, path: str, data: bytes) -> tuple[str, str, int, int, str | None]:
    sha = hashlib.sha256(data).hexdigest()
    t_ns = time.time_ns()
    info = provider.write_bytes(path, data, {META_SHA256: sha, META_MTIME: f"{t_ns / 1e9:.9f}"})
    return path, sha, len(data), t_ns, info.etag


def seed(cat: Catalog, provider, files: dict[str, int]) -> int:
    """Upload ``files`` (path -> size) to A in parallel and record them; total bytes."""
    rnd = os.urandom(MiB)

    def payload(size: int, salt: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            out += rnd[salt % 1024:]
        return bytes(out[:size])

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda kv: upload(provider, kv[1][0], payload(kv[1][1], kv[0])),
                                enumerate(files.items())))
    for path, sha, size, t_ns, etag in results:
        record(cat, path, sha, size, t_ns, etag)
    return sum(files.values())


def run_daemon(cfg, until, during=None, timeout: float = 3600) -> float:
    """Run the daemon in-process until ``until(catalog)``; seconds from start of work."""
    watch = Catalog(cfg.catalog_path())
    out = {}

    async def main():
        d = Daemon(cfg)
        side = trio.CancelScope()

        async def side_task():
            with side:
                await during(d)

        async with trio.open_nursery() as nursery:
            await nursery.start(d.run)
            start = time.monotonic()
            if during is not None:
                nursery.start_soon(side_task)
            with trio.fail_after(timeout):
                while not until(watch):
                    await trio.sleep(0.01)
            out["t"] = time.monotonic() - start
            side.cancel()
            d.stop()

    trio.run(main)
    watch.close()
    return out["t"]


def drained(cat: Catalog) -> bool:
    return cat.pending_count() == 0 and cat.under_replicated(2) == 0


def rclone_copy(src: tuple[str, str], dst: tuple[str, str], prefix: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    for name, (endpoint, _bucket) in (("SRC", src), ("DST", dst)):
        env |= {f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
                f"RCLONE_CONFIG_{name}_ENDPOINT": endpoint,
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": "t",
                f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": "t"}
    argv = ["rclone", "copy", f"src:{src[1]}/{prefix}", f"dst:{dst[1]}/{prefix}", "--s3-no-head",
            "--transfers", str(CONCURRENCY), "--checkers", str(CONCURRENCY), "--no-check-dest",
            "--s3-upload-cutoff", "16M", "--s3-chunk-size", "16M"]
    start = time.monotonic()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.monotonic() - start


def throughput(args, sa, sb, work: Path) -> list[dict]:
    """Each case ``args.repeat`` times, ours then rclone's in turn; the medians."""
    cases = [("small files", {f"many/d{i % 20}/f{i:05d}": 256 * KiB for i in range(args.files)}),
             ("one big file", {"big/file.bin": args.big_mib * MiB})]
    cases = [c for c in cases if args.only in ("all", "small" if c[0] == "small files" else "big")]
    rows = []
    for label, files in cases:
        runs = [_throughput_once(label, files, sa, sb, work) for _ in range(args.repeat)]
        row = dict(runs[0])
        for k in ("ours_s", "rclone_s"):
            row[k] = statistics.median(r[k] for r in runs)
            row[k + "_all"] = [r[k] for r in runs]
        rows.append(row)
    return rows


_CASE = [0]


def _throughput_once(label: str, files: dict[str, int], sa, sb, work: Path) -> dict:
    """One run of one case on fresh buckets: our daemon A -> B and rclone A -> B, in turns."""
    _CASE[0] += 1
    bucket_a, bucket_b, bucket_r = (S.unique_bucket(x) for x in ("a", "b", "r"))
    S.create_bucket("s3", sa.endpoint, bucket_a)
    S.create_bucket("s3", sb.endpoint, bucket_b)
    S.create_bucket("s3", sb.endpoint, bucket_r)
    case = work / f"tp{_CASE[0]}"
    case.mkdir()
    # moto assembles a 1 GiB multipart upload slowly: generous timeouts here
    cfg = make_config(case, provider_table(sa.endpoint, bucket_a, timeout=120.0),
                      provider_table(sb.endpoint, bucket_b, timeout=120.0))
    cat = Catalog(cfg.catalog_path())
    pa = open_provider(cfg.providers["a"])
    total = seed(cat, pa, files)
    prefix = next(iter(files)).split("/")[0]
    # take turns at going first: the first big upload into a quiet moto is slower
    if _CASE[0] % 2:
        ours = run_daemon(cfg, drained)
        theirs = rclone_copy((sa.endpoint, bucket_a), (sb.endpoint, bucket_r), prefix)
    else:
        theirs = rclone_copy((sa.endpoint, bucket_a), (sb.endpoint, bucket_r), prefix)
        ours = run_daemon(cfg, drained)
    cat.close()
    pa.close()
    return {"case": label, "files": len(files), "MB": total / 1e6, "ours_s": ours,
            "rclone_s": theirs}


def lag(args, sa, sb, work: Path) -> dict:
    bucket_a, bucket_b = S.unique_bucket("a"), S.unique_bucket("b")
    S.create_bucket("s3", sa.endpoint, bucket_a)
    S.create_bucket("s3", sb.endpoint, bucket_b)
    case = work / "lag"
    case.mkdir()
    cfg = make_config(case, provider_table(sa.endpoint, bucket_a),
                      provider_table(sb.endpoint, bucket_b))
    pa = open_provider(cfg.providers["a"])
    writer_cat = Catalog(cfg.catalog_path())
    closed: dict[int, float] = {}
    synced: dict[int, float] = {}
    total = int(args.rate * args.seconds)
    done = threading.Event()

    def writer():
        data = os.urandom(64 * KiB)
        start = time.monotonic()
        for i in range(total):
            target = start + i / args.rate
            time.sleep(max(0.0, target - time.monotonic()))
            path, sha, size, t_ns, etag = upload(pa, f"lag/f{i:05d}", data + i.to_bytes(4, "big"))
            ino = record(writer_cat, path, sha, size, t_ns, etag)
            closed[ino] = time.monotonic()
        done.set()

    async def watch(d):
        poll = Catalog(cfg.catalog_path())
        while True:
            rows = poll.db.execute("SELECT inode FROM replicas WHERE provider = 'b' AND "
                                   "state = 'synced'").fetchall()
            now = time.monotonic()
            for (ino,) in rows:
                synced.setdefault(ino, now)
            await trio.sleep(0.01)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    run_daemon(cfg, lambda c: done.is_set() and drained(c) and len(synced) >= total,
               during=watch)
    lags = sorted(synced[i] - closed[i] for i in closed if i in synced)
    q = statistics.quantiles(lags, n=100)
    return {"files": len(lags), "rate": args.rate, "p50": q[49], "p95": q[94], "max": lags[-1]}


def failover(args, work: Path) -> dict:
    sa, sb = S.start("s3"), S.start("s3")
    try:
        bucket_a, bucket_b = S.unique_bucket("a"), S.unique_bucket("b")
        S.create_bucket("s3", sa.endpoint, bucket_a)
        S.create_bucket("s3", sb.endpoint, bucket_b)
        case = work / "failover"
        case.mkdir()
        # b is the fast "primary" replica for reads: it is listed first
        cfg = make_config(case, provider_table(sa.endpoint, bucket_a, timeout=1.0),
                          provider_table(sb.endpoint, bucket_b, timeout=1.0))
        cat = Catalog(cfg.catalog_path())
        pa = open_provider(cfg.providers["a"])
        seed(cat, pa, {f"fo/f{i}": 64 * KiB for i in range(20)})
        readers = {n: open_provider(cfg.providers[n]) for n in ("a", "b")}
        result: dict = {}

        def read_once() -> str | None:
            """One read as a health-aware reader does it: rank by state, fall back on error."""
            health = read_health(cfg.catalog_path())
            views = [ProviderView(n, status=health[n].status if n in health else "unknown",
                                  latency=0.0 if n == "b" else 1.0, order=i)
                     for i, n in enumerate(("b", "a"))]
            for v in rank_reads(views):
                try:
                    readers[v.name].read_bytes("fo/f3")
                    return v.name
                except OmnifsError:
                    continue
            return None

        async def chaos(d):
            while not drained(cat):
                await trio.sleep(0.05)
            await trio.sleep(1.0)
            stopped = time.monotonic()
            sb.stop()
            first_ok = None
            while True:
                got = await trio.to_thread.run_sync(read_once)
                if got is not None and first_ok is None:
                    first_ok = time.monotonic() - stopped
                    result["read_from"] = got
                if d.board.status("b") == "down":
                    result["health_down_s"] = time.monotonic() - stopped
                    break
                await trio.sleep(0.05)
            result["read_ok_s"] = first_ok
            t0 = time.monotonic()
            got = await trio.to_thread.run_sync(read_once)
            result["read_after_down_s"] = time.monotonic() - t0
            result["read_after_down_from"] = got
            result["done"] = True

        run_daemon(cfg, lambda c: result.get("done", False), during=chaos, timeout=120)
        return result
    finally:
        sa.stop()
        sb.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="200 files, 64 MiB, 8 s of load")
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--big-mib", type=int, default=None)
    ap.add_argument("--rate", type=float, default=20.0, help="files per second for (b)")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="runs per throughput case (median)")
    ap.add_argument("--only", choices=("all", "small", "big", "lag", "failover"), default="all")
    args = ap.parse_args()
    args.files = args.files or (200 if args.small else 1000)
    args.big_mib = args.big_mib or (64 if args.small else 1024)
    args.seconds = args.seconds or (8.0 if args.small else 30.0)
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if shutil.which("rclone") is None:
        print("rclone is not installed: the baseline of (a) cannot run", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="omnifs-bench-repl-"))
    sa, sb = S.start("s3"), S.start("s3")
    try:
        print(f"(a) replication throughput, {CONCURRENCY} transfers at once, A -> B (two moto servers)")
        print(f"    {'case':<14} {'files':>6} {'MB':>8} {'ours s':>8} {'MB/s':>8} {'files/s':>8}"
              f" {'rclone s':>9} {'MB/s':>8} {'ratio':>6}")
        for r in throughput(args, sa, sb, work):
            ratio = r["rclone_s"] / r["ours_s"]
            print(f"    {r['case']:<14} {r['files']:>6} {r['MB']:>8.1f} {r['ours_s']:>8.2f} "
                  f"{r['MB'] / r['ours_s']:>8.1f} {r['files'] / r['ours_s']:>8.1f} "
                  f"{r['rclone_s']:>9.2f} {r['MB'] / r['rclone_s']:>8.1f} {ratio:>6.2f}")
            print(f"      runs: ours {', '.join(f'{x:.2f}' for x in r['ours_s_all'])} s; "
                  f"rclone {', '.join(f'{x:.2f}' for x in r['rclone_s_all'])} s")
        if args.only not in ("all", "lag"):
            return 0
        lr = lag(args, sa, sb, work)
        print(f"(b) replication lag at {lr['rate']:.0f} files/s (64 KiB), {lr['files']} files: "
              f"p50 {lr['p50'] * 1000:.0f} ms, p95 {lr['p95'] * 1000:.0f} ms, "
              f"max {lr['max'] * 1000:.0f} ms")
    finally:
        sa.stop()
        sb.stop()
    fo = failover(args, work)
    print(f"(c) failover after server B is killed: health state 'down' after "
          f"{fo['health_down_s']:.2f} s; first successful read (from {fo.get('read_from')}) "
          f"after {fo['read_ok_s']:.2f} s; a read once B is marked down takes "
          f"{fo['read_after_down_s'] * 1000:.0f} ms (from {fo['read_after_down_from']})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
