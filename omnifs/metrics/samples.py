"""The local sample store ``omnifs metrics compare`` reads when no Prometheus is configured.

Every ``[metrics] sample_interval`` seconds the mount and the daemon each
append one JSON line of their store counters (``providers.metered``) to
``<cache dir>/metrics/<source>-<pid>.jsonl``: per provider and op the
requests, errors (not-found answers left out), bytes in and out, and the
latency histogram's cumulative bucket counts. One file per process, so its
counters only grow; a window sums the files' differences. Each file keeps
its last ``KEEP`` lines (7 days at one a minute), and the files of processes
gone for ``MAX_AGE`` are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from omnifs.providers.metered import REGISTRY

KEEP = 10_080
#: a finished process's file is deleted this long after its last sample
MAX_AGE = 8 * 86400.0

_swept = False

#: per (provider, op): requests, errors, bytes_in, bytes_out, seconds (sum), bucket counts
Row = dict[str, float | list[float]]


def directory(cache_dir: Path) -> Path:
    return Path(cache_dir) / "metrics"


def snapshot() -> dict[str, dict[str, Row]]:
    """This process's store counters now: provider -> op -> row."""
    out: dict[str, dict[str, Row]] = {}

    def row(labels: dict) -> Row:
        ops = out.setdefault(labels["provider"], {})
        return ops.setdefault(labels["op"], {"requests": 0.0, "errors": 0.0, "bytes_in": 0.0,
                                             "bytes_out": 0.0, "seconds": 0.0, "buckets": []})

    names = {"omnifs_store_requests_total": "requests", "omnifs_store_errors_total": "errors",
             "omnifs_store_read_bytes_total": "bytes_in",
             "omnifs_store_written_bytes_total": "bytes_out",
             "omnifs_store_request_seconds_sum": "seconds"}
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.name == "omnifs_store_request_seconds_bucket":
                row(s.labels)["buckets"].append(s.value)  # type: ignore[union-attr]
            elif s.name in names:
                if s.name == "omnifs_store_errors_total" and s.labels.get("error") == "not_found":
                    continue
                r = row(s.labels)
                r[names[s.name]] = float(r[names[s.name]]) + s.value  # type: ignore[arg-type]
    return out


def append(cache_dir: Path, source: str, now: float | None = None) -> Path:
    """One sample line for ``source`` (``mount``, ``daemon``); trims the file now and then."""
    global _swept
    d = directory(cache_dir)
    d.mkdir(parents=True, exist_ok=True)
    if not _swept:  # once per process: the files of processes long gone
        _swept = True
        for old in d.glob("*.jsonl"):
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > MAX_AGE:
                    old.unlink()
    path = d / f"{source}-{os.getpid()}.jsonl"
    with path.open("a") as f:
        f.write(json.dumps({"t": now or time.time(), "stores": snapshot()}) + "\n")
    if path.stat().st_size > KEEP * 2048:
        lines = path.read_text().splitlines()[-KEEP:]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
    return path


def read(cache_dir: Path) -> dict[str, list[dict]]:
    """Every source's samples, oldest first (a torn last line is skipped)."""
    out: dict[str, list[dict]] = {}
    d = directory(cache_dir)
    if not d.is_dir():
        return out
    for path in sorted(d.glob("*.jsonl")):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        if rows:
            out[path.stem] = rows
    return out
