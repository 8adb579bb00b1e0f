"""Points in time as a user types them, and the backup that holds a point."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from omnifs.errors import InvalidInput

from .target import Listed, id_time

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*(?:ago)?$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """"latest"/"now", a backup id, ISO 8601 (UTC unless it says), epoch seconds, "2h ago"."""
    now = time.time() if now is None else now
    t = text.strip()
    if t.lower() in ("latest", "now"):
        return now
    m = _AGO.match(t)
    if m:
        return now - float(m.group(1)) * _SECONDS[m.group(2).lower()]
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    if re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z", t):
        return id_time(t)
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--at {text!r}: not a time; write e.g. 2026-12-07T02:30:00Z, "
                           "\"2h ago\", a backup id from `omnifs dr list`, or latest") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def pick(backups: list[Listed], at: float) -> Listed:
    """The newest backup taken at or before ``at``."""
    before = [b for b in backups if b.at <= at + 1e-6]
    if not before:
        first = (f"; the oldest is {fmt(backups[0].at)}" if backups else
                 "; the target holds none yet (`omnifs dr backup --now`)")
        raise InvalidInput(f"no backup at or before {fmt(at)}{first}")
    return before[-1]


def fmt(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
