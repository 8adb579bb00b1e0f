"""What a migration run reports: progress while it runs, the result and its summary lines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..units import human_bytes, plural

#: failures listed one per line before "and N more"
SHOW_FAILURES = 20


@dataclass
class RunProgress:
    """Where a run stands; ``--progress=json`` prints it as one line."""

    #: items this run set out to do, and their bytes
    total: int
    total_bytes: int
    done: int
    failed: int
    pending: int
    #: bytes moved through this machine (or copied server-side) so far
    bytes: int
    bytes_per_s: float
    elapsed: float
    final: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bytes_per_s"] = round(self.bytes_per_s, 1)
        d["elapsed"] = round(self.elapsed, 3)
        return d


@dataclass
class RunResult:
    migration: str
    #: the migration's state afterwards: "done" or "incomplete"
    state: str
    copied: int = 0
    copied_bytes: int = 0
    #: found complete at the destination after an interrupted run, not copied again
    resumed: int = 0
    skipped: int = 0
    #: destination objects deleted (``--delete``)
    deleted: int = 0
    #: source objects deleted after their copy was verified (move)
    sources_deleted: int = 0
    #: (key, error) of every failed item
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: int = 0
    #: why the run stopped before the end (one line), None when it did not
    stopped: str | None = None
    elapsed: float = 0.0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.state == "done" and not self.failed and self.stopped is None


def summary_lines(r: RunResult, mode: str = "copy") -> list[str]:
    """The lines a run ends with (elapsed and rate on the last)."""
    lines = [f"copied {plural(r.copied, 'object')}, {human_bytes(r.copied_bytes)}"
             + (f" ({r.resumed} found complete from an interrupted run)" if r.resumed else "")
             + f"; {r.skipped} skipped, {r.deleted} deleted, {len(r.failed)} failed, "
             f"{r.pending} pending"]
    if mode == "move":
        lines.append(f"moved: {plural(r.sources_deleted, 'source object')} deleted after "
                     "verification")
    rate = r.bytes / r.elapsed if r.elapsed > 0 else 0.0
    lines.append(f"migration {r.migration} {r.state} in {r.elapsed:.1f}s "
                 f"({human_bytes(rate)}/s)")
    return lines


def failure_lines(failed: list[tuple[str, str]], limit: int = SHOW_FAILURES) -> list[str]:
    """One line per failed object, at most ``limit``, then "and N more"."""
    out = [f"failed: {key}: {error}" for key, error in failed[:limit]]
    if len(failed) > limit:
        out.append(f"and {len(failed) - limit} more")
    return out
