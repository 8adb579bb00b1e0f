"""Which omnifs processes run: ``omnifs umount`` waiting for a mount, ``omnifs status``."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and has not exited (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def mount_processes(mountpoint: str) -> list[int]:
    """Pids of ``omnifs mount`` processes serving ``mountpoint`` (from /proc)."""
    want = {os.path.abspath(mountpoint), os.path.realpath(mountpoint)}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if "mount" not in argv or not any(Path(a).name == "omnifs" for a in argv):
            continue
        after = argv[argv.index("mount") + 1:]
        if any(not a.startswith("-") and os.path.abspath(a) in want for a in after):
            found.append(int(name))
    return found


#: catalog meta key where the running daemon says who it is ("" once it has stopped)
DAEMON_KEY = "daemon"


def this_process() -> str:
    """The record a daemon leaves under ``DAEMON_KEY`` while it runs."""
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname()})


def recorded_alive(record: str | None, heard_lately: bool) -> bool:
    """Does the process of ``record`` (a :func:`this_process` value) still run?

    On this host its pid says so at once (a daemon killed with -9 never
    clears its record); on another host, or with no record at all (a daemon
    from before the record existed), only whether it was ``heard_lately``.
    An empty record is a clean stop.
    """
    if record is None:
        return heard_lately
    if not record:
        return False
    try:
        info = json.loads(record)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return heard_lately
    return alive(pid) if host == socket.gethostname() else heard_lately


#: catalog meta keys ``worker:<worker id>``: one record per running daemon process, on any
#: host (daemons on several hosts drain one queue); removed by a clean stop
WORKER_PREFIX = "worker:"

#: a worker whose record is older than this (seconds) and cannot be checked by pid is gone
WORKER_STALE_AFTER = 60.0


def worker_record(worker: str, started: float, done: int, failed: int, now: float) -> str:
    """What a daemon process writes under ``WORKER_PREFIX + worker`` as its heartbeat."""
    return json.dumps({"worker": worker, "pid": os.getpid(), "host": socket.gethostname(),
                       "started": started, "heartbeat": now, "done": done, "failed": failed})


def workers_from(records: dict[str, str], now: float) -> list[dict]:
    """The daemon processes of ``records`` (meta rows under ``WORKER_PREFIX``), each with
    ``alive``: its pid on this host, or a fresh heartbeat on another host."""
    out = []
    for key, record in sorted(records.items()):
        try:
            info = json.loads(record)
            fresh = now - float(info["heartbeat"]) < WORKER_STALE_AFTER
        except (ValueError, KeyError, TypeError):
            continue
        info["worker"] = key[len(WORKER_PREFIX):]
        info["alive"] = recorded_alive(record, fresh)
        out.append(info)
    return out
