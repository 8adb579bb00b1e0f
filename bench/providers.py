"""Provider throughput beside the raw SDK doing the same thing, in the same run.

Why ratios: the local stand-in servers vary from run to run and machine to
machine (shared/SERVERS.md: 100-350 MB/s per server), so an absolute MB/s
means little; "ours / raw SDK" on the same server at the same minute says how
much our layer costs.

Usage::

    .venv/bin/python bench/providers.py              # 256 MiB and 1,000 x 4 KiB, 3 runs
    .venv/bin/python bench/providers.py --small      # 16 MiB and 200 x 4 KiB, quick check
    .venv/bin/python bench/providers.py --kinds s3,file --runs 5
    .venv/bin/python bench/providers.py --metrics off   # the same build without store metrics
    .venv/bin/python bench/providers.py --metrics both  # with and without them, alternating
    .venv/bin/python bench/providers.py --metrics both --ab --runs 15 --small

Each figure is the median of ``--runs`` runs. Raw baselines: boto3
``upload_fileobj``/``put_object``/``get_object`` (s3), minio
``put_object``/``get_object`` (minio), google-cloud-storage
``upload_from_file``/``download_as_bytes`` (gs), azure ``upload_blob``/
``download_blob`` (az), plain ``open``/``write`` without fsync (file; our
provider fsyncs, so its PUT ratio includes durability the baseline lacks).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where a sibling named
# like a stdlib module (bench/copy.py) would shadow it: use the repo root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import io
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from omnifs.providers import OmnifsError, metered, open_provider
from omnifs.providers.metered import MeteredProvider
from tests import servers as S

MiB = 1024 * 1024
CHUNK = MiB
WORKERS = 16


class Raw:
    """The same four operations done with the store's own SDK, nothing of ours."""

    def put_big(self, key: str, data: bytes) -> None: ...
    def get_big(self, key: str) -> int: ...
    def put_small(self, key: str, data: bytes) -> None: ...
    def get_small(self, key: str) -> int: ...


class RawS3(Raw):
    def __init__(self, endpoint: str, bucket: str):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                              aws_secret_access_key="test", region_name="us-east-1",
                              config=Config(max_pool_connections=WORKERS * 2))

    def put_big(self, key, data):
        self.c.upload_fileobj(io.BytesIO(data), self.bucket, key)

    def get_big(self, key):
        body = self.c.get_object(Bucket=self.bucket, Key=key)["Body"]
        return _drain(body)

    def put_small(self, key, data):
        self.c.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_small(self, key):
        return len(self.c.get_object(Bucket=self.bucket, Key=key)["Body"].read())


class RawMinio(Raw):
    def __init__(self, endpoint: str, bucket: str):
        import urllib3
        from minio import Minio

        self.bucket = bucket
        http = urllib3.PoolManager(maxsize=WORKERS * 2)
        self.c = Minio(endpoint.removeprefix("http://"), access_key="test", secret_key="test",
                       secure=False, region="us-east-1", http_client=http)

    def put_big(self, key, data):
        self.c.put_object(self.bucket, key, io.BytesIO(data), len(data), part_size=16 * MiB)

    def get_big(self, key):
        r = self.c.get_object(self.bucket, key)
        try:
            return sum(len(c) for c in r.stream(CHUNK))
        finally:
            r.close()
            r.release_conn()

    def put_small(self, key, data):
        self.c.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def get_small(self, key):
        r = self.c.get_object(self.bucket, key)
        try:
            return len(r.read())
        finally:
            r.close()
            r.release_conn()


class RawGCS(Raw):
    def __init__(self, endpoint: str, bucket: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="bench", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})
        self.b = client.bucket(bucket)

    def put_big(self, key, data):
        self.b.blob(key).upload_from_file(io.BytesIO(data), size=len(data))

    def get_big(self, key):
        return len(self.b.blob(key).download_as_bytes())

    def put_small(self, key, data):
        self.b.blob(key).upload_from_file(io.BytesIO(data), size=len(data))

    def get_small(self, key):
        return len(self.b.blob(key).download_as_bytes())


class RawAzure(Raw):
    def __init__(self, endpoint: str, bucket: str):
        from azure.storage.blob import BlobServiceClient

        self.c = BlobServiceClient.from_connection_string(
            S.azure_connection_string(endpoint)).get_container_client(bucket)

    def put_big(self, key, data):
        self.c.upload_blob(key, io.BytesIO(data), length=len(data), overwrite=True,
                           max_concurrency=4)

    def get_big(self, key):
        return sum(len(c) for c in self.c.download_blob(key, max_concurrency=4).chunks())

    def put_small(self, key, data):
        self.c.upload_blob(key, data, overwrite=True)

    def get_small(self, key):
        return len(self.c.download_blob(key).readall())


