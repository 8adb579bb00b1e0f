"""Replication throughput, lag and failover of the daemon, beside rclone, in one run.

(a) throughput: N x 256 KiB files, then one big file, are written; then the
    daemon (in this process, none runs during the writes) is timed until every
    second copy is synced. ``--source mount`` (default) writes them through a
    real FUSE mount of the case's config (8 writer threads; close uploads to A,
    the mount keeps the bytes in its cache dir, which the daemon may copy from);
    the time the writes took is reported too, as it is paid before replication
    starts. ``--source seed`` uploads them straight to A and writes the catalog
    rows the mount would (no cache: the daemon GETs from A), for comparison.
    Provider b has a tiny placement weight so every first copy lands on A (the
    bench checks it). Baseline: ``rclone copy`` of the same objects from A to a
    fresh bucket on B (same two servers, same concurrency). Reported as MB/s,
    files/s and ours / rclone (>= 1.0 is the goal), with how many of our copies
    came from the local cache and how many from A (the daemon's
    ``omnifs_replica_copies_total``).
(b) lag: files written at a steady rate (20/s) while the daemon runs; lag is
    the time from a file's close being recorded to its second copy being synced.
(c) failover: server B is stopped; how long until the daemon's health state
    says "down", and until a read of a file (ranked by that state, falling
    back on error) succeeds from the other replica.

Two moto servers (separate processes) stand in for two clouds. Usage::

    .venv/bin/python bench/replication.py --small     # 200 files + 64 MiB, 8 s of load
    .venv/bin/python bench/replication.py             # 1,000 files + 1 GiB, 30 s of load
    .venv/bin/python bench/replication.py --only big --repeat 5   # one case, median of 5
    .venv/bin/python bench/replication.py --source seed           # (a) without the mount

Reading the small-file ratio: on a 2-core host running both moto servers,
the run is CPU-bound, so it tracks (moto + rclone CPU) / (moto + our CPU).
Copied from A (``--source seed``) both tools pay moto A's GETs and ~0.94 is
what we reach (our process ~4.5 ms of CPU per object against rclone's ~2).
Through the mount, the copies come from the cache: no GET, no CPU on moto A,
~1.3. The big file is bound by the destination server's multipart assembly
for both (ratio ~1), wherever its bytes come from.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds copy.py, which would shadow the stdlib's copy module for this script
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import contextlib
import hashlib
import json
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

from omnifs.catalog import Catalog
from omnifs.config import load_config, parse_config
from omnifs.daemon.main import Daemon
from omnifs.daemon.state import read_health
from omnifs.policy.placement import ProviderView, rank_reads
from omnifs.providers import META_MTIME, META_SHA256, OmnifsError, open_provider
from omnifs.work import Replicate, enqueue
from tests import servers as S
from tests.poll import wait_until

KiB = 1024
MiB = 1024 * KiB
CONCURRENCY = 8
#: the omnifs console script of this venv (.venv/bin/omnifs)
OMNIFS = Path(sys.executable).parent / "omnifs"
#: seconds a mount may take to appear, and to go away after fusermount3 -u
MOUNT_TIMEOUT = 60.0
#: placement weight of provider b in (a): every first copy lands on a, so
#: rclone's A -> B copy moves the same bytes as the daemon
WEIGHT_B = 0.001


def provider_table(endpoint: str, bucket: str, timeout: float = 5.0) -> dict:
    return {"uri": f"s3://{bucket}", "endpoint": endpoint, "access_key": "t", "secret_key": "t",
            "region": "us-east-1", "timeout": timeout}


def make_config(work: Path, a: dict, b: dict, **daemon) -> object:
    return parse_config(config_dict(work, a, b, **daemon))


def config_dict(work: Path, a: dict, b: dict, **daemon) -> dict:
    return {
        "catalog": {"url": f"sqlite:///{work}/catalog.db"},
        "cache": {"dir": str(work / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {"a": a, "b": b},
        "daemon": {"workers": CONCURRENCY, "per_provider": CONCURRENCY, "probe_interval": 0.5,
                   "probe_timeout": 1.0, "idle_poll": 0.02, "reconcile_interval": 0,
                   "retry_base": 0.2, "retry_max": 2.0} | daemon,
        "metrics": {"port": 0},
    }


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def toml_text(data: dict, table: str = "") -> str:
    """Tables of scalars (nested tables as ``[a.b]``): all a bench config needs."""
    lines = [f"[{table}]"] if table and any(not isinstance(v, dict) for v in data.values()) else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n" if lines else ""
    for k, v in data.items():
        if isinstance(v, dict):
            text += toml_text(v, f"{table}.{k}" if table else k)
    return text


def write_config(case: Path, data: dict) -> Path:
    """The config as the mount reads it: a TOML file, mode 0600 (it holds keys)."""
    path = case / "omnifs.toml"
    path.write_text(toml_text(data))
    path.chmod(0o600)
    return path


def record(cat: Catalog, path: str, sha: str, size: int, t_ns: int, etag: str | None) -> int:
    """The catalog rows the mount's publisher writes after uploading to A."""
    parent_path, _, name = path.rpartition("/")
    parent = cat.ns.ensure_dirs(parent_path)
    import stat

    ino = cat.ns.create(parent, name, stat.S_IFREG | 0o644, 0, 0).id
    with cat.transaction():
        cat.ns.update(ino, version=1, sha256=sha, size=size, mtime_ns=t_ns)
        cat.replicas.set(ino, "a", path, 1, "synced", etag)
        enqueue(cat.work, Replicate(inode=ino, provider="b"))
        cat.replicas.add_version(ino, 1, sha, size, t_ns)
    return ino


