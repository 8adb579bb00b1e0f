"""What is mounted where, from /proc/self/mountinfo, without touching the mounts.

Reading the table never stats a mount point, so it works on a stale FUSE
mount (whose stat fails with ENOTCONN) and on a mount whose process is not
serving yet (where a stat would wait).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: the kernel's type for omnifs's FUSE mounts (``subtype=omnifs``)
FSTYPE = "fuse.omnifs"

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    fstype: str
    source: str
    #: "major:minor"
    device: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\NNN octal."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts(table: str = "/proc/self/mountinfo") -> list[Mount]:
    found = []
    try:
        with open(table, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                parts, rest = left.split(), right.split()
                if len(parts) < 5 or len(rest) < 2:
                    continue
                found.append(Mount(_unescape(parts[4]), rest[0], _unescape(rest[1]), parts[2]))
    except OSError:
        return []
    return found


def canonical(path: str) -> str:
    """``path`` absolute with its parent's symlinks resolved; the last part is not looked up.

    Looking the last part up would ask the mount mounted there, which hangs
    when its process is not serving and fails when it died.
    """
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def mount_at(path: str) -> Mount | None:
    """The mount whose mount point is ``path`` (the top one when several are stacked).

    ``path`` is compared as given (absolute): pass :func:`canonical` of what a user typed.
    """
    at = [m for m in mounts() if m.mountpoint == path]
    return at[-1] if at else None


def omnifs_mount_containing(path: str) -> Mount | None:
    """The omnifs mount ``path`` lies in (the deepest mount point above it), or None."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts():
        inside = real == m.mountpoint or real.startswith(m.mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(m.mountpoint) >= len(best.mountpoint)):
            best = m
    return best if best is not None and best.fstype == FSTYPE else None
