"""Benchmark scenarios as data: a TOML file per scenario, parsed and checked here.

A scenario is a matrix of cells, one per (object size, concurrency); each cell
runs the same operation sequence on every provider (seeded: same keys, same
order, same warm-up). Keys (docs/bench.md has the full reference)::

    name = "small-object"            # default: the file's stem
    description = "..."
    kind = "objects"                 # or "mount" (through a real FUSE mount)
    sizes = ["4KiB", "64KiB"]        # 4 KiB ... 1 GiB
    concurrency = [1, 16]            # 1 ... 64
    count = 2000                     # measured operations per cell, or
    duration = 10.0                  # seconds per cell (exactly one of the two)
    warmup = 100                     # operations run first and not measured
    objects = 200                    # objects written beforehand for reads (the data set)
    range = "64KiB"                  # length of a ranged get
    seed = 1
    [mix]                            # weights of the operations (read/write mix)
    get = 70
    put = 30
    [quick]                          # overrides for --quick (any key above but name/kind/mix)

A mount scenario has ``workload`` (one of :data:`WORKLOADS`) and ``files``
instead of a mix. Every error names the file and the key, in one line.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from omnifs.config import parse_size
from omnifs.errors import ConfigError, InvalidInput

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MIN_SIZE, MAX_SIZE = 4 * KiB, GiB
MAX_CONCURRENCY = 64
#: operations a mix may weigh; "range_get" reads ``range`` bytes at a seeded offset,
#: "list" lists the cell's data set, "copy" is a server-side copy, "multipart" a put big
#: enough to go up in parts (S3 CompleteMultipartUpload, GCS compose, Azure block list)
OPERATIONS = ("put", "get", "range_get", "head", "list", "delete", "copy", "multipart")
#: operations that write (the rest read)
WRITES = frozenset({"put", "delete", "copy", "multipart"})
#: the providers' multipart threshold (Capabilities.multipart_threshold)
MULTIPART_MIN = 16 * MiB
KINDS = ("objects", "mount")
#: mount workloads: sequential read of each file, 4 KiB reads at seeded offsets,
#: ``ls -l`` of a directory of ``files`` files, untar of ``files`` files into the mount
WORKLOADS = ("seq-read", "random-read", "ls-l", "untar")
_MATRIX_KEYS = ("sizes", "concurrency", "count", "duration", "warmup", "objects", "range",
                "files")
_KEYS = ("name", "description", "kind", "workload", "seed", "mix", "quick", *_MATRIX_KEYS)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    kind: str = "objects"
    sizes: tuple[int, ...] = (4 * KiB,)
    concurrency: tuple[int, ...] = (1,)
    #: measured operations per cell, or None when ``duration`` bounds it
    count: int | None = 100
    duration: float | None = None
    warmup: int = 0
    objects: int = 100
    range: int = 64 * KiB
    seed: int = 1
    mix: dict[str, int] = field(default_factory=lambda: {"get": 1})
    workload: str = ""
    files: int = 0
    #: the [quick] table, applied by :meth:`quick`
    quick_overrides: dict[str, Any] = field(default_factory=dict)
    #: where it came from: "built-in" or a path
    source: str = "built-in"

    def quick(self) -> Scenario:
        """The scenario as ``--quick`` runs it."""
        return replace(self, **self.quick_overrides, quick_overrides={})

    def cells(self) -> list[tuple[int, int]]:
        """(size, concurrency) in the order they run."""
        return [(s, c) for s in self.sizes for c in self.concurrency]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("quick_overrides")
        return d

    def digest(self) -> str:
        """What identifies the workload: equal digests ran the same operations."""
        d = self.as_dict()
        d.pop("source")
        d.pop("description")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _fail(where: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {message}")


def _int(value: Any, where: str, key: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, key, f"expected a whole number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _fail(where, key, f"must be {bound}, got {value}")
    return value


def _size(value: Any, where: str, key: str) -> int:
    try:
        n = parse_size(value, f"{where}: {key}")
    except ConfigError:
        raise _fail(where, key, f"{value!r} is not a size; write e.g. \"4KiB\" or \"64MiB\"") \
            from None
    if not MIN_SIZE <= n <= MAX_SIZE:
        raise _fail(where, key, f"{value!r} is outside 4KiB ... 1GiB")
    return n


def _list(value: Any, where: str, key: str) -> list:
    if not isinstance(value, list) or not value:
        raise _fail(where, key, f"expected a non-empty list, got {value!r}")
    return value


def _matrix(table: dict, where: str, prefix: str = "") -> dict[str, Any]:
    """The matrix keys of ``table``, checked; ``prefix`` names a sub-table in errors."""
    out: dict[str, Any] = {}
    if "sizes" in table:
        out["sizes"] = tuple(_size(v, where, f"{prefix}sizes")
                             for v in _list(table["sizes"], where, f"{prefix}sizes"))
    if "concurrency" in table:
        out["concurrency"] = tuple(
            _int(v, where, f"{prefix}concurrency", 1, MAX_CONCURRENCY)
            for v in _list(table["concurrency"], where, f"{prefix}concurrency"))
    if "count" in table and "duration" in table:
        raise _fail(where, f"{prefix}duration", "give count or duration, not both")
    if "count" in table:
        out["count"], out["duration"] = _int(table["count"], where, f"{prefix}count", 1), None
    if "duration" in table:
        d = table["duration"]
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 < d <= 3600:
            raise _fail(where, f"{prefix}duration", f"expected seconds (0 < s <= 3600), got {d!r}")
        out["duration"], out["count"] = float(d), None
    for key in ("warmup", "files"):
        if key in table:
            out[key] = _int(table[key], where, f"{prefix}{key}", 0)
    if "objects" in table:
        out["objects"] = _int(table["objects"], where, f"{prefix}objects", 1, 1_000_000)
    if "range" in table:
        out["range"] = _size(table["range"], where, f"{prefix}range")
    return out


def parse_scenario(data: dict, where: str, default_name: str) -> Scenario:
    """A scenario from its TOML table; ConfigError ``WHERE: KEY: what is wrong``."""
    for key in data:
        if key not in _KEYS:
            raise _fail(where, key, f"unknown key (known: {', '.join(_KEYS)})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise _fail(where, "name", f"expected letters, digits, - and _, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description", "expected a string")
    kind = data.get("kind", "objects")
    if kind not in KINDS:
        raise _fail(where, "kind", f"{kind!r}: use one of {', '.join(KINDS)}")
    fields: dict[str, Any] = {"name": name, "description": description, "kind": kind}
    fields.update(_matrix(data, where))
    if "seed" in data:
        fields["seed"] = _int(data["seed"], where, "seed", 0)
    if kind == "objects":
        for key in ("workload", "files"):
            if key in data:
                raise _fail(where, key, "only a mount scenario has it")
        fields["mix"] = _mix(data.get("mix"), where)
    else:
        workload = data.get("workload")
        if workload not in WORKLOADS:
            raise _fail(where, "workload", f"{workload!r}: use one of {', '.join(WORKLOADS)}")
        if "mix" in data:
            raise _fail(where, "mix", "a mount scenario has a workload, not a mix")
        fields["workload"] = workload
        fields["mix"] = {}
    quick = data.get("quick", {})
    if not isinstance(quick, dict):
        raise _fail(where, "quick", "expected a table")
    for key in quick:
        if key not in _MATRIX_KEYS:
            raise _fail(where, f"quick.{key}", f"not allowed in [quick] (allowed: "
                                               f"{', '.join(_MATRIX_KEYS)})")
    fields["quick_overrides"] = _matrix(quick, where, "quick.")
    scenario = Scenario(**fields, source=where)
    for variant, prefix in ((scenario, ""), (scenario.quick(), "quick.")):
        _check_consistent(variant, where, prefix)
    return scenario


def _mix(mix: Any, where: str) -> dict[str, int]:
    if mix is None:
        raise _fail(where, "mix", "missing: give the operations' weights, e.g. get = 70, put = 30")
    if not isinstance(mix, dict):
        raise _fail(where, "mix", "expected a table of operation = weight")
    out = {}
    for op, weight in mix.items():
        if op not in OPERATIONS:
            raise _fail(where, f"mix.{op}", f"unknown operation (known: {', '.join(OPERATIONS)})")
        out[op] = _int(weight, where, f"mix.{op}", 0)
    if not any(out.values()):
        raise _fail(where, "mix", "every weight is 0")
    return out


def _check_consistent(s: Scenario, where: str, prefix: str) -> None:
    if s.mix.get("multipart") and min(s.sizes) < MULTIPART_MIN:
        raise _fail(where, f"{prefix}sizes", "multipart needs sizes of at least 16MiB (the "
                                             "providers' multipart threshold)")
    if s.kind == "mount" and s.files < 1:
        raise _fail(where, f"{prefix}files", f"a {s.workload} scenario needs files >= 1")


def load_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot read scenario {p}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return parse_scenario(data, str(p), p.stem)


def builtin_names() -> list[str]:
    files = resources.files("omnifs.bench.scenarios").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def builtin(name: str) -> Scenario:
    res = resources.files("omnifs.bench.scenarios").joinpath(f"{name}.toml")
    if not res.is_file():
        raise InvalidInput(f"no built-in scenario {name!r} (built-in: "
                           f"{', '.join(builtin_names())}); or give a .toml file")
    data = tomllib.loads(res.read_text(encoding="utf-8"))
    s = parse_scenario(data, f"built-in scenario {name}", name)
    return replace(s, source="built-in")


def find(text: str) -> Scenario:
    """A built-in scenario's name or a TOML file's path."""
    if text.endswith(".toml") or "/" in text or Path(text).is_file():
        return load_file(text)
    return builtin(text)
