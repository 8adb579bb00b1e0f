"""The bench harness's own cost: ``omnifs bench`` 4 KiB GETs at concurrency 16 on moto
beside a minimal boto3 loop doing the same GETs, in the same run.

Goal (issue 20): omnifs bench ops/s >= 0.9 x the boto3 loop's. Both read the same
200 objects of 4 KiB in the same seeded order, 16 threads each, taking turns at
going first; each figure is the median of ``--runs`` runs.

    .venv/bin/python bench/harness_overhead.py [--ops 2000] [--runs 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import statistics
import threading
import time

from omnifs.bench.payload import Payload
from omnifs.bench.plan import data_key, operations
from omnifs.bench.runner import Subject, run_cell
from omnifs.bench.scenario import Scenario
from omnifs.providers import open_provider
from tests import servers as S

CONCURRENCY = 16
SIZE = 4096
OBJECTS = 200


def boto3_loop(endpoint: str, bucket: str, keys: list[str]) -> float:
    """ops/s of 16 threads doing get_object + read over ``keys``, nothing else."""
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1",
                          config=Config(max_pool_connections=CONCURRENCY * 2))
    for key in keys[:CONCURRENCY]:  # the same warm-up as the harness: connections open
        client.get_object(Bucket=bucket, Key=key)["Body"].read()
    it = iter(keys)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                key = next(it, None)
            if key is None:
                return
            client.get_object(Bucket=bucket, Key=key)["Body"].read()

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(keys) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    server = S.start("s3")
    try:
        bucket = S.unique_bucket("ovh")
        S.create_bucket("s3", server.endpoint, bucket)
        provider = open_provider(S.settings_for("s3", server.endpoint, bucket))
        scenario = Scenario("harness", sizes=(SIZE,), concurrency=(CONCURRENCY,),
                            count=args.ops, warmup=CONCURRENCY, objects=OBJECTS,
                            mix={"get": 1})
        # the boto3 loop reads what the harness reads: its data set, in its order
        base = "loop/"
        for i in range(OBJECTS):
            provider.write(base + data_key(i), Payload(SIZE), SIZE)
        ops = operations(scenario, SIZE, CONCURRENCY)
        keys = [base + next(ops).key for _ in range(args.ops + CONCURRENCY)][CONCURRENCY:]
        ours, theirs = [], []
        for run in range(args.runs):
            for which in ((0, 1) if run % 2 == 0 else (1, 0)):
                if which == 0:
                    row = run_cell(scenario, Subject("s3", provider, provider), "harness/",
                                   SIZE, CONCURRENCY, run)
                    assert row.errors == 0, row.error_samples
                    ours.append(row.ops_per_s)
                else:
                    theirs.append(boto3_loop(server.endpoint, bucket, keys))
            print(f"run {run + 1}: omnifs bench {ours[-1]:.0f} ops/s, "
                  f"boto3 loop {theirs[-1]:.0f} ops/s", flush=True)
        a, b = statistics.median(ours), statistics.median(theirs)
        paired = statistics.median(x / y for x, y in zip(ours, theirs, strict=True))
        print(f"4 KiB GET, concurrency {CONCURRENCY}, {args.ops} ops, median of {args.runs}: "
              f"omnifs bench {a:.0f} ops/s, boto3 loop {b:.0f} ops/s, ratio {a / b:.2f} "
              f"(median of the runs' own ratios {paired:.2f}; goal >= 0.9)")
        provider.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