def upload(provider, path: str, data: bytes) -> tuple[str, str, int, int, str | None]:
    sha = hashlib.sha256(data).hexdigest()
    t_ns = time.time_ns()
    info = provider.write_bytes(path, data, {META_SHA256: sha, META_MTIME: f"{t_ns / 1e9:.9f}"})
    return path, sha, len(data), t_ns, info.etag


def payload_chunks(rnd: bytes, size: int, salt: int):
    """File number ``salt``'s content, in pieces: ``rnd`` from offset ``salt % 1024``, repeated."""
    piece = rnd[salt % 1024:]
    left = size
    while left > 0:
        chunk = piece[:left]
        yield chunk
        left -= len(chunk)


def seed(cat: Catalog, provider, files: dict[str, int]) -> int:
    """Upload ``files`` (path -> size) to A in parallel and record them; total bytes."""
    rnd = os.urandom(MiB)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(
            lambda kv: upload(provider, kv[1][0], b"".join(payload_chunks(rnd, kv[1][1], kv[0]))),
            enumerate(files.items())))
    for path, sha, size, t_ns, etag in results:
        record(cat, path, sha, size, t_ns, etag)
    return sum(files.values())


SOURCES = ("cache", "store", "server-side")


def run_daemon(cfg, until, during=None, timeout: float = 3600) -> tuple[float, dict[str, int]]:
    """Run the daemon in-process until ``until(catalog)``: seconds from start of work, and
    how many copies it made from each source (the local cache, a store, server-side)."""
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
                await wait_until(lambda: until(watch), every=0.01)
            out["t"] = time.monotonic() - start
            side.cancel()
            d.stop()
        get = d.metrics.registry.get_sample_value
        out["sources"] = {s: int(get("omnifs_replica_copies_total", {"source": s}) or 0)
                          for s in SOURCES}

    trio.run(main)
    watch.close()
    return out["t"], out["sources"]


def drained(cat: Catalog) -> bool:
    return cat.work.pending_count() == 0 and cat.replicas.under_replicated(2) == 0


