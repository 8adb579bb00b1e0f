"""What the store metrics cost per request: the same requests with and without them.

Why this beside ``bench/providers.py --metrics off|on``: on a shared, loaded
machine the small-object rows of that bench move by tens of percent from run
to run, far more than the few microseconds measured here. This bench counts
the CPU time of this process (not wall time), in alternating blocks of
metered and bare requests on the same stores, so load and drift fall equally
on both. Rows: 4 KiB PUT, GET and HEAD on ``file://`` (the cheapest store,
so the largest share) and, with ``--s3``, on the moto S3 server.

    .venv/bin/python bench/metrics_overhead.py            # file:// and S3
    .venv/bin/python bench/metrics_overhead.py --no-s3
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import os
import tempfile
import time

from omnifs.providers import ProviderSettings, metered, open_provider
from omnifs.providers.metered import MeteredProvider
from tests import servers as S

DATA = os.urandom(4096)


def block(p, op: str, n: int, tag: str) -> float:
    """CPU seconds of this process for ``n`` requests ``op`` on ``p``."""
    c0 = time.process_time()
    for i in range(n):
        key = f"{tag}/{i % 50}"
        if op == "PUT":
            p.write_bytes(key, DATA)
        elif op == "GET":
            p.read_bytes(key)
        else:
            p.head(key)
    return time.process_time() - c0


def measure(label: str, bare, n: int, rounds: int) -> list[str]:
    wrapped = MeteredProvider(bare)
    for i in range(50):
        bare.write_bytes(f"w/{i}", DATA)
    out = []
    for op in ("PUT", "GET", "HEAD"):
        off, on = [], []
        for r in range(rounds):
            # alternate, so drift in load hits both alike, and swap which goes first: with
            # off always first, a file:// PUT (fsync) on the same keys measured +80 % "on"
            sides = ((off, bare), (on, wrapped))
            for blocks, p in sides if r % 2 == 0 else sides[::-1]:
                blocks.append(block(p, op, n, "w"))
        a, b = min(off) / n, min(on) / n  # the least disturbed block of each
        out.append(f"{label:<6} {op:<5} {a * 1e6:>10.1f} {b * 1e6:>10.1f} "
                   f"{(b - a) * 1e6:>9.1f} {(b / a - 1) * 100:>8.2f}%")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500, help="requests per block")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    metered.enabled(False)  # open bare; the bench wraps them itself
    lines = []
    with tempfile.TemporaryDirectory(prefix="omnifs-overhead-") as d:
        p = open_provider(ProviderSettings(name="file", uri=f"file://{d}"))
        lines += measure("file", p, args.requests, args.rounds)
    if not args.no_s3:
        server = S.start("s3")
        try:
            bucket = S.unique_bucket("bench")
            S.create_bucket("s3", server.endpoint, bucket)
            p = open_provider(S.settings_for("s3", server.endpoint, bucket))
            lines += measure("s3", p, max(50, args.requests // 5), args.rounds)
        finally:
            server.stop()
    print(f"CPU per request of this process, least of {args.rounds} alternating blocks "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n")
    print(f"{'store':<6} {'op':<5} {'off us':>10} {'on us':>10} {'+us':>9} {'overhead':>9}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
