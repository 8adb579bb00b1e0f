"""How long a migration would take: the time model behind ``omnifs migrate plan``.

Pure arithmetic over what was measured; no I/O. Two figures per store:

* a request's round trip (``latency``): the p50 of the store's successful
  request samples (the daemon's health probes, the mount's requests, the
  plan's own probe);
* a throughput one way (bytes/s read from the source, written to the
  destination): the store's timed transfers, each one's duration less one
  round trip, so a small object's transfer does not pass for a slow link.

The estimate::

    overhead = source round trip + destination round trip   (one GET, one PUT)
    seconds  = overhead * objects / parallel + bytes / min(read, write)

Requests overlap across the run's parallel workers; the bytes share one
link, so the slower side of it bounds them. Objects a run deletes (``delete``,
a move's source deletes) cost one round trip each and no bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: objects a run moves at once when not told otherwise (``migrate run --parallel``)
DEFAULT_PARALLEL = 8
#: figures older than this are not "recent": the plan measures for itself
RECENT = 7 * 86400.0
#: a transfer's payload time is never taken below this share of its duration
MIN_PAYLOAD_SHARE = 0.1


def p50(values: Iterable[float]) -> float | None:
    """Nearest-rank median; None when there is nothing to take it of."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[(len(ordered) + 1) // 2 - 1]


def throughput(transfers: Sequence[tuple[int, float]], latency: float | None = None
               ) -> float | None:
    """Bytes/s of ``(nbytes, seconds)`` transfers, each less one round trip ``latency``.

    None without bytes to go by (no transfers, or only empty ones).
    """
    total = sum(n for n, _ in transfers)
    spent = sum(max(s, 0.0) for _, s in transfers)
    if total <= 0 or spent <= 0:
        return None
    payload = spent - (latency or 0.0) * len(transfers)
    return total / max(payload, spent * MIN_PAYLOAD_SHARE)


def work(summary: dict[str, Any]) -> tuple[int, int]:
    """(objects, bytes) a plan's run moves or deletes, from its summary (plan.summarize)."""
    objects = sum(summary[a]["objects"] for a in ("copy", "overwrite", "delete"))
    objects += summary.get("delete_source", {}).get("objects", 0)
    nbytes = summary["copy"]["bytes"] + summary["overwrite"]["bytes"]
    return objects, nbytes


@dataclass(frozen=True)
class TimeEstimate:
    """A run's duration and the figures it came from (stored in the plan file)."""

    seconds: float
    parallel: int
    objects: int
    bytes: int
    #: seconds of round trips per object (source + destination)
    overhead: float
    #: bytes/s read from the source and written to the destination
    read: float
    write: float
    #: the day the newest figure was measured (YYYY-MM-DD, UTC)
    measured: str

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "parallel": self.parallel,
                "objects": self.objects, "bytes": self.bytes,
                "overhead": round(self.overhead, 6), "read_bytes_per_s": round(self.read, 1),
                "write_bytes_per_s": round(self.write, 1), "measured": self.measured}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimeEstimate:
        return cls(seconds=float(d["seconds"]), parallel=int(d["parallel"]),
                   objects=int(d["objects"]), bytes=int(d["bytes"]),
                   overhead=float(d["overhead"]), read=float(d["read_bytes_per_s"]),
                   write=float(d["write_bytes_per_s"]), measured=str(d["measured"]))


def estimate(objects: int, nbytes: int, *, overhead: float, read: float, write: float,
             parallel: int = DEFAULT_PARALLEL, measured_at: float) -> TimeEstimate:
    """The model of the module docstring; ``measured_at`` is the newest figure's epoch time."""
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    if read <= 0 or write <= 0:
        raise ValueError("throughput must be positive")
    seconds = max(overhead, 0.0) * objects / parallel + nbytes / min(read, write)
    day = datetime.fromtimestamp(measured_at, UTC).strftime("%Y-%m-%d")
    return TimeEstimate(seconds=seconds, parallel=parallel, objects=objects, bytes=nbytes,
                        overhead=max(overhead, 0.0), read=read, write=write, measured=day)


def human_duration(seconds: float) -> str:
    """``4 min 10 s``, ``2 h 5 min``, ``3 d 4 h``, ``0.4 s``: two units at most."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    for big, big_name, small, small_name in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"),
                                             (60, "min", 1, "s")):
        if s >= big:
            rest = (s % big) // small
            return f"{s // big} {big_name}" + (f" {rest} {small_name}" if rest else "")
    return f"{s} s"


def human_rate(bps: float) -> str:
    """Decimal units, as link speeds are quoted: ``45 MB/s``, ``1.2 GB/s``, ``800 kB/s``."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if bps >= size:
            v = bps / size
            return f"{v:.1f} {unit}/s" if v < 10 else f"{v:.0f} {unit}/s"
    return f"{bps:.0f} B/s"


def line(est: TimeEstimate) -> str:
    """The plan's one line: ``estimated time: 4 min 10 s at 8 parallel (...)``."""
    return (f"estimated time: {human_duration(est.seconds)} at {est.parallel} parallel "
            f"(source {human_rate(est.read)} read, destination {human_rate(est.write)} write, "
            f"measured {est.measured})")
