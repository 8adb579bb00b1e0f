"""The mount beside rclone mount and s3fs on the same moto S3 bucket, in the same run.

Rows:

1. ``ls -l`` of a directory of 10,000 files: omnifs vs ``rclone mount
   --vfs-cache-mode full`` vs ``s3fs``. Goal: <= 0.3 s, >= 10x faster than s3fs.
2. ``tar x`` of a 5,000-file tree into the mount vs into ``rclone mount
   --vfs-cache-mode writes``: time ratio, goal <= 1.0. Measured both ways:
   the default (every close waits for its upload) and
   ``omnifs mount --writeback`` (close waits for the local staging file only,
   like rclone's write-back cache).
G. ``--rows gov``: rows 1 and 2 for omnifs alone, governance off vs 50 rules
   (``GOV_RULES``: residency over the whole tree, WORM and legal-hold rules on
   other paths, classes) with the audit log on. Goal: on <= 1.1 x off.
3. Sequential write of a 1 GiB file through the mount until close returns vs
   ``omnifs put`` of the same file to the same bucket: ratio, goal <= 1.3.

Usage::

    .venv/bin/python bench/mount.py            # full sizes, 3 runs each, medians
    .venv/bin/python bench/mount.py --small    # 1,000 files, 500-file tar, 128 MiB

The omnifs mount uses one provider (the moto bucket), copies = write_quorum = 1,
so every close waits for its upload to S3 like a single-store mount would.
Peers: rclone needs AWS_CA_BUNDLE unset and --s3-no-head (shared/SERVERS.md).
"""

from __future__ import annotations

import sys

# bench/ holds a copy.py (the copy-engine bench) that would shadow the stdlib
# module when this script's directory leads sys.path
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnifs.providers import META_MTIME, META_SHA256
from tests import servers as S

MiB = 1024 * 1024

#: row G: 50 governance rules. Residency over the whole tree (the bench's store is in
#: us-east-1, so every write is allowed but every create evaluates it), WORM, legal-hold
#: and class rules on other paths (so each change runs the protection check), audit on.
GOV_RULES = "".join(
    ['\n[[governance.rules]]\npaths = ["/**"]\nregions = ["us-*"]\n']
    + [f'\n[[governance.rules]]\npaths = ["/res{i}/**"]\ndeny_regions = ["eu-*"]\n'
       for i in range(19)]
    + [f'\n[[governance.rules]]\npaths = ["/worm{i}/**", "/x{i}/*.log"]\nretention = "7y"\n'
       for i in range(20)]
    + [f'\n[[governance.rules]]\npaths = ["/hold{i}/**"]\nlegal_hold = true\n'
       for i in range(5)]
    + [f'\n[[governance.rules]]\npaths = ["/copies{i}/**"]\nmin_copies = 2\n'
       for i in range(5)]
    + ['\n[governance.audit]\nenabled = true\n'])
OMNIFS = [sys.executable, "-m", "omnifs"]


def sh(argv, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} -> {proc.returncode}: "
                           f"{proc.stderr.strip()[-500:]}")
    return proc


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drop_caches() -> None:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3")
    except OSError:
        pass