class RawFile(Raw):
    def __init__(self, root: str):
        self.root = root

    def _path(self, key: str) -> str:
        path = os.path.join(self.root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def put_big(self, key, data):
        with open(self._path(key), "wb") as f:
            view = memoryview(data)
            f.writelines(view[i:i + CHUNK] for i in range(0, len(view), CHUNK))

    def get_big(self, key):
        with open(self._path(key), "rb") as f:
            return _drain(f)

    def put_small(self, key, data):
        with open(self._path(key), "wb") as f:
            f.write(data)

    def get_small(self, key):
        with open(self._path(key), "rb") as f:
            return len(f.read())


class RawFileDurable(RawFile):
    """What a careful program does to store a file durably: temp, fsync, rename, fsync dir.

    The like-for-like baseline for the file:// provider's default (fsync = true).
    """

    def _durable(self, key, chunks) -> None:
        path = self._path(key)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.writelines(chunks)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put_big(self, key, data):
        view = memoryview(data)
        self._durable(key, (view[i:i + CHUNK] for i in range(0, len(view), CHUNK)))

    def put_small(self, key, data):
        self._durable(key, [data])


def _drain(f) -> int:
    n = 0
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            return n
        n += len(chunk)


class Ours(Raw):
    def __init__(self, provider):
        self.p = provider

    def put_big(self, key, data):
        self.p.write(key, io.BytesIO(data), len(data))

    def get_big(self, key):
        with self.p.open_read(key) as f:
            return _drain(f)

    def put_small(self, key, data):
        self.p.write_bytes(key, data)

    def get_small(self, key):
        return len(self.p.read_bytes(key))


def _checked(got: int, want: int, what: str) -> None:
    """A fast wrong answer is no figure: every GET must return every byte."""
    if got != want:
        raise RuntimeError(f"{what} returned {got} bytes, expected {want}")


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _many(fn: Callable[[str], object], keys: list[str]) -> Callable[[], None]:
    def run() -> None:
        with ThreadPoolExecutor(WORKERS) as pool:
            for _ in pool.map(fn, keys):
                pass
    return run


def bench_pair(label: str, ours: Raw, raw: Raw, big: bytes, small: list[bytes],
               runs: int, ab: list | None = None) -> list[tuple[str, str, float, float]]:
    """Median MB/s of (ours, raw) for each operation; the two alternate in every run.

    ``ab``: also collect, per operation, each run's wall and process CPU seconds of
    both sides as a :class:`bench.ab.AB` (ours = "on", raw = "off"), appended to it.
    Both sides then write and read the same keys (in turn, each overwriting the
    other's): on one store, keys under different prefixes are not equally cheap (on
    ext4, 4 KiB PUTs under ``bench/ours/`` took 1.2-1.5x the CPU of ``bench/raw/``
    with the same code on both sides), which an A/B of a few percent cannot carry."""
    from bench.ab import AB

    counts = {"PUT big": 1, "GET big": 1, "PUT small": len(small), "GET small": len(small)}
    pairs = {op: AB(f"{label} {op}: store metrics on/off", n, "request")
             for op, n in counts.items()}
    totals = {"PUT big": len(big), "GET big": len(big),
              "PUT small": sum(map(len, small)), "GET small": sum(map(len, small))}
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(runs):
        order = (("ours", ours), ("raw", raw))
        for who, impl in order if r % 2 == 0 else order[::-1]:
            where = "ab" if ab is not None else who
            big_key = f"bench/{where}/big"
            keys = [f"bench/{where}/small/{i:05d}" for i in range(len(small))]
            blobs = dict(zip(keys, small, strict=True))
            ops = {
                "PUT big": lambda impl=impl, k=big_key: impl.put_big(k, big),
                "GET big": lambda impl=impl, k=big_key, w=who: _checked(
                    impl.get_big(k), len(big), f"{label} {w} GET big"),
                "PUT small": _many(lambda k, impl=impl, b=blobs: impl.put_small(k, b[k]), keys),
                "GET small": _many(lambda k, impl=impl, w=who: _checked(
                    impl.get_small(k), 4096, f"{label} {w} GET small"), keys),
            }
            for op, fn in ops.items():
                cpu = time.process_time()
                took = _timed(fn)
                pairs[op].add("on" if who == "ours" else "off", took, time.process_time() - cpu)
                times.setdefault((op, who), []).append(took)
    rows = []
    for op, nbytes in totals.items():
        ours_mbs = nbytes / MiB / statistics.median(times[(op, "ours")])
        raw_mbs = nbytes / MiB / statistics.median(times[(op, "raw")])
        rows.append((label, op, ours_mbs, raw_mbs))
    if ab is not None:
        ab += pairs.values()
    return rows


#: file:// is measured twice: without fsync, and with it on both sides (the default)
LOCAL_KINDS = ("file", "file+fsync")
ALL_KINDS = (*S.KINDS, "file+fsync")


def setup(kind: str, servers: dict, tmp: str) -> tuple[Raw, Raw, Callable[[], None]]:
    """(ours, raw, cleanup) over a fresh bucket of ``kind``."""
    if kind in LOCAL_KINDS:
        # "file": no fsync on either side; "file+fsync": both durable (our default)
        durable = kind == "file+fsync"
        root = tempfile.mkdtemp(prefix="bench-", dir=tmp)
        raw_root = tempfile.mkdtemp(prefix="bench-raw-", dir=tmp)
        settings = S.settings_for("file", None, "", local_root=root)
        settings.extra["fsync"] = durable
        p = open_provider(settings)
        return Ours(p), (RawFileDurable if durable else RawFile)(raw_root), p.close
    server = servers["s3" if kind == "minio" else kind]
    bucket = S.unique_bucket("bench")
    S.create_bucket(kind, server.endpoint, bucket)
    p = open_provider(S.settings_for(kind, server.endpoint, bucket))
    raw_cls = {"s3": RawS3, "minio": RawMinio, "gs": RawGCS, "az": RawAzure}[kind]
    return Ours(p), raw_cls(server.endpoint, bucket), p.close


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="16 MiB and 200 x 4 KiB: a quick check")
    ap.add_argument("--kinds", default=",".join(ALL_KINDS), help="comma-separated, default all")
    ap.add_argument("--big-mib", type=int, help="override the big object's size")
    ap.add_argument("--count", type=int, help="override the number of small objects")
    ap.add_argument("--metrics", choices=("on", "off", "both"), default="on",
                    help="off: providers opened bare, without the store metrics "
                         "(providers/metered.py); both: our provider with metrics beside "
                         "the same provider without, instead of beside the raw SDK")
    ap.add_argument("--ab", action="store_true",
                    help="--metrics both, and per operation the median of the per-run on/off "
                         "ratios, their spread, CPU per request on each side and the load "
                         "(bench/ab.py)")
    args = ap.parse_args(argv)
    if args.ab:
        args.metrics = "both"
    metered.enabled(args.metrics == "on")

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        print(f"unknown kind(s) {', '.join(sorted(unknown))}: use {', '.join(ALL_KINDS)}",
              file=sys.stderr)
        return 2
    big_mib = args.big_mib or (16 if args.small else 256)
    count = args.count or (200 if args.small else 1000)
    rng = random.Random(1)
    big = b"".join(rng.randbytes(MiB) for _ in range(big_mib))  # randbytes caps near 256 MiB
    small = [rng.randbytes(4096) for _ in range(count)]

    servers: dict[str, S.Server] = {}
    rows: list[tuple[str, str, float, float]] = []
    ab: list = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="omnifs-bench-") as tmp:
        try:
            for kind in kinds:
                server_kind = "s3" if kind == "minio" else kind
                if kind not in LOCAL_KINDS and server_kind not in servers:
                    try:
                        servers[server_kind] = S.start(server_kind)
                    except Exception as e:  # noqa: BLE001 - a missing server must not lose the rows measured
                        failures.append(f"{kind}: cannot start its server: {e}")
                        continue
                try:
                    ours, raw, close = setup(kind, servers, tmp)
                    if args.metrics == "both":  # ours (bare) with and without the wrapper
                        assert isinstance(ours, Ours)
                        ours, raw = Ours(MeteredProvider(ours.p)), ours
                except OmnifsError as e:
                    failures.append(f"{kind}: cannot open the provider: {e}")
                    continue
                try:
                    print(f"{kind}: benchmarking ...", file=sys.stderr, flush=True)
                    rows += bench_pair(kind, ours, raw, big, small, args.runs,
                                       ab if args.metrics == "both" else None)
                except Exception as e:  # noqa: BLE001 - one provider must not hide the others
                    failures.append(f"{kind}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                finally:
                    close()
        finally:
            for server in servers.values():
                server.stop()

    print(f"\nmedian of {args.runs} run(s); big = {big_mib} MiB, small = {count} x 4 KiB "
          f"with {WORKERS} workers; store metrics {args.metrics}\n")
    cols = ("on", "off") if args.metrics == "both" else ("ours", "raw")
    print(f"{'kind':<10} {'operation':<10} {cols[0] + ' MB/s':>10} {cols[1] + ' MB/s':>10} "
          f"{cols[0] + '/' + cols[1]:>9}")
    for kind, op, ours_mbs, raw_mbs in rows:
        print(f"{kind:<10} {op:<10} {ours_mbs:>10.1f} {raw_mbs:>10.1f} {ours_mbs / raw_mbs:>9.2f}")
    if ab:
        print("\nper-run pairs (the two sides alternate in every run; CPU of this process):")
        for pair in ab:
            print(pair.report())
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