@contextlib.contextmanager
def mounted(cfg_path: Path, mp: Path):
    """A real ``omnifs mount`` of ``cfg_path`` at ``mp`` (a child we own), unmounted on exit."""
    mp.mkdir()
    log = mp.with_name(mp.name + ".log")
    with open(log, "wb") as logf:
        proc = subprocess.Popen([str(OMNIFS), "--config", str(cfg_path), "mount", str(mp),
                                 "--foreground"], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, cwd=_HERE.parent)
    def last_line() -> str:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return f" (mount log: {lines[-1].strip()})" if lines else ""

    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mp):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"omnifs mount at {mp} did not come up{last_line()}")
            time.sleep(0.05)
        try:
            yield mp
        except OSError as e:
            raise RuntimeError(f"writing through the mount failed: {e}{last_line()}") from None
    finally:
        unmount(mp, proc)


def unmount(mp: Path, proc: subprocess.Popen) -> None:
    """fusermount3 -u, wait for the mount process; then SIGTERM, SIGKILL, lazy unmount."""
    if os.path.ismount(mp):
        subprocess.run(["fusermount3", "-u", str(mp)], check=False, capture_output=True)
    try:
        proc.wait(timeout=MOUNT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if os.path.ismount(mp):
        subprocess.run(["fusermount3", "-uz", str(mp)], check=False, capture_output=True)


def write_through(mp: Path, files: dict[str, int]) -> float:
    """Write ``files`` into the mount with CONCURRENCY threads (seed()'s contents); seconds."""
    rnd = os.urandom(MiB)
    for d in sorted({p.rpartition("/")[0] for p in files}):
        (mp / d).mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, tuple[str, int]]) -> None:
        salt, (path, size) = item
        with open(mp / path, "wb") as f:
            f.writelines(payload_chunks(rnd, size, salt))

    start = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, enumerate(files.items())))
    return time.monotonic() - start


def check_first_copies(cat: Catalog, files: dict[str, int]) -> None:
    """Every file is synced on a and not yet on b, so rclone A -> B copies all of it too."""
    for path in files:
        states = {r.provider: r.state for r in cat.replicas.of(cat.ns.resolve(path).id)}
        if states.get("a") != "synced" or states.get("b") == "synced":
            raise RuntimeError(f"{path}: after the writes its replicas are {states}; the "
                               "comparison with rclone A -> B needs every first copy on a only")


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
        runs = [_throughput_once(label, files, sa, sb, work, args.source)
                for _ in range(args.repeat)]
        row = dict(runs[0])
        row["sources"] = {src: sum(r["sources"][src] for r in runs) for src in SOURCES}
        for k in ("write_s", "ours_s", "rclone_s"):
            row[k] = statistics.median(r[k] for r in runs)
            row[k + "_all"] = [r[k] for r in runs]
        rows.append(row)
    return rows


_CASE = [0]


