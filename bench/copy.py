"""Copy throughput: ``omnifs cp -r`` beside Debian's ``rclone copy`` on the same local servers.

Rows: (a) one 1 GiB object s3->az, gs->s3, local->s3 (MB/s and
peak RSS of each tool's process); (b) 2,000 x 64 KiB objects s3->az and
local->gs (objects/s). Both tools run as subprocesses with the same
``--transfers``, each into a fresh destination prefix, taking turns at going
first, and every row prints the median of ``--runs`` and the ratio
rclone time / omnifs time (>= 1.0 is the goal).

``--rss`` adds one 2 GiB object copied local->s3 and s3->az by omnifs
alone, checking its peak RSS against the 256 MiB budget (memory must not
grow with the object).

Not a timed test: ``.venv/bin/python bench/copy.py [--small] [--runs N] [--rss]``.

Reading the numbers (2 cores shared by the tools and all three servers):
the 1 GiB rows are bound by the destination server (moto assembles a
multipart upload at ~50-60 MB/s, whoever sends it), so their ratio is ~1 with
wide swings between runs. The 64 KiB rows are CPU-bound: per object the
servers spend ~10 ms, rclone ~2 ms and we ~5 ms (the Python SDKs: a boto3
GET ~1.5 ms, an Azure Put Blob ~2.3 ms of CPU), so s3->az lands near
(servers + rclone) / (servers + us) ~ 0.8. Listing does not HEAD every S3
object (``list(metadata=False)``; the GET's headers carry the metadata).
"""

from __future__ import annotations

import os
import sys

# this file is named like the stdlib's ``copy``: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import hashlib
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnifs.providers import ProviderSettings, open_provider
from tests import servers as S
from tests.cli import write_config

MiB = 1024 * 1024
OMNIFS = [str(ROOT / ".venv" / "bin" / "omnifs")]


