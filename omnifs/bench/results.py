"""Benchmark results: per-cell figures, the run's environment, JSON files in a history dir.

A run is one JSON file (``format = "omnifs-bench"``): the scenario (and its
digest), ``quick``, the network profile, the environment (versions, CPU,
kernel, a hash of the config) and one row per provider x cell x repeat. Its
name starts with the UTC start time, so a directory listing is the history
in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from omnifs.errors import InvalidInput
from omnifs.files import atomic_write

FORMAT = "omnifs-bench"
VERSION = 1
#: points of the latency CDF kept per row (quantiles 0, 1/(N-1), ..., 1)
CDF_POINTS = 41
_SDKS = ("boto3", "google-cloud-storage", "azure-storage-blob", "minio", "pyfuse3")


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` (0..1) quantile of sorted values, by linear interpolation; 0 when empty."""
    if not ordered:
        return 0.0
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Latency:
    count: int = 0
    errors: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, ordered: list[float], errors: int = 0) -> Latency:
        return cls(len(ordered), errors, percentile(ordered, 0.5), percentile(ordered, 0.95),
                   percentile(ordered, 0.99), ordered[-1] if ordered else 0.0)


@dataclass
class Row:
    """One scenario cell on one provider (one repeat)."""

    provider: str
    #: the provider's URI scheme ("s3", "gs", "az", "minio", "file")
    scheme: str
    size: int
    concurrency: int
    repeat: int
    #: measured operations that succeeded / failed
    ops: int
    errors: int
    seconds: float
    bytes: int
    ops_per_s: float
    mb_per_s: float
    latency: Latency
    #: per operation kind
    per_op: dict[str, Latency]
    #: latency quantiles (seconds) at 0, 1/40, ..., 1
    cdf: list[float]
    #: client CPU (user + system) during the measured phase, seconds
    cpu_seconds: float
    #: the client's peak resident memory during the cell, bytes
    peak_rss: int
    #: first error messages, for a reader wondering why
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        d = dict(d)
        d["latency"] = Latency(**d["latency"])
        d["per_op"] = {k: Latency(**v) for k, v in d["per_op"].items()}
        return cls(**d)


def environment(config_path: Path | None) -> dict[str, Any]:
    from omnifs import __version__

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {"omnifs": __version__,
                                       "python": sys.version.split()[0]}
    for name in _SDKS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    config_hash = None
    if config_path is not None and config_path.is_file():
        config_hash = hashlib.sha256(config_path.read_bytes()).hexdigest()[:16]
    return {"versions": versions, "cpu": cpu, "cpus": os.cpu_count(),
            "kernel": platform.release(), "platform": platform.platform(),
            "config_hash": config_hash}


def default_history() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "omnifs" / "bench"


def save(run: dict[str, Any], directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput(f"cannot create {directory}: {e.strerror or e}") from None
    name = f"{run['started_utc']}-{run['scenario']['name']}-{run['run_id'][:6]}.json"
    path = directory / name
    atomic_write(path, (json.dumps(run, indent=1, sort_keys=True) + "\n").encode())
    return path


def load(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path}: not a bench result (bad JSON: {e})") from None
    if not isinstance(run, dict) or run.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not an omnifs bench result")
    if run.get("version") != VERSION:
        raise InvalidInput(f"{path}: bench result version {run.get('version')} "
                           f"(this omnifs reads {VERSION})")
    return run


def load_many(paths: list[Path]) -> list[dict[str, Any]]:
    """Runs from files and directories (every ``*.json`` in them, oldest first)."""
    runs = []
    for p in paths:
        if p.is_dir():
            files = sorted(p.glob("*.json"))
            if not files:
                raise InvalidInput(f"{p}: no bench results (*.json) in this directory")
            runs += [load(f) for f in files]
        else:
            runs.append(load(p))
    return runs


def rows(run: dict[str, Any]) -> list[Row]:
    return [Row.from_dict(r) for r in run["results"]]
