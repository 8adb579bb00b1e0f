"""The read path beside plain baselines measured in the same run.

Rows:

1. warm: sequential read of a big file served by our disk cache through the
   mount (fresh mount, kernel page cache dropped) ÷ ``cat`` of a plain file
   of the same size on the same disk (page cache dropped too);
2. cold: sequential read of an object on the S3 server through the mount
   (fresh mount, empty block cache, page cache dropped) ÷ a plain boto3 GET
   of the same object (client made beforehand, page cache dropped); beside
   it, in the same runs, the simplest pyfuse3 mount that streams the object
   (bench/fuse_ceiling.py --url), the least any such mount must do, and the
   same with direct_io (one copy fewer, but then MAP_SHARED mmap fails: the
   kernel allows it only when INIT asks for FUSE_DIRECT_IO_ALLOW_MMAP, which
   libfuse < 3.16, Debian 12's 3.14 among them, cannot);
3. fastest replica: a cold read through the mount over two replicas, the
   first in placement order behind +200 ms per request (a mount started by
   tests/slow_reads.py) ÷ the same catalog mounted with only the
   fast store configured; and the same measured on the components
   (ReplicaReader + BlockCache) without a mount;
4. cold read through our mount ÷ ``rclone mount --vfs-cache-mode full``
   reading the same object (throughput).

``--metrics off`` runs every mount with ``[metrics] enabled = false`` (no store,
FUSE or cost instrumentation): the overhead of metrics on rows 1 and 2.

``--access-stats off`` runs every mount with ``[cost] access_stats = false``
(the mount counts no reads): the same build with and without recording, for
the cost of access statistics on rows 1 and 2.

``--ab access-stats`` (or ``--ab metrics``) measures that cost in one run: rows 1
and 2 with ``--runs`` pairs of reads, one through a mount with the feature on and
one through the same catalog and cache mounted with it off, in alternating order;
each row prints the median of the per-pair wall ratios, their spread, the mount
process's CPU seconds per MiB read on each side and the load average
(bench/ab.py).

Each figure is the median of ``--runs``. Every cold read, ours and each
baseline, starts SETTLE seconds after the previous one (see there). Needs
root (drop_caches, FUSE).

    .venv/bin/python bench/readpath.py            # 1 GiB / 256 MiB, 3 runs
    .venv/bin/python bench/readpath.py --small    # 128 MiB / 64 MiB, quick check
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like stdlib modules (copy.py): never import from it
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import servers as S
from tests import slow_reads

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
CHUNK = 4 * MiB
#: added to every mount's config (``--access-stats off``)
EXTRA_TOML = ""


def drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        print(f"  (cannot drop the page cache: {e}; warm figures flatter the baseline)")


#: seconds to let the disk finish what deleting files leaves for later. Clearing the
#: last run's 256 MiB cache right before a cold read slows the S3 server's reading of
#: its object (its first byte: 0.18-0.23 s, up to 0.6 s then): ext4 commits its
#: journal every 5 s, and with the `discard` mount option (this machine's root) that
#: is when the freed blocks are trimmed. A baseline read right after a mount has
#: stopped rarely pays it, so without the wait the ratios are skewed against us.
SETTLE = 6.0


def fresh_start() -> None:
    """Before every timed cold read, ours and each baseline alike: settle, drop the page cache."""
    time.sleep(SETTLE)
    drop_caches()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cat(path: Path) -> None:
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)


def write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(CHUNK, left))
            h.update(piece)
            f.write(piece)
            left -= len(piece)
    return h.hexdigest()


def omnifs(cfg: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "omnifs", "--config", str(cfg), *args],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    if proc.returncode != 0:
        raise SystemExit(f"omnifs {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Mount:
    """An omnifs mount of one provider table, with its own catalog and cache."""

    def __init__(self, root: Path, provider_toml: str, cache_size: str = "4GiB", copies: int = 1,
                 config_name: str = "omnifs.toml", extra: str | None = None):
        self.root = root
        self.mp = root / "mnt"
        self.mp.mkdir(parents=True, exist_ok=True)
        self.cfg = root / config_name
        self.cfg.write_text(
            f'[catalog]\nurl = "sqlite:///{root}/catalog.db"\n\n'
            f'[cache]\ndir = "{root}/cache"\nsize = "{cache_size}"\n\n'
            f"[replication]\ncopies = {copies}\nwrite_quorum = {copies}\n\n"
            + (EXTRA_TOML if extra is None else extra)
            + provider_toml)
        self.cfg.chmod(0o600)
        self.pid: int | None = None
        #: the process of a mount with slowed reads (tests/slow_reads.py)
        self.slowed: subprocess.Popen | None = None

    def up(self, latency: dict[str, float] | None = None) -> None:
        """Mount; ``latency`` (store name -> seconds) slows reads from those stores."""
        import re

        if latency:
            self.slowed = slow_reads.start(self.cfg, self.mp, latency,
                                           log_path=self.root / "mount.log")
            self.pid = self.slowed.pid
            return
        out = omnifs(self.cfg, "mount", str(self.mp))
        found = re.search(r"\(pid (\d+)\)", out)
        self.pid = int(found.group(1)) if found else None

    def down(self) -> None:
        if os.path.ismount(self.mp):
            omnifs(self.cfg, "umount", str(self.mp))
        if self.slowed is not None:
            slow_reads.wait_exit(self.slowed)
            self.slowed = None

    def clear_cache(self) -> None:
        omnifs(self.cfg, "cache", "clear")


def s3_table(name: str, endpoint: str, bucket: str) -> str:
    return (f'[providers.{name}]\nuri = "s3://{bucket}"\nendpoint = "{endpoint}"\n'
            'region = "us-east-1"\naccess_key = "t"\nsecret_key = "t"\n')


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def row(title: str, ours: float, base: float, size: int, base_name: str, goal: str,
        higher_better: bool = True) -> None:
    mib = size / MiB
    ratio = (mib / ours) / (mib / base) if higher_better else ours / base
    print(f"{title}\n  ours {ours:.2f} s ({mib / ours:.0f} MiB/s)   {base_name} {base:.2f} s "
          f"({mib / base:.0f} MiB/s)   ratio {ratio:.2f}  (goal {goal})")


def row1_warm(work: Path, size: int, runs: int) -> None:
    root = work / "warm"
    store = root / "store"
    store.mkdir(parents=True)
    m = Mount(root, f'[providers.local]\nuri = "file://{store}"\n')
    plain = root / "plain.bin"
    write_random(plain, size)
    m.up()
    try:
        shutil.copyfile(plain, m.mp / "big.bin")
    finally:
        m.down()
    m.up()
    try:
        cat(m.mp / "big.bin")  # fills our disk cache
    finally:
        m.down()
    ours, base = [], []
    for _ in range(runs):
        m.up()
        try:
            drop_caches()
            ours.append(timed(lambda: cat(m.mp / "big.bin")))
        finally:
            m.down()
        drop_caches()
        base.append(timed(lambda: cat(plain)))
    row(f"1. warm read of {size // MiB} MiB from our disk cache (through the mount) "
        "vs cat of a plain file",
        med(ours), med(base), size, "cat", ">= 0.5")
    plain.unlink()
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(root / "cache", ignore_errors=True)


def boto3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="t",
                        aws_secret_access_key="t", region_name="us-east-1")


def boto3_get(s3, bucket: str, key: str) -> int:
    """One plain GET read to the end; the client is made beforehand, as the mount's
    is made when it mounts (neither side's timing includes creating a client)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    n = 0
    while piece := body.read(CHUNK):
        n += len(piece)
    return n


def rclone_read(endpoint: str, bucket: str, key: str, root: Path) -> float:
    mp = root / "rclone-mnt"
    cache = root / "rclone-cache"
    shutil.rmtree(cache, ignore_errors=True)
    mp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(RCLONE_CONFIG_S3_TYPE="s3", RCLONE_CONFIG_S3_PROVIDER="Other",
               RCLONE_CONFIG_S3_ENDPOINT=endpoint, RCLONE_CONFIG_S3_ACCESS_KEY_ID="t",
               RCLONE_CONFIG_S3_SECRET_ACCESS_KEY="t")
    proc = subprocess.Popen(["rclone", "mount", f"s3:{bucket}", str(mp), "--vfs-cache-mode", "full",
                             "--cache-dir", str(cache), "--s3-no-head"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mp):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("rclone mount did not come up")
            time.sleep(0.1)
        fresh_start()
        return timed(lambda: cat(mp / key))
    finally:
        subprocess.run(["fusermount3", "-u", str(mp)], check=False)
        proc.wait(timeout=30)


def cache_write_time(work: Path, size: int) -> float:
    """Seconds for the block cache's own put (O_DIRECT, CRC-32C, index) to store ``size``
    bytes of 4 MiB blocks from two threads, as the mount's cache writers do, on this disk."""
    from concurrent.futures import ThreadPoolExecutor

    from omnifs.blockcache import BlockCache, aligned_buffer

    blocks = []
    for _ in range(size // CHUNK):
        b = aligned_buffer(CHUNK)
        b[:] = os.urandom(CHUNK)
        blocks.append(b)
    d = work / "cache-write"
    shutil.rmtree(d, ignore_errors=True)
    with BlockCache(d, 4 * size) as cache:
        os.sync()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda ib: cache.put("x" * 64, ib[0], ib[1]), enumerate(blocks)))
        took = time.perf_counter() - t0
    shutil.rmtree(d, ignore_errors=True)
    return took


def rows2_4_cold(work: Path, size: int, runs: int, with_rclone: bool) -> None:
    server = S.start("s3")
    try:
        bucket = S.unique_bucket("bench")
        S.create_bucket("s3", server.endpoint, bucket)
        root = work / "cold"
        root.mkdir()
        m = Mount(root, s3_table("aws", server.endpoint, bucket))
        src = work / "cold-src.bin"
        write_random(src, size)
        m.up()
        try:
            shutil.copyfile(src, m.mp / "obj.bin")
        finally:
            m.down()
        src.unlink()

        def boto3_get_first_byte(s3) -> tuple[float, float]:
            """boto3_get, also timing its headers: get_object returns once they are in
            (the body streams). moto builds the whole value before any byte, for a
            ranged GET (the mount's first block) too, so this first byte bounds ours."""
            t0 = time.perf_counter()
            body = s3.get_object(Bucket=bucket, Key="obj.bin")["Body"]
            first = time.perf_counter() - t0
            while body.read(CHUNK):
                pass
            return first, time.perf_counter() - t0

        from bench import fuse_ceiling

        url = boto3_client(server.endpoint).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "obj.bin"}, ExpiresIn=24 * 3600)
        ours, base, ttfb, rcl, cpu, streamed, direct = [], [], [], [], [], [], []
        for _ in range(runs):
            m.clear_cache()
            m.up()
            try:
                fresh_start()
                before = (cpu_seconds(m.pid), cpu_seconds(server.proc.pid), children_cpu())
                ours.append(timed(lambda: cat(m.mp / "obj.bin")))
                after = (cpu_seconds(m.pid), cpu_seconds(server.proc.pid), children_cpu())
                cpu.append([b - a for a, b in zip(before, after, strict=True)])
            finally:
                m.down()
            s3 = boto3_client(server.endpoint)
            fresh_start()  # as before our read: the server's own files start cold on both sides
            first, whole = boto3_get_first_byte(s3)
            ttfb.append(first)
            base.append(whole)
            streamed += fuse_ceiling.measure(size, 1, url=url, before_each=fresh_start)
            direct += fuse_ceiling.measure(size, 1, url=url, before_each=fresh_start,
                                           direct_io=True)
            if with_rclone:
                rcl.append(rclone_read(server.endpoint, bucket, "obj.bin", root))
        # the fastest pyfuse3 filesystem possible (bytes in memory), same options, same run
        bare = med(fuse_ceiling.measure(size, runs))
        row(f"2. cold read of {size // MiB} MiB from the S3 server through the mount "
            "vs a plain boto3 GET",
            med(ours), med(base), size, "boto3", ">= 0.8")
        floor = med(ttfb) + bare
        print(f"   ceiling of any pyfuse3 mount here: first byte {med(ttfb):.2f} s + bare pyfuse3 "
              f"read {bare:.2f} s = {floor:.2f} s -> ratio at most {med(base) / floor:.2f}")
        print(f"   measured: a pyfuse3 mount that only streams the object (one GET into memory, "
              f"no cache, no catalog: bench/fuse_ceiling.py --url) {med(streamed):.2f} s -> "
              f"ratio {med(base) / med(streamed):.2f}")
        print(f"   the same with direct_io (no page cache; breaks MAP_SHARED mmap with libfuse "
              f"< 3.16) {med(direct):.2f} s -> ratio {med(base) / med(direct):.2f}")
        mount_cpu, server_cpu, cat_cpu = (med([c[i] for c in cpu]) for i in range(3))
        print(f"   CPU during our read ({os.cpu_count()} cores x {med(ours):.2f} s = "
              f"{os.cpu_count() * med(ours):.2f} s): mount {mount_cpu:.2f} s, S3 server "
              f"{server_cpu:.2f} s, cat {cat_cpu:.2f} s")
        from omnifs.mountfs.blocks import WRITE_BEHIND

        put = med([cache_write_time(work, size) for _ in range(runs)])
        behind = max(0, size - WRITE_BEHIND) / size  # what cannot wait in memory for the writers
        disk_floor = med(ttfb) + put * behind
        print("   and of one that caches what it reads: "
              f"the cache's own write of {size // MiB} MiB "
              f"(2 writers, same disk) takes {put:.2f} s; {WRITE_BEHIND // MiB} MiB may wait in "
              f"memory, so first byte + the rest = {disk_floor:.2f} s -> ratio at most "
              f"{med(base) / disk_floor:.2f}")
        if with_rclone:
            row(f"4. cold read of {size // MiB} MiB through the mount "
                "vs rclone mount --vfs-cache-mode full",
                med(ours), med(rcl), size, "rclone", ">= 1.0")
    finally:
        server.stop()


