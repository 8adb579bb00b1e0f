"""Disaster recovery's three numbers, each beside ``rclone`` on the same local servers.

1. Incremental backup of 10,000 files (16 KiB) with 1 % changed, to S3 (moto):
   ``omnifs dr backup --now`` beside ``rclone copy --size-only`` of the same
   tree (its own listing of both sides, then just the changed files).
   Goal: omnifs <= 1.2 x rclone.
2. Full restore of 1 GiB in 2,000 files from the backup target:
   ``omnifs dr restore --to DIR`` beside ``rclone copy`` of the same bytes
   from that store. Goal: throughput >= 1.0 x rclone.
3. The RTO ``omnifs dr drill`` measures for the whole namespace of (1).

With (2), the same restore into a fresh store (``--to file://DIR`` and
``--to s3://BUCKET``: objects and a catalog snapshot) and the ``omnifs
import`` of that store on a new catalog, beside ``--to DIR``.

The namespace is one ``file://`` store, its catalog built by ``omnifs
import``; a change is an object rewritten and recorded as a new version
(as the mount's publish does). Both tools run as subprocesses, with the
same number of transfers (8). Not a timed test:
``.venv/bin/python bench/dr.py [--small] [--no-restore]``.

Reading the numbers (one run, 2 cores shared with other work and moto):
(1) omnifs 7.9 s, rclone 7.4 s: 1.07. The backup itself takes 2.8 s (a
catalog copy, the tree walked from it, the newest manifest read, 100 HEADs
and uploads); the rest is starting Python and importing the SDKs. A
first version that listed the target's 10,000 content objects took 1.57:
moto's listing is slow. (2) 18.0 against 17.7 MB/s: 1.02; both are bound by
moto serving the GETs. (3) 66 s for the 10,000 files of (1): ~6 ms per file,
moto's cost of a GET.
"""

from __future__ import annotations

import os
import sys

# bench/ holds a copy.py, which would shadow the stdlib's: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnifs.catalog import Catalog
from omnifs.layout import object_meta
from omnifs.providers import ProviderSettings, open_provider
from tests import servers as S

OMNIFS = [str(ROOT / ".venv" / "bin" / "omnifs")]
TRANSFERS = 8


def run(argv: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])}... failed: {proc.stdout}{proc.stderr}")
    return took, proc.stdout