def blob(n: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 4096
    return (block * (n // len(block) + 1))[:n]


class Stream:
    """A big object generated on the fly: the bench never holds 1 GiB in memory."""

    def __init__(self, size: int, seed: int):
        self.left = size
        self.block = blob(4 * MiB, seed)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = (self.block * (n // len(self.block) + 1))[:n]
        self.left -= n
        return out


def _hwm(pid: int) -> int:
    """The process's own RSS high-water mark (VmHWM, reset at exec unlike ru_maxrss)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes, sampled every 20 ms) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return elapsed, peak


def azure_sas_url(endpoint: str, container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        account_name=S.AZURE_ACCOUNT, container_name=container, account_key=S.AZURE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                                           create=True),
        expiry=datetime.now(UTC) + timedelta(hours=6))
    return f"{endpoint}/{S.AZURE_ACCOUNT}/{container}?{sas}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="omnifs-bench-copy-"))
        self.servers = {k: S.start(k) for k in ("s3", "gs", "az")}
        self.buckets = {k: S.unique_bucket("bench") for k in ("s3", "gs", "az")}
        for kind, bucket in self.buckets.items():
            S.create_bucket(kind, self.servers[kind].endpoint, bucket)
        (self.tmp / "local").mkdir()
        self.settings = {
            kind: S.settings_for(kind, self.servers[kind].endpoint, b, name=f"b{kind}")
            for kind, b in self.buckets.items()
        }
        self.settings["file"] = ProviderSettings(name="bfile", uri=f"file://{self.tmp / 'local'}")
        for s in self.settings.values():
            s.timeout = 120.0
        self.config = write_config(self.tmp / "omnifs.toml", list(self.settings.values()))
        self.providers = {k: open_provider(s) for k, s in self.settings.items()}
        self.rclone_env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.rclone_env.update({
            "RCLONE_CONFIG_S3_TYPE": "s3", "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENDPOINT": self.servers["s3"].endpoint,
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "test", "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "test",
            "RCLONE_CONFIG_S3_REGION": "us-east-1",
            "RCLONE_CONFIG_GS_TYPE": "gcs", "RCLONE_CONFIG_GS_ANONYMOUS": "true",
            "RCLONE_CONFIG_GS_PROJECT_NUMBER": "1234",
            "RCLONE_CONFIG_GS_ENDPOINT": f"{self.servers['gs'].endpoint}/storage/v1/",
            "RCLONE_CONFIG_AZ_TYPE": "azureblob",
            "RCLONE_CONFIG_AZ_SAS_URL": azure_sas_url(self.servers["az"].endpoint,
                                                      self.buckets["az"]),
        })

    def close(self) -> None:
        for p in self.providers.values():
            p.close()
        for s in self.servers.values():
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- naming the same place for both tools ------------------------------
    def omnifs_path(self, kind: str, prefix: str) -> str:
        return f"b{kind}:/{prefix}"

    def rclone_path(self, kind: str, prefix: str) -> str:
        if kind == "file":
            return str(self.tmp / "local" / prefix)
        return f"{kind}:{self.buckets[kind]}/{prefix}"

    def clear(self, kind: str, prefix: str) -> None:
        p = self.providers[kind]
        for info in list(p.list(prefix + "/")):
            p.delete(info.key)

    # -- one row ---------------------------------------------------------
    def row(self, label: str, src: str, dst: str, prefix: str, nbytes: int, nobjects: int) -> None:
        if self.args.only and self.args.only not in label:
            return
        t = self.args.transfers
        res: dict[str, list[tuple[float, int]]] = {"omnifs": [], "rclone": []}
        for run in range(self.args.runs):
            # alternate who goes first: a server's first big upload after a quiet spell
            # is measurably slower (moto grows its heap), which always cost the first tool
            for tool in ("omnifs", "rclone")[::1 if run % 2 == 0 else -1]:
                out = f"out-{tool}-{run}"
                if tool == "omnifs":
                    argv = [*OMNIFS, "--config", str(self.config), "cp", "-r",
                            "--transfers", str(t),
                            self.omnifs_path(src, prefix), self.omnifs_path(dst, out)]
                    env = None
                else:
                    argv = ["rclone", "copy", "--transfers", str(t), "--s3-no-head",
                            self.rclone_path(src, prefix), self.rclone_path(dst, out)]
                    env = self.rclone_env
                res[tool].append(run_measured(argv, env))
                self.clear(dst, out)
        med = {tool: statistics.median(e for e, _ in r) for tool, r in res.items()}
        rss = {tool: max(m for _, m in r) for tool, r in res.items()}
        o, r = med["omnifs"], med["rclone"]
        if nobjects == 1:
            print(f"{label:<28} omnifs {nbytes / o / 1e6:8.1f} MB/s  "
                  f"rclone {nbytes / r / 1e6:8.1f} MB/s  "
                  f"ratio {r / o:5.2f}   peak RSS omnifs {rss['omnifs'] / MiB:6.0f} MiB  "
                  f"rclone {rss['rclone'] / MiB:6.0f} MiB", flush=True)
        else:
            print(f"{label:<28} omnifs {nobjects / o:8.1f} obj/s  "
                  f"rclone {nobjects / r:8.1f} obj/s  "
                  f"ratio {r / o:5.2f}   peak RSS omnifs {rss['omnifs'] / MiB:6.0f} MiB  "
                  f"rclone {rss['rclone'] / MiB:6.0f} MiB", flush=True)
        print(f"{'':<28} seconds: omnifs {o:.2f}  rclone {r:.2f}", flush=True)

    def rss_row(self, label: str, src: str, dst: str, prefix: str, budget: int) -> bool:
        """omnifs alone, one run: peak RSS of the process against ``budget``."""
        out = "out-rss"
        argv = [*OMNIFS, "--config", str(self.config), "cp", "-r", "--transfers",
                str(self.args.transfers), self.omnifs_path(src, prefix), self.omnifs_path(dst, out)]
        elapsed, peak = run_measured(argv)
        self.clear(dst, out)
        ok = peak < budget
        print(f"{label:<28} omnifs {elapsed:6.1f} s   peak RSS {peak / MiB:6.0f} MiB "
              f"(budget {budget // MiB} MiB: {'ok' if ok else 'OVER'})", flush=True)
        return ok

    def main(self) -> None:
        big = (64 if self.args.small else 1024) * MiB
        count = 200 if self.args.small else 2000
        small = 64 * 1024
        print(f"setup: one {big // MiB} MiB object in s3, gs, local; "
              f"{count} x 64 KiB in s3 and local "
              f"(transfers {self.args.transfers}, median of {self.args.runs})", flush=True)
        rows = [(f"(a) {big // MiB} MiB s3->az", "s3", "az", "big", big, 1),
                (f"(a) {big // MiB} MiB gs->s3", "gs", "s3", "big", big, 1),
                (f"(a) {big // MiB} MiB local->s3", "file", "s3", "big", big, 1),
                (f"(b) {count} x 64KiB s3->az", "s3", "az", "many", count * small, count),
                (f"(b) {count} x 64KiB local->gs", "file", "gs", "many", count * small, count)]
        rows = [r for r in rows if not self.args.only or self.args.only in r[0]]
        # seed only what the chosen rows read (--only while iterating skips the 1 GiB writes)
        for kind in sorted({r[1] for r in rows if r[3] == "big"}):
            self.providers[kind].write(f"big/object-{kind}.bin", Stream(big, 1), big)
        for kind in sorted({r[1] for r in rows if r[3] == "many"}):
            p = self.providers[kind]
            for i in range(count):
                p.write_bytes(f"many/obj{i:05d}.bin", blob(small, i))
        for r in rows:
            self.row(*r)
        if self.args.rss:
            huge = 2048 * MiB
            for kind in ("s3", "file"):
                self.providers[kind].write(f"huge/object-{kind}.bin", Stream(huge, 2), huge)
            self.rss_row("(c) 2 GiB local->s3 RSS", "file", "s3", "huge", 256 * MiB)
            self.rss_row("(c) 2 GiB s3->az RSS", "s3", "az", "huge", 256 * MiB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transfers", type=int, default=4)
    ap.add_argument("--small", action="store_true",
                    help="64 MiB and 200 objects: a quick sanity run")
    ap.add_argument("--rss", action="store_true",
                    help="also copy one 2 GiB object local->s3 and s3->az "
                         "and check peak RSS < 256 MiB")
    ap.add_argument("--only", default="", help="run only rows whose label contains this text")
    args = ap.parse_args()
    if not shutil.which("rclone"):
        sys.exit("bench/copy.py needs rclone in PATH (apt-get install rclone)")
    bench = Bench(args)
    try:
        bench.main()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