def row3_fastest(work: Path, size: int, runs: int) -> None:
    from omnifs.blockcache import BlockCache
    from omnifs.mountfs.blocks import FileRef, ReadPath
    from omnifs.mountfs.replicas import Replica, ReplicaReader, StatsRegistry
    from omnifs.providers import open_provider
    from omnifs.providers.faulty import FaultyProvider

    server = S.start("s3")
    try:
        provs = []
        for name in ("slow", "fast"):
            bucket = S.unique_bucket(name)
            S.create_bucket("s3", server.endpoint, bucket)
            provs.append(open_provider(S.settings_for("s3", server.endpoint, bucket, name=name)))
        data = os.urandom(size)
        for p in provs:
            p.write_bytes("obj", data)
        sha = hashlib.sha256(data).hexdigest()
        del data
        slow = FaultyProvider(provs[0], latency=0.2, name="slow")
        fast = provs[1]

        def read(replicas: list) -> float:
            cache_dir = Path(tempfile.mkdtemp(dir=work))
            cache = BlockCache(cache_dir, 2 * size + 64 * MiB)
            reader = ReplicaReader(StatsRegistry())
            rp = ReadPath(cache, reader, readahead=8)
            # what the mount does when it starts (mountfs/reader.py CachedStoreReader)
            for probe in reader.probe([r.provider for r in replicas]):
                probe.result()
            try:
                h = rp.open(FileRef(sha, size, replicas))

                def go() -> None:
                    off = 0
                    while piece := h.read(off, MiB):
                        off += len(piece)
                return timed(go)
            finally:
                rp.close()
                cache.close()
                shutil.rmtree(cache_dir, ignore_errors=True)

        both, alone = [], []
        for _ in range(runs):
            both.append(read([Replica(slow, "obj"), Replica(fast, "obj")]))
            alone.append(read([Replica(fast, "obj")]))
        print(f"3. fastest replica, {size // MiB} MiB (components: ReplicaReader + BlockCache, "
              f"not the mount, probed first as the mount does at start; slow replica first in "
              f"order, +200 ms per request)\n"
              f"  two replicas {med(both):.2f} s   fast replica only {med(alone):.2f} s   "
              f"ratio {med(both) / med(alone):.2f}  (goal <= 1.2)")
        for p in provs:
            p.close()
    finally:
        server.stop()


