"""Small writes through the mount with one of three stores hung, beside all three healthy.

The goal: with ``copies = 3`` over moto (S3), the GCS emulator and
Azurite, writing 200 small files through the mount while one of the three
servers is SIGSTOPped (it accepts connections and answers nothing) must take
at most 1.5x the time with all three healthy, measured in the same run.

Each round writes 200 files (4 KiB, each opened, written and closed in turn,
so every close waits for its upload: ``write_quorum = 1``) with all three
stores healthy, then 200 more with one store stopped: moto, then the GCS
emulator, then Azurite, in turn across rounds. Printed: the median of each,
their ratio (goal <= 1.5), the slowest single close of each, and how many
closes failed (goal: none).

Usage::

    .venv/bin/python bench/stall.py              # 3 rounds (each store hung once)
    .venv/bin/python bench/stall.py --rounds 6 --files 200 --timeout 10
"""

from __future__ import annotations

import sys

# bench/ holds a copy.py (the copy-engine bench) that would shadow the stdlib
# module when this script's directory leads sys.path
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import servers as S

OMNIFS = [sys.executable, "-m", "omnifs"]
KINDS = ("s3", "gs", "az")


def provider_table(kind: str, server: S.Server, timeout: float) -> str:
    bucket = S.unique_bucket("stall")
    S.create_bucket(kind, server.endpoint, bucket)
    s = S.settings_for(kind, server.endpoint, bucket, name=kind)
    lines = [f"[providers.{kind}]", f'uri = "{s.uri}"', f"timeout = {timeout}"]
    for key in ("endpoint", "region", "access_key", "secret_key", "connection_string"):
        value = getattr(s, key)
        if value:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def write_files(directory: Path, n: int, size: int) -> tuple[float, float, int]:
    """(seconds for all, slowest single file, failed closes)."""
    directory.mkdir()
    data = os.urandom(size)
    slowest, failed = 0.0, 0
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        try:
            with open(directory / f"f{i:04d}.txt", "wb") as f:
                f.write(data)
        except OSError:
            failed += 1
        slowest = max(slowest, time.perf_counter() - t)
    return time.perf_counter() - start, slowest, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--timeout", type=float, default=10.0, help="the stores' timeout")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="omnifs-stall-"))
    servers = {kind: S.start(kind) for kind in KINDS}
    mp = work / "mnt"
    mp.mkdir()
    try:
        cfg = work / "omnifs.toml"
        cfg.write_text(f'[catalog]\nurl = "sqlite:///{work}/catalog.db"\n'
                       f'[cache]\ndir = "{work}/cache"\n'
                       "[replication]\ncopies = 3\nwrite_quorum = 1\n"
                       + "".join(provider_table(k, s, args.timeout) for k, s in servers.items()))
        cfg.chmod(0o600)
        subprocess.run([*OMNIFS, "--config", str(cfg), "mount", str(mp)], cwd=ROOT, check=True)
        write_files(mp / "warm-up", 20, args.size)
        healthy, hung = [], []
        for r in range(args.rounds):
            kind = KINDS[r % len(KINDS)]
            healthy.append(write_files(mp / f"healthy-{r}", args.files, args.size))
            pgid = servers[kind].proc.pid
            os.killpg(pgid, signal.SIGSTOP)
            try:
                hung.append(write_files(mp / f"hung-{kind}-{r}", args.files, args.size))
            finally:
                os.killpg(pgid, signal.SIGCONT)
            print(f"round {r + 1}: all healthy {healthy[-1][0]:.2f} s, {kind} hung "
                  f"{hung[-1][0]:.2f} s (slowest close {healthy[-1][1]:.2f} / "
                  f"{hung[-1][1]:.2f} s, failed {healthy[-1][2]} / {hung[-1][2]})", flush=True)
        a = statistics.median(t for t, _, _ in healthy)
        b = statistics.median(t for t, _, _ in hung)
        print(f"\n{args.files} files of {args.size} B, copies = 3, write_quorum = 1, "
              f"median of {args.rounds} rounds")
        print(f"all three stores healthy: {a:.2f} s")
        print(f"one store hung (SIGSTOP): {b:.2f} s")
        print(f"ratio: {b / a:.2f} (goal <= 1.5)")
        print(f"slowest close: healthy {max(s for _, s, _ in healthy):.2f} s, "
              f"hung {max(s for _, s, _ in hung):.2f} s; failed closes: "
              f"{sum(f for _, _, f in healthy) + sum(f for _, _, f in hung)}")
        return 0
    finally:
        for server in servers.values():
            os.killpg(server.proc.pid, signal.SIGCONT)
        subprocess.run(["fusermount3", "-u", str(mp)], check=False, capture_output=True)
        deadline = time.monotonic() + 60
        while os.path.ismount(mp) and time.monotonic() < deadline:
            time.sleep(0.2)
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
