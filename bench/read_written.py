"""A read right after close (``cp big /mnt/x && sha256sum /mnt/x``): the written file vs a store.

Two mounts side by side, each over its own ``file://`` store whose reads go through a
network profile (omnifs/bench/netprofile.py, ``cross-region`` by default: 65 ms per
request, 100 MB/s; writes are not slowed): one as built, which reads a file still
waiting for the block cache from its written file (mountfs/written.py), and one with
that switched off in its process (``Kept.lend`` answers None: every block the cache
lacks comes from the store, as before). Each run writes a fresh file of ``--size-mib``
through each mount and times ``cat`` of it right after the close, the two mounts in
alternating order; the bytes are checked after. Prints the medians, their ratio and
the load average. Needs FUSE.

    .venv/bin/python bench/read_written.py                 # 256 MiB, 3 runs
    .venv/bin/python bench/read_written.py --size-mib 64 --runs 1
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like stdlib modules (copy.py): never import from it
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import time

MiB = 1024 * 1024


def serve(config: str, mountpoint: str, net: str, off: bool) -> int:
    """The mount, in the foreground, its stores' reads behind ``net``."""
    from omnifs.bench.netprofile import profile
    from omnifs.config import load_config
    from omnifs.mountfs.mount import serve as serve_mount
    from omnifs.mountfs.written import Kept

    if off:
        Kept.lend = lambda self, content_id: None  # type: ignore[method-assign]
    link = profile(net)
    return serve_mount(load_config(config), mountpoint,
                       read_via=lambda name, provider: link.apply(provider))


def start(root: Path, net: str, off: bool) -> tuple[subprocess.Popen, Path]:
    from omnifs.providers import ProviderSettings
    from tests.mount.conftest import write_config

    (root / "store").mkdir(parents=True)
    mp = root / "mnt"
    mp.mkdir()
    cfg = write_config(root, {"s": ProviderSettings(name="s", uri=f"file://{root}/store")},
                       copies=1, cache={"size": "2GiB"})
    argv = [sys.executable, __file__, "--serve", str(cfg), str(mp), "--profile", net]
    with open(root / "mount.log", "ab") as log:
        proc = subprocess.Popen(argv + (["--off"] if off else []), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while not os.path.ismount(mp):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the mount at {mp} did not start: see {root / 'mount.log'}")
        time.sleep(0.1)
    return proc, mp


def stop(proc: subprocess.Popen, mp: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(mp)], check=False)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one(mp: Path, data: bytearray, run: int) -> float:
    """Write a fresh version (its first bytes say which run) and time ``cat`` of it."""
    data[:8] = run.to_bytes(8, "little")
    path = mp / f"f{run}"
    with open(path, "wb") as f:
        for off in range(0, len(data), 4 * MiB):
            f.write(memoryview(data)[off:off + 4 * MiB])
    t0 = time.monotonic()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    took = time.monotonic() - t0
    with open(path, "rb") as f:
        if hashlib.file_digest(f, "sha256").digest() != hashlib.sha256(data).digest():
            raise SystemExit(f"{path}: wrong bytes read back")
    path.unlink()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", default="cross-region")
    ap.add_argument("--serve", nargs=2, metavar=("CONFIG", "MOUNTPOINT"), help=argparse.SUPPRESS)
    ap.add_argument("--off", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(*args.serve, args.profile, args.off)

    data = bytearray(os.urandom(args.size_mib * MiB))
    times: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="omnifs-read-written-") as tmp:
        mounts = {side: start(Path(tmp) / side, args.profile, side == "off") for side in times}
        try:
            for run in range(args.runs):
                for side in (("on", "off") if run % 2 == 0 else ("off", "on")):
                    times[side].append(one(mounts[side][1], data, run))
                    print(f"run {run + 1} {side:>3}: {times[side][-1]:.2f} s", flush=True)
        finally:
            for proc, mp in mounts.values():
                stop(proc, mp)
    on, off = (statistics.median(times[s]) for s in ("on", "off"))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"cat of {args.size_mib} MiB right after close, store behind {args.profile}, "
          f"median of {args.runs}: {on:.2f} s from the written file, {off:.2f} s with it off "
          f"(from the store): {off / on:.1f}x (load average {load})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