def row3_mount(work: Path, size: int, runs: int) -> None:
    """Row 3 through a real mount: two S3 replicas, the first in config order made slow
    by a mount started with tests/slow_reads.py (providers/faulty.py)."""
    server = S.start("s3")
    try:
        tables = {}
        for name in ("slow", "fast"):
            bucket = S.unique_bucket(name)
            S.create_bucket("s3", server.endpoint, bucket)
            tables[name] = s3_table(name, server.endpoint, bucket) + "\n"
        root = work / "fastest"
        root.mkdir()
        m = Mount(root, tables["slow"] + tables["fast"], copies=2)
        # the baseline: the same catalog and cache with only the fast store configured,
        # i.e. the file's only replica is the fast one
        fast_only = Mount(root, tables["fast"], copies=1, config_name="fast-only.toml")
        src = work / "fastest-src.bin"
        write_random(src, size)
        m.up()
        try:
            shutil.copyfile(src, m.mp / "obj.bin")
        finally:
            m.down()
        src.unlink()

        from omnifs.mountfs.replicas import mount_read_stats

        def cold(mount: Mount, latency: dict | None, hedges: list[int]) -> float:
            mount.clear_cache()
            mount.up(latency)
            try:
                fresh_start()
                return timed(lambda: cat(mount.mp / "obj.bin"))
            finally:
                mount.down()
                # what the mount saved at unmount: a hedge costs the server a second GET
                hedges.append(sum(p.get("hedges", 0) for p in mount_read_stats(root / "cache")))

        both, alone, plain = [], [], []
        hedged: dict[str, list[int]] = {"both": [], "alone": [], "plain": []}
        for _ in range(runs):
            both.append(cold(m, {"slow": 0.2}, hedged["both"]))
            alone.append(cold(fast_only, None, hedged["alone"]))
            plain.append(cold(m, None, hedged["plain"]))
        print(f"3. fastest replica through the mount, cold {size // MiB} MiB: two replicas, the "
              f"first in order +200 ms per request\n  with the slow replica {med(both):.2f} s   "
              f"fast replica only {med(alone):.2f} s   ratio {med(both) / med(alone):.2f}  "
              f"(goal <= 1.2)   [two replicas, no latency injected: {med(plain):.2f} s]")
        print(f"   hedged GETs per run: with the slow replica {hedged['both']}, fast only "
              f"{hedged['alone']}, no latency injected {hedged['plain']} (with no samples yet the "
              f"hedge waits ~2x a 4 MiB read's expected time; moto's first byte of a big object "
              f"can be later than that)")
    finally:
        server.stop()


