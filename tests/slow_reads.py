"""A mount whose reads from some stores are slowed, for tests and benchmarks.

Every read request the mount sends to a named store waits that many seconds
first (providers/faulty.py), so that the fastest-replica logic can be seen
through a real mount. The mount itself has no such switch: this module runs
it in the foreground with the ``read_via`` hook of ``serve``
(mountfs/reader.py) putting a :class:`FaultyProvider` in front of those
stores. Writes, deletes and the daemon's work are not slowed.

From a test or a benchmark::

    proc = slow_reads.start(config, mountpoint, {"s3a": 1.0}, log_path=root / "mount.log")
    ...                        # read through the mount, then `omnifs umount` it
    slow_reads.wait_exit(proc)  # the process flushes after the unmount

By hand: ``python -m tests.slow_reads --config C --latency s3a=1.0 MOUNTPOINT``
(from the repository root; stop it with ``omnifs umount``).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: seconds a slowed mount may take to start serving
READY_TIMEOUT = 60.0

log = logging.getLogger("omnifs.test.slow_reads")


def slowed(latency: dict[str, float]) -> Callable:
    """A ``read_via`` hook: reads of each store named in ``latency`` wait that long first."""
    from omnifs.providers.faulty import FaultyProvider

    def wrap(name: str, provider):
        secs = latency.get(name)
        if secs is None:
            return provider
        log.warning("reads from %s delayed by %.3f s (test mount)", name, secs)
        return FaultyProvider(provider, latency=secs, name=name)

    return wrap


def start(config: Path, mountpoint: Path, latency: dict[str, float], *,
          log_path: Path) -> subprocess.Popen:
    """A mount of ``config`` at ``mountpoint`` with ``latency`` on reads; returns once it serves."""
    r, w = os.pipe()
    argv = [sys.executable, "-m", "tests.slow_reads", "--config", str(config),
            "--ready-fd", str(w)]
    for name, secs in latency.items():
        argv += ["--latency", f"{name}={secs}"]
    argv.append(str(mountpoint))
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, pass_fds=(w,), start_new_session=True)
    os.close(w)
    got = b""
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([r], [], [], 0.2)
            if ready:
                got = os.read(r, 16)
                break
    finally:
        os.close(r)
    if not got.startswith(b"ok"):
        proc.kill()
        proc.wait()
        tail = Path(log_path).read_text(errors="replace")[-2000:]
        raise AssertionError(f"slowed mount at {mountpoint} did not start:\n{tail}")
    return proc


def wait_exit(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """After its unmount: wait until the mount process has finished (it flushes first)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"slowed mount (pid {proc.pid}) did not exit after its unmount") from None


def _latency(item: str) -> tuple[str, float]:
    name, _, secs = item.partition("=")
    try:
        return name.strip(), float(secs)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{item!r}: want NAME=SECONDS") from None


def main(argv: list[str] | None = None) -> int:
    from omnifs.config import load_config
    from omnifs.mountfs.mount import serve
    from omnifs.private import restrict_umask

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--latency", type=_latency, action="append", default=[],
                    metavar="NAME=SECONDS", help="delay every read request to store NAME")
    ap.add_argument("--ready-fd", type=int, help="write 'ok' here once the mount serves")
    ap.add_argument("mountpoint")
    args = ap.parse_args(argv)
    restrict_umask()
    logging.basicConfig(level=logging.WARNING, format="omnifs: %(levelname)s: %(message)s")
    ready = None
    if args.ready_fd is not None:
        fd = args.ready_fd

        def ready() -> None:
            os.write(fd, b"ok\n")
            os.close(fd)

    return serve(load_config(args.config), args.mountpoint, ready=ready,
                 read_via=slowed(dict(args.latency)))


if __name__ == "__main__":
    sys.exit(main())