class Bench:
    def __init__(self, small: bool) -> None:
        self.small = small
        self.tmp = Path(tempfile.mkdtemp(prefix="omnifs-bench-dr-"))
        self.server = S.start("s3")
        self.bucket = S.unique_bucket("benchdr")
        S.create_bucket("s3", self.server.endpoint, self.bucket)
        self.vault = S.settings_for("s3", self.server.endpoint, self.bucket, name="vault")
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.env.update({
            "RCLONE_CONFIG_S3_TYPE": "s3", "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENDPOINT": self.server.endpoint,
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "test", "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "test",
            "RCLONE_CONFIG_S3_REGION": "us-east-1"})

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def namespace(self, name: str, files: int, size: int) -> tuple[Path, Path]:
        """A store of ``files`` objects and a config whose catalog imported it."""
        store = self.tmp / name / "store"
        store.mkdir(parents=True)
        p = open_provider(ProviderSettings(name="src", uri=f"file://{store}"))
        for i in range(files):
            _put(p, f"d{i % 50:02d}/f{i:05d}.bin", os.urandom(size))
        p.close()
        cfg = self.tmp / name / "omnifs.toml"
        v = self.vault
        cfg.write_text(
            f'[catalog]\nurl = "sqlite:///{self.tmp / name / "catalog.db"}"\n'
            f'[cache]\ndir = "{self.tmp / name / "cache"}"\n'
            f'[providers.src]\nuri = "file://{store}"\n'
            f'[[dr.backups]]\nname = "vault"\nuri = "{v.uri}/{name}"\nendpoint = "{v.endpoint}"\n'
            f'region = "{v.region}"\naccess_key = "{v.access_key}"\n'
            f'secret_key = "{v.secret_key}"\n')
        cfg.chmod(0o600)
        run([*OMNIFS, "--config", str(cfg), "import", "--no-snapshot"])
        return cfg, store

    def change(self, cfg: Path, store: Path, every: int) -> int:
        """Rewrite every ``every``-th file (a new size, so --size-only sees it); how many."""
        from omnifs.config import load_config

        cat = Catalog(load_config(cfg).catalog_path())
        p = open_provider(ProviderSettings(name="src", uri=f"file://{store}"))
        n = 0
        for ino, path in list(cat.ns.files_under(cat.ns.resolve("").id)):
            if int(path[-9:-4]) % every:
                continue
            data = os.urandom(16 * 1024 + 100)
            sha, t = _put(p, path, data)
            inode = cat.ns.get(ino)
            with cat.transaction():
                cat.ns.update(ino, version=inode.version + 1, sha256=sha, size=len(data),
                              mtime_ns=t)
                cat.replicas.set(ino, "src", path, inode.version + 1, "synced")
                cat.replicas.add_version(ino, inode.version + 1, sha, len(data), t)
            n += 1
        cat.close()
        p.close()
        return n

    def incremental(self) -> Path:
        files = 1000 if self.small else 10_000
        cfg, store = self.namespace("inc", files, 16 * 1024)
        run([*OMNIFS, "--config", str(cfg), "dr", "backup", "--now"])
        rclone = ["rclone", "copy", "--size-only", "--transfers", str(TRANSFERS),
                  "--checkers", str(TRANSFERS), str(store), f"s3:{self.bucket}/rclone-inc"]
        run(rclone, self.env)
        changed = self.change(cfg, store, 100)
        ours, out = run([*OMNIFS, "--config", str(cfg), "dr", "backup", "--now"])
        theirs, _ = run(rclone, self.env)
        print(f"1. incremental backup, {files} files, {changed} changed: omnifs {ours:.2f} s, "
              f"rclone {theirs:.2f} s: omnifs / rclone = {ours / theirs:.2f} (goal <= 1.2)")
        print(f"   {out.strip()}")
        return cfg

    def restore(self) -> None:
        files = 200 if self.small else 2000
        size = (1 << 30) // 2000
        cfg, _ = self.namespace("full", files, size)
        run([*OMNIFS, "--config", str(cfg), "dr", "backup", "--now"])
        total = files * size
        ours, _ = run([*OMNIFS, "--config", str(cfg), "dr", "restore", "--at", "latest",
                       "--to", str(self.tmp / "restored")])
        theirs, _ = run(["rclone", "copy", "--transfers", str(TRANSFERS), "--s3-no-head",
                         f"s3:{self.bucket}/full/data", str(self.tmp / "rclone-restored")],
                        self.env)
        print(f"2. full restore, {total / 2**20:.0f} MiB in {files} files: omnifs "
              f"{total / ours / 1e6:.1f} MB/s, rclone {total / theirs / 1e6:.1f} MB/s: "
              f"omnifs / rclone = {theirs / ours:.2f} (goal >= 1.0)")
        self.into_stores(cfg, total, ours)

    def into_stores(self, cfg: Path, total: int, to_dir: float) -> None:
        """The same restore into a fresh store (objects and a catalog snapshot), then the
        import of that store on a new catalog, beside ``--to DIR``."""
        bucket = S.unique_bucket("benchfresh")
        S.create_bucket("s3", self.server.endpoint, bucket)
        v = self.vault
        env = {**self.env, "AWS_ENDPOINT_URL": v.endpoint, "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        line = [f"--to DIR {total / to_dir / 1e6:.1f} MB/s"]
        for name, uri in (("file://", f"file://{self.tmp / 'fresh'}"),
                          ("S3 (moto)", f"s3://{bucket}")):
            took, _ = run([*OMNIFS, "--config", str(cfg), "dr", "restore", "--at", "latest",
                           "--to", uri], env)
            new = self.tmp / f"import-{bucket if 's3' in uri else 'file'}.toml"
            table = "\n".join(f'{k} = "{getattr(v, k)}"' for k in
                              ("endpoint", "region", "access_key", "secret_key"))
            new.write_text(f'[catalog]\nurl = "sqlite:///{new.with_suffix(".db")}"\n'
                           f'[cache]\ndir = "{self.tmp / "cache-import"}"\n'
                           f'[providers.rescue]\nuri = "{uri}"\n'
                           + (table + "\n" if "s3" in uri else ""))
            new.chmod(0o600)
            imported, _ = run([*OMNIFS, "--config", str(new), "import"], env)
            line.append(f"--to {name} {total / took / 1e6:.1f} MB/s ({took:.1f} s, "
                        f"{took / to_dir:.2f} x --to DIR; then import {imported:.1f} s)")
        print("   restore into a fresh store: " + "; ".join(line))

    def drill(self, cfg: Path) -> None:
        _, out = run([*OMNIFS, "--config", str(cfg), "dr", "drill"])
        rto = re.search(r"RTO ([\d.]+) s", out)
        print(f"3. RTO measured by the drill for the namespace of 1: "
              f"{rto.group(1) if rto else '?'} s ({out.strip()})")


def _put(p, key: str, data: bytes) -> tuple[str, int]:
    """Write an object as omnifs does (SHA-256 and mtime in its metadata); (sha, mtime_ns)."""
    sha = hashlib.sha256(data).hexdigest()
    t = time.time_ns()
    p.write_bytes(key, data, object_meta(sha, t))
    return sha, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="1,000 files and 100 MiB: quick")
    ap.add_argument("--no-restore", action="store_true", help="numbers 1 and 3 only")
    ap.add_argument("--restore-only", action="store_true", help="number 2 only")
    args = ap.parse_args()
    if not shutil.which("rclone"):
        sys.exit("bench/dr.py needs rclone in PATH (apt-get install rclone)")
    bench = Bench(args.small)
    try:
        if not args.restore_only:
            cfg = bench.incremental()
            bench.drill(cfg)
        if not args.no_restore:
            bench.restore()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