def wait_mounted(mp: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.ismount(mp):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{mp} did not get mounted")


def unmount(mp: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(mp)], check=False, capture_output=True)
    deadline = time.monotonic() + 30
    while os.path.ismount(mp) and time.monotonic() < deadline:
        time.sleep(0.1)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="omnifs-bench-"))
        self.server = S.start("s3")
        self.endpoint = self.server.endpoint
        self.bucket = S.unique_bucket("bench")
        S.create_bucket("s3", self.endpoint, self.bucket)
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="t",
                               aws_secret_access_key="t", region_name="us-east-1")
        self.mounts: list[Path] = []
        self.procs: list[subprocess.Popen] = []

    def close(self) -> None:
        for mp in self.mounts:
            unmount(mp)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- mounts ------------------------------------------------------------
    def omnifs_config(self, prefix: str, governance: bool = False,
                      name: str | None = None) -> Path:
        d = self.work / f"omnifs-{name or prefix}"
        d.mkdir()
        cfg = d / "omnifs.toml"
        cfg.write_text(
            f'[catalog]\nurl = "sqlite:///{d}/catalog.db"\n'
            f'[cache]\ndir = "{d}/cache"\n'
            "[replication]\ncopies = 1\nwrite_quorum = 1\n"
            f'[providers.moto]\nuri = "s3://{self.bucket}/{prefix}"\n'
            f'endpoint = "{self.endpoint}"\naccess_key = "t"\nsecret_key = "t"\n'
            'region = "us-east-1"\n' + (GOV_RULES if governance else ""))
        cfg.chmod(0o600)
        return cfg

    def mount_omnifs(self, prefix: str, *extra: str, governance: bool = False,
                     name: str | None = None, catalog: Path | None = None) -> tuple[Path, Path]:
        cfg = self.omnifs_config(prefix, governance, name)
        if catalog is not None:  # start from this (imported) catalog
            shutil.copyfile(catalog, cfg.parent / "catalog.db")
        mp = self.work / f"mnt-omnifs-{name or prefix}"
        mp.mkdir()
        sh([*OMNIFS, "--config", str(cfg), "mount", str(mp), *extra], cwd=ROOT)
        self.mounts.append(mp)
        return mp, cfg

    def mount_rclone(self, prefix: str, mode: str) -> Path:
        mp = self.work / f"mnt-rclone-{mode}-{prefix}"
        mp.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(RCLONE_CONFIG_S3_TYPE="s3", RCLONE_CONFIG_S3_PROVIDER="Other",
                   RCLONE_CONFIG_S3_ENDPOINT=self.endpoint, RCLONE_CONFIG_S3_ACCESS_KEY_ID="t",
                   RCLONE_CONFIG_S3_SECRET_ACCESS_KEY="t")
        cache = self.work / f"rclone-cache-{mode}-{prefix}"
        p = subprocess.Popen(["rclone", "mount", f"s3:{self.bucket}/{prefix}", str(mp),
                              "--vfs-cache-mode", mode, "--s3-no-head",
                              "--cache-dir", str(cache)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_mounted(mp)
        self.mounts.append(mp)
        return mp

    def mount_s3fs(self, prefix: str) -> Path:
        mp = self.work / f"mnt-s3fs-{prefix}"
        mp.mkdir()
        pw = self.work / "s3fs.passwd"
        pw.write_text("t:t\n")
        pw.chmod(0o600)
        sh(["s3fs", f"{self.bucket}:/{prefix}", str(mp), "-o", f"url={self.endpoint}",
            "-o", "use_path_request_style", "-o", f"passwd_file={pw}"])
        wait_mounted(mp)
        self.mounts.append(mp)
        return mp

    # -- data ----------------------------------------------------------------
    def fill(self, prefix: str, n: int) -> None:
        """n small objects under prefix/dir/, with omnifs metadata, straight into the bucket."""
        body = b"x" * 100
        meta = {META_SHA256: __import__("hashlib").sha256(body).hexdigest(),
                META_MTIME: f"{time.time():.3f}"}

        def put(i: int) -> None:
            self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/dir/f{i:05d}", Body=body,
                               Metadata=meta)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(n)))

    def make_tar(self, n: int) -> Path:
        path = self.work / "tree.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(n):
                data = os.urandom(512 + (i * 37) % 3500)
                info = tarfile.TarInfo(f"tree/d{i // 100:03d}/f{i:05d}.txt")
                info.size = len(data)
                info.mtime = 1_700_000_000
                tar.addfile(info, io.BytesIO(data))
        return path

    # -- rows ------------------------------------------------------------------
    def row_ls(self) -> dict:
        n, runs = self.args.files, self.args.runs
        self.fill("ls", n)
        out = {}
        mp, _ = self.mount_omnifs("ls")  # first mount imports the bucket
        peers = {"omnifs": mp / "dir",
                 "rclone-full": self.mount_rclone("ls", "full") / "dir",
                 "s3fs": self.mount_s3fs("ls") / "dir"}
        for name, d in peers.items():
            first = timed(lambda d=d: sh(["ls", "-l", str(d)]))
            times = [timed(lambda d=d: sh(["ls", "-l", str(d)])) for _ in range(runs)]
            count = len(sh(["ls", str(d)]).stdout.split())
            out[name] = {"first": first, "median": statistics.median(times), "entries": count}
        return out

    def row_tar(self) -> dict:
        tarball = self.make_tar(self.args.tar_files)
        res: dict[str, list[float]] = {"omnifs": [], "omnifs-writeback": [], "rclone-writes": []}
        for run in range(self.args.runs):
            mp, _ = self.mount_omnifs(f"tar{run}")
            res["omnifs"].append(
                timed(lambda mp=mp: sh(["tar", "-C", str(mp), "-xf", str(tarball)])))
            wmp, _ = self.mount_omnifs(f"wtar{run}", "--writeback")
            res["omnifs-writeback"].append(
                timed(lambda wmp=wmp: sh(["tar", "-C", str(wmp), "-xf", str(tarball)])))
            rmp = self.mount_rclone(f"rtar{run}", "writes")
            res["rclone-writes"].append(
                timed(lambda rmp=rmp: sh(["tar", "-C", str(rmp), "-xf", str(tarball)])))
        return {k: statistics.median(v) for k, v in res.items()}

    def row_gov(self) -> dict:
        """Rows 1 and 2 for omnifs with governance off and on (50 rules, audit on)."""
        n, runs = self.args.files, self.args.runs
        tarball = self.make_tar(self.args.tar_files)
        self.fill("gls", n)
        # both mounts list the same objects; off and on alternate, so a change in the
        # machine's load during the row falls on both alike
        # one import (the first mount), then its catalog for both: an import of 10,000
        # objects on a loaded machine may outlast a mount's ready timeout, twice more so
        first, cfg = self.mount_omnifs("gls", name="gls-import")
        sh([*OMNIFS, "--config", str(cfg), "umount", str(first)], cwd=ROOT)  # catalog closed
        self.mounts.remove(first)
        imported = self.work / "omnifs-gls-import" / "catalog.db"
        mps = {gov: self.mount_omnifs("gls", governance=gov, name=f"gls{int(gov)}",
                                      catalog=imported)[0] for gov in (False, True)}
        times: dict[bool, dict[str, list[float]]] = {g: {"ls": [], "tar": []} for g in mps}
        for mp in mps.values():
            sh(["ls", "-l", str(mp / "dir")])
        for _ in range(runs):
            for gov, mp in mps.items():
                times[gov]["ls"].append(timed(lambda mp=mp: sh(["ls", "-l", str(mp / "dir")])))
        for run in range(runs):
            for gov in mps:
                tmp, _ = self.mount_omnifs(f"gtar{int(gov)}{run}", governance=gov)
                times[gov]["tar"].append(timed(lambda tmp=tmp: sh(
                    ["tar", "-C", str(tmp), "-xf", str(tarball)])))
        return {"on" if g else "off": {k: statistics.median(v) for k, v in t.items()}
                for g, t in times.items()}

    def row_write(self) -> dict:
        size = self.args.big_mib * MiB
        src = self.work / "big.bin"
        with open(src, "wb") as f:
            block = os.urandom(MiB)
            f.writelines(block for _ in range(self.args.big_mib))
        mp, cfg = self.mount_omnifs("big")
        mount_t, put_t = [], []
        for run in range(self.args.runs):
            drop_caches()
            mount_t.append(timed(lambda run=run: sh(
                ["dd", f"if={src}", f"of={mp}/big{run}.bin", "bs=1M", "status=none"])))
            drop_caches()
            put_t.append(timed(lambda run=run: sh(
                [*OMNIFS, "--config", str(cfg), "put", str(src), f"moto:/put{run}.bin"],
                cwd=ROOT)))
        return {"mount": statistics.median(mount_t), "put": statistics.median(put_t),
                "mib": size // MiB}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="quick run: small sizes, 1 run")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--rows", default="ls,tar,write",
                    help="comma-separated: ls,tar,write,gov")
    args = ap.parse_args()
    args.files = 1000 if args.small else 10_000
    args.tar_files = 500 if args.small else 5_000
    args.big_mib = 128 if args.small else 1024
    args.runs = args.runs or (1 if args.small else 3)
    b = Bench(args)
    rows = args.rows.split(",")
    try:
        if "ls" in rows:
            r = b.row_ls()
            print(f"1. ls -l of {args.files} files (s, first / median of {args.runs}):")
            for name, v in r.items():
                print(f"   {name:<14} {v['first']:7.3f} / {v['median']:7.3f}  "
                      f"({v['entries']} entries)")
            ratio = r["s3fs"]["median"] / r["omnifs"]["median"]
            print(f"   s3fs / omnifs = {ratio:.1f}x   rclone / omnifs = "
                  f"{r['rclone-full']['median'] / r['omnifs']['median']:.1f}x", flush=True)
        if "tar" in rows:
            r = b.row_tar()
            rc = r["rclone-writes"]
            print(f"2. tar x of {args.tar_files} files (s, median): omnifs {r['omnifs']:.2f} "
                  f"(upload on close), omnifs --writeback {r['omnifs-writeback']:.2f}, "
                  f"rclone --vfs-cache-mode writes {rc:.2f}; ratios {r['omnifs'] / rc:.2f} and "
                  f"{r['omnifs-writeback'] / rc:.2f} (goal <= 1.0)", flush=True)
        if "gov" in rows:
            r = b.row_gov()
            off, on = r["off"], r["on"]
            print(f"G. governance off vs 50 rules + audit (s, median of {args.runs}): "
                  f"ls -l of {args.files} files {off['ls']:.3f} vs {on['ls']:.3f} "
                  f"({on['ls'] / off['ls']:.2f}x); tar x of {args.tar_files} files "
                  f"{off['tar']:.2f} vs {on['tar']:.2f} ({on['tar'] / off['tar']:.2f}x) "
                  "(goal <= 1.1x)", flush=True)
        if "write" in rows:
            r = b.row_write()
            print(f"3. sequential write of {r['mib']} MiB until close (s, median): mount "
                  f"{r['mount']:.2f}, omnifs put {r['put']:.2f}; ratio "
                  f"{r['mount'] / r['put']:.2f} (goal <= 1.3)", flush=True)
    except RuntimeError as e:
        print(f"bench failed: {e}", file=sys.stderr)
        for log in sorted(b.work.glob("omnifs-*/cache/mount.log")):
            print(f"--- {log}:\n{log.read_text()[-2000:]}", file=sys.stderr)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
