"""flock: run a command while holding a lock every host on the catalog sees.

``flock(2)`` and ``fcntl`` locks on a mount are the kernel's, so they
exclude processes on one host only (docs/multi-mount.md). ``omnifs flock
NAME -- CMD`` holds the catalog lease ``flock:NAME`` (omnifs/catalog/leases.py)
while CMD runs, renewing it every third of ``--ttl``; a host that dies stops
renewing and its lease runs out after ``--ttl`` seconds. Exit status: CMD's;
1 when the lock could not be had (``--nonblock``, ``--wait`` ran out) or was
lost while CMD ran (CMD is then terminated); 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

from ..catalog import Catalog
from ..config import load_config
from ..errors import InvalidInput

ORDER = 36


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flock", help="run a command holding a lock shared by every host on the catalog",
        description="Hold the lock NAME (any string: use the same one on every host, e.g. "
                    "the namespace path of the file it guards) while COMMAND runs. Locks "
                    "of a host that dies run out after --ttl seconds.")
    p.add_argument("name", metavar="NAME", help="the lock's name, e.g. /jobs/nightly")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command to run and its arguments")
    p.add_argument("--nonblock", "-n", action="store_true",
                   help="fail at once (exit 1) when another holds the lock")
    p.add_argument("--wait", "-w", type=float, default=None, metavar="SECONDS",
                   help="give up (exit 1) after this long (default: wait as long as it takes)")
    p.add_argument("--ttl", type=float, default=30.0, metavar="SECONDS",
                   help="how long the lock outlives a holder that stopped renewing it "
                        "(default: %(default)s)")
    p.set_defaults(func=cmd_flock)


def cmd_flock(args) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise InvalidInput("no command to run: omnifs flock NAME -- COMMAND [ARG...]")
    if not args.name.strip():
        raise InvalidInput("the lock's NAME is empty")
    if args.ttl < 1:
        raise InvalidInput(f"--ttl must be at least 1 second, got {args.ttl}")
    cfg = load_config(args.config)
    cat = Catalog(cfg.catalog_target(), create=False)
    key, owner = f"flock:{args.name}", uuid.uuid4().hex[:16]
    note = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        if not _take(cat, key, owner, args, note):
            held = cat.leases.holder(key)
            who = f" (held by {held.note})" if held is not None and held.note else ""
            print(f"omnifs: lock {args.name} is taken{who}", file=sys.stderr)
            return 1
        try:
            return _run(cat, key, owner, args.ttl, note, command)
        finally:
            cat.leases.release(key, owner)
    finally:
        cat.close()


def _take(cat: Catalog, key: str, owner: str, args, note: str) -> bool:
    deadline = None if args.wait is None else time.monotonic() + args.wait
    while not cat.leases.take(key, owner, args.ttl, note):
        if args.nonblock or (deadline is not None and time.monotonic() >= deadline):
            return False
        time.sleep(0.1)
    return True


def _run(cat: Catalog, key: str, owner: str, ttl: float, note: str,
         command: list[str]) -> int:
    try:
        proc = subprocess.Popen(command)
    except OSError as e:
        raise InvalidInput(f"cannot run {command[0]}: {e.strerror}") from None
    # SIGTERM/SIGHUP end the command and release the lock (the default would skip both)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        while True:
            try:
                return proc.wait(timeout=ttl / 3)
            except subprocess.TimeoutExpired:
                pass
            if not cat.leases.take(key, owner, ttl, note):
                print(f"omnifs: lock {key[len('flock:'):]} was lost (not renewed in time); "
                      "stopping the command", file=sys.stderr)
                proc.terminate()
                proc.wait()
                return 1
    except BaseException:
        proc.terminate()
        proc.wait()
        raise


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)