#: what turns each ``--ab`` feature off in a mount's config
AB_OFF = {"access-stats": "[cost]\naccess_stats = false\n\n",
          "metrics": "[metrics]\nenabled = false\n\n"}


def rows_ab(work: Path, feature: str, warm: int, cold: int, pairs: int, rows: set[int]) -> None:
    """Rows 1 and 2 with ``feature`` on and off, interleaved (see the module docstring)."""
    from bench.ab import AB, sides

    def measure(ab: AB, on: Mount, off: Mount, path: str, before: Callable[[Mount], None],
                settle: Callable[[], None]) -> None:
        for i in range(pairs):
            for m in sides(i, on, off):
                assert isinstance(m, Mount)
                before(m)
                m.up()
                try:
                    settle()
                    assert m.pid is not None
                    c0 = cpu_seconds(m.pid)
                    wall = timed(lambda m=m: cat(m.mp / path))
                    ab.add("on" if m is on else "off", wall, cpu_seconds(m.pid) - c0)
                finally:
                    m.down()
        print(ab.report(), flush=True)

    if 1 in rows:
        root = work / "ab-warm"
        (root / "store").mkdir(parents=True)
        table = f'[providers.local]\nuri = "file://{root / "store"}"\n'
        on, off = Mount(root, table, extra=""), Mount(root, table, "4GiB", 1, "off.toml",
                                                       AB_OFF[feature])
        write_random(root / "src.bin", warm)
        on.up()
        try:
            shutil.copyfile(root / "src.bin", on.mp / "big.bin")
            cat(on.mp / "big.bin")  # fills our disk cache
        finally:
            on.down()
        (root / "src.bin").unlink()
        measure(AB(f"1. warm read of {warm // MiB} MiB from our disk cache, {feature} on/off",
                   warm / MiB, "MiB"), on, off, "big.bin", lambda m: None,
                drop_caches)
    if 2 in rows:
        server = S.start("s3")
        try:
            bucket = S.unique_bucket("bench")
            S.create_bucket("s3", server.endpoint, bucket)
            root = work / "ab-cold"
            root.mkdir()
            table = s3_table("aws", server.endpoint, bucket)
            on, off = Mount(root, table, extra=""), Mount(root, table, "4GiB", 1, "off.toml",
                                                           AB_OFF[feature])
            write_random(work / "cold-src.bin", cold)
            on.up()
            try:
                shutil.copyfile(work / "cold-src.bin", on.mp / "obj.bin")
            finally:
                on.down()
            (work / "cold-src.bin").unlink()
            measure(AB(f"2. cold read of {cold // MiB} MiB from the S3 server, {feature} on/off",
                       cold / MiB, "MiB"), on, off, "obj.bin", Mount.clear_cache,
                    fresh_start)
        finally:
            server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="128 MiB and 64 MiB files")
    ap.add_argument("--dir", default=None,
                    help="work directory (default: a temp dir under /var/tmp)")
    ap.add_argument("--rows", default="1,2,3,4", help="which rows, e.g. 2,3")
    ap.add_argument("--no-rclone", action="store_true")
    ap.add_argument("--access-stats", choices=("on", "off"), default="on",
                    help="off: mounts record no access statistics ([cost] access_stats)")
    ap.add_argument("--metrics", choices=("on", "off"), default="on",
                    help="off: mounts without metrics ([metrics] enabled = false)")
    ap.add_argument("--ab", choices=sorted(AB_OFF),
                    help="rows 1 and 2 with this feature on and off, --runs interleaved pairs")
    args = ap.parse_args()
    global EXTRA_TOML
    if args.access_stats == "off":
        EXTRA_TOML = "[cost]\naccess_stats = false\n\n"
    if args.metrics == "off":
        EXTRA_TOML += "[metrics]\nenabled = false\n\n"
    if os.geteuid() != 0:
        print("needs root (FUSE mounts, drop_caches)", file=sys.stderr)
        return 2
    big = 128 * MiB if args.small else 1024 * MiB
    mid = 64 * MiB if args.small else 256 * MiB
    rows = {int(r) for r in args.rows.split(",")}
    work = Path(tempfile.mkdtemp(prefix="omnifs-bench-", dir=args.dir or "/var/tmp"))
    print(f"read path bench: medians of {args.runs} runs, access statistics "
          f"{args.access_stats}, metrics {args.metrics}, work dir {work}")
    try:
        if args.ab:
            rows_ab(work, args.ab, big, mid, args.runs, rows & {1, 2})
            return 0
        if 1 in rows:
            row1_warm(work, big, args.runs)
        if rows & {2, 4}:
            rows2_4_cold(work, mid, args.runs, with_rclone=4 in rows and not args.no_rclone)
        if 3 in rows:
            row3_mount(work, mid, args.runs)
            row3_fastest(work, mid, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