def _throughput_once(label: str, files: dict[str, int], sa, sb, work: Path,
                     source: str) -> dict:
    """One run of one case on fresh buckets: the writes (through a mount or straight to A),
    then our daemon A -> B and rclone A -> B, in turns."""
    _CASE[0] += 1
    bucket_a, bucket_b, bucket_r = (S.unique_bucket(x) for x in ("a", "b", "r"))
    S.create_bucket("s3", sa.endpoint, bucket_a)
    S.create_bucket("s3", sb.endpoint, bucket_b)
    S.create_bucket("s3", sb.endpoint, bucket_r)
    case = work / f"tp{_CASE[0]}"
    case.mkdir()
    data = config_dict(case, provider_table(sa.endpoint, bucket_a),
                       provider_table(sb.endpoint, bucket_b) | {"weight": WEIGHT_B})
    cfg = load_config(write_config(case, data))
    total = sum(files.values())
    prefix = next(iter(files)).split("/")[0]
    cat = Catalog(cfg.catalog_path())
    try:
        with contextlib.ExitStack() as stack:
            if source == "mount":
                mp = stack.enter_context(mounted(cfg.path, case / "mnt"))
                write_s = write_through(mp, files)
            else:
                pa = open_provider(cfg.providers["a"])
                stack.callback(pa.close)
                t0 = time.monotonic()
                seed(cat, pa, files)
                write_s = time.monotonic() - t0
            check_first_copies(cat, files)
            # take turns at going first: the first big upload into a quiet moto is slower
            if _CASE[0] % 2:
                ours, sources = run_daemon(cfg, drained)
                theirs = rclone_copy((sa.endpoint, bucket_a), (sb.endpoint, bucket_r), prefix)
            else:
                theirs = rclone_copy((sa.endpoint, bucket_a), (sb.endpoint, bucket_r), prefix)
                ours, sources = run_daemon(cfg, drained)
    finally:
        cat.close()
    shutil.rmtree(case, ignore_errors=True)  # staging and cache: up to twice the case's bytes
    return {"case": label, "files": len(files), "MB": total / 1e6, "write_s": write_s,
            "ours_s": ours, "rclone_s": theirs, "sources": sources}


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
            rows = poll.replicas.inodes_in_state("b", "synced")
            now = time.monotonic()
            for ino in rows:
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
            await wait_until(lambda: drained(cat), every=0.05)
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
    ap.add_argument("--source", choices=("mount", "seed"), default="mount",
                    help="(a): write the files through a FUSE mount, or straight to store A")
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
    try:
        run(args, work)
    except (RuntimeError, OmnifsError, subprocess.CalledProcessError, trio.TooSlowError) as e:
        print(f"bench failed: {str(e).strip() or type(e).__name__}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run(args, work: Path) -> None:
    if args.only in ("all", "small", "big", "lag"):
        sa, sb = S.start("s3"), S.start("s3")
        try:
            if args.only != "lag":
                print_throughput(args, sa, sb, work)
            if args.only in ("all", "lag"):
                lr = lag(args, sa, sb, work)
                print(f"(b) replication lag at {lr['rate']:.0f} files/s (64 KiB), {lr['files']} "
                      f"files: p50 {lr['p50'] * 1000:.0f} ms, p95 {lr['p95'] * 1000:.0f} ms, "
                      f"max {lr['max'] * 1000:.0f} ms", flush=True)
        finally:
            sa.stop()
            sb.stop()
    if args.only in ("all", "failover"):
        fo = failover(args, work)
        print(f"(c) failover after server B is killed: health state 'down' after "
              f"{fo['health_down_s']:.2f} s; first successful read (from {fo.get('read_from')}) "
              f"after {fo['read_ok_s']:.2f} s; a read once B is marked down takes "
              f"{fo['read_after_down_s'] * 1000:.0f} ms (from {fo['read_after_down_from']})")


def print_throughput(args, sa, sb, work: Path) -> None:
    how = "written through the mount" if args.source == "mount" else "seeded on A directly"
    print(f"(a) replication throughput, {CONCURRENCY} transfers at once, A -> B (two moto "
          f"servers), files {how}")
    print(f"    {'case':<14} {'files':>6} {'MB':>8} {'ours s':>8} {'MB/s':>8} {'files/s':>8}"
          f" {'rclone s':>9} {'MB/s':>8} {'ratio':>6}", flush=True)
    for r in throughput(args, sa, sb, work):
        ratio = r["rclone_s"] / r["ours_s"]
        print(f"    {r['case']:<14} {r['files']:>6} {r['MB']:>8.1f} {r['ours_s']:>8.2f} "
              f"{r['MB'] / r['ours_s']:>8.1f} {r['files'] / r['ours_s']:>8.1f} "
              f"{r['rclone_s']:>9.2f} {r['MB'] / r['rclone_s']:>8.1f} {ratio:>6.2f}")
        print(f"      runs: ours {', '.join(f'{x:.2f}' for x in r['ours_s_all'])} s; "
              f"rclone {', '.join(f'{x:.2f}' for x in r['rclone_s_all'])} s")
        w = r["write_s"]
        print(f"      before it, {how}: {w:.2f} s, {r['MB'] / w:.1f} MB/s, "
              f"{r['files'] / w:.1f} files/s (runs: "
              f"{', '.join(f'{x:.2f}' for x in r['write_s_all'])} s)")
        print("      our copies' bytes came from: " + ", ".join(
            f"{src} {n}" for src, n in r["sources"].items() if n) + " (all runs)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
