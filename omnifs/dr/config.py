"""``[dr]`` and ``[[dr.backups]]`` in omnifs.toml: parsed and checked, one line per mistake.

::

    [dr]
    rpo = "15m"                 # recovery point objective: the daemon warns past it
    rto = "1h"                  # recovery time objective: drills compare against it
    keep_versions_for = "7d"    # overwritten/deleted versions kept on the first target
    drill_schedule = "7d"       # the daemon drills each target (interval or cron) ...
    drill_sample = 10           # ... restoring this percentage of the files

    [[dr.backups]]
    name = "offsite"            # default: the target's name
    target = "aws"              # a provider of [providers] (then prefix is required) ...
    prefix = "backups"          # ... whose .omnifs/dr/<prefix>/ holds the backups
    # uri = "s3://vault/omnifs" # ... or a store of its own, with the provider keys
    schedule = "1h"             # an interval, or 5-field cron ("0 3 * * *", UTC)
    keep_last = 7               # retention, as restic's forget: last, hourly, daily,
    daily = 14                  # weekly, monthly
    paths = ["/"]               # the trees covered
    key_file = "~/.config/omnifs/dr.key"   # optional: AES-256-GCM on every object

A target of ``[providers]`` holds live replicas: the damage a backup guards
against (a deleted or encrypted tree) reaches it at once. Its backups live
under the reserved ``.omnifs/dr/<prefix>/``, which the mount never shows and
sync never touches; without a prefix such a target is refused. A ``uri``
target in the same place as a provider is refused outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cronsim import CronSim, CronSimError

from omnifs.errors import ConfigError
from omnifs.providers import ProviderSettings

_DURATION = re.compile(r"^\s*(?:every\s+)?(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
RETENTION_KEYS = ("keep_last", "hourly", "daily", "weekly", "monthly")
_BACKUP_KEYS = {"name", "target", "uri", "prefix", "schedule", "paths", "key_file",
                *RETENTION_KEYS}
_DR_KEYS = {"rpo", "rto", "keep_versions_for", "backups", "drill_schedule", "drill_sample"}
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
#: where the backups of a ``target = NAME`` of [providers] live inside that store
RESERVED_DR = ".omnifs/dr/"


def parse_duration(value: object, where: str) -> float:
    """"90s", "15m", "1h", "7d", "2w" (optionally "every 1h") or seconds -> seconds > 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(value) if isinstance(value, str) else None
        if m is None:
            raise ConfigError(f"{where}: {value!r} is not a duration; write e.g. \"15m\", "
                              "\"1h\" or \"7d\"")
        seconds = float(m.group(1)) * _SECONDS[m.group(2).lower()]
    if seconds <= 0:
        raise ConfigError(f"{where}: must be more than zero, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """Every ``interval`` seconds, or at the times of a 5-field ``cron`` expression (UTC)."""

    interval: float | None = None
    cron: str | None = None

    def next_after(self, last: float | None, now: float) -> float:
        """When the next run is due, given the last run (None: never ran: due now)."""
        if last is None:
            return now
        if self.interval is not None:
            return last + self.interval
        it = CronSim(self.cron or "", datetime.fromtimestamp(last, UTC))
        return next(it).timestamp()

    def describe(self) -> str:
        return f"every {self.interval:g} s" if self.interval is not None else f"cron {self.cron}"


def parse_schedule(value: object, where: str) -> Schedule:
    if isinstance(value, str) and len(value.split()) == 5:
        try:
            CronSim(value, datetime.now(UTC))
        except CronSimError as e:
            raise ConfigError(f"{where}: bad cron expression {value!r}: {e}") from None
        return Schedule(cron=value)
    try:
        return Schedule(interval=parse_duration(value, where))
    except ConfigError:
        raise ConfigError(f"{where}: {value!r} is neither an interval (\"1h\") nor a 5-field "
                          "cron expression (\"0 3 * * *\")") from None


@dataclass(frozen=True)
class Retention:
    """How many backups to keep, as restic's ``forget`` (0: none by that rule)."""

    keep_last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    def keeps_all(self) -> bool:
        return not any((self.keep_last, self.hourly, self.daily, self.weekly, self.monthly))


@dataclass(frozen=True)
class BackupSpec:
    name: str
    #: the store the backups go to (a provider of [providers], or one of its own)
    settings: ProviderSettings
    #: key prefix inside that store under which every backup object lives ("" or ".../")
    root: str
    schedule: Schedule | None
    retention: Retention
    paths: tuple[str, ...] = ("/",)
    key_file: Path | None = None
    #: the target is one of [providers] (holds live replicas)
    shared: bool = False


@dataclass(frozen=True)
class DrConfig:
    rpo: float | None = None
    rto: float | None = None
    keep_versions_for: float | None = None
    backups: tuple[BackupSpec, ...] = field(default_factory=tuple)
    drill_schedule: Schedule | None = None
    drill_sample: float = 100.0

    def backup(self, name: str | None) -> BackupSpec:
        """The backup named ``name`` (or the first); ConfigError naming the choices."""
        if not self.backups:
            raise ConfigError("no [[dr.backups]] in the config: add one (docs/dr.md)")
        if name is None:
            return self.backups[0]
        for b in self.backups:
            if name in (b.name, b.settings.name):
                return b
        known = ", ".join(b.name for b in self.backups)
        raise ConfigError(f"no [[dr.backups]] named {name!r} (configured: {known})")


def parse_dr(table: object, source: str, base: Path,
             providers: dict[str, ProviderSettings]) -> DrConfig:
    """The ``[dr]`` table; ``providers`` are the parsed [providers] (live replicas)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [dr] must be a table")
    for key in table:
        if key not in _DR_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} in [dr] "
                              f"(known: {', '.join(sorted(_DR_KEYS))})")
    where = f"{source}: [dr]"
    durations = {k: parse_duration(table[k], f"{where} {k}") if k in table else None
                 for k in ("rpo", "rto", "keep_versions_for")}
    raw = table.get("backups", [])
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        raise ConfigError(f"{source}: [[dr.backups]] must be an array of tables")
    backups = tuple(_backup(b, f"{source}: [[dr.backups]] #{i + 1}", base, providers)
                    for i, b in enumerate(raw))
    names = [b.name for b in backups]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"{source}: [[dr.backups]]: two backups named {n!r}; give each "
                              "a name")
    if durations["keep_versions_for"] is not None and not backups:
        raise ConfigError(f"{where} keep_versions_for: needs a [[dr.backups]] target to keep "
                          "the versions on")
    drill = (parse_schedule(table["drill_schedule"], f"{where} drill_schedule")
             if "drill_schedule" in table else None)
    sample = table.get("drill_sample", 100.0)
    if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 100:
        raise ConfigError(f"{where} drill_sample: expected a percentage of the files, more "
                          f"than 0 and at most 100, got {sample!r}")
    return DrConfig(durations["rpo"], durations["rto"], durations["keep_versions_for"], backups,
                    drill, float(sample))


def _backup(t: dict, where: str, base: Path,
            providers: dict[str, ProviderSettings]) -> BackupSpec:
    from omnifs.config import provider_settings, same_place

    target, uri = t.get("target"), t.get("uri")
    if (target is None) == (uri is None):
        raise ConfigError(f"{where}: give either target = \"PROVIDER\" (one of [providers]) or "
                          "uri = \"s3://bucket/prefix\" (a store of its own)")
    prefix = t.get("prefix")
    if prefix is not None and (not isinstance(prefix, str) or not _PREFIX.match(prefix)):
        raise ConfigError(f"{where} prefix: {prefix!r} must be a relative key prefix such as "
                          "\"backups\" (letters, digits, '.', '_', '-', '/')")
    if target is not None:
        unknown = set(t) - _BACKUP_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        if not isinstance(target, str) or target not in providers:
            known = ", ".join(providers) or "none"
            raise ConfigError(f"{where} target: {target!r} is not a provider of [providers] "
                              f"(configured: {known})")
        if prefix is None:
            raise ConfigError(f"{where}: target {target!r} holds live replicas; give it a "
                              "separate prefix = \"backups\" (or use a store of its own: uri)")
        settings, root, shared = providers[target], f"{RESERVED_DR}{prefix}/", True
        name = _name(t.get("name", f"{target}-{prefix.replace('/', '-')}"), where)
    else:
        own = {k: v for k, v in t.items() if k not in _BACKUP_KEYS or k == "uri"}
        name = _name(t.get("name", "backup"), where)
        from omnifs.config import absolute_file_uri

        if isinstance(uri, str):
            own["uri"] = absolute_file_uri(uri, base)
        settings = provider_settings(name, own, where)
        for pname, p in providers.items():
            if same_place(settings, p):
                raise ConfigError(f"{where} uri: {uri} is where [providers.{pname}] keeps live "
                                  f"replicas; use target = \"{pname}\" with a prefix, or "
                                  "another bucket")
        root, shared = f"{prefix}/" if prefix else "", False
    schedule = parse_schedule(t["schedule"], f"{where} schedule") if "schedule" in t else None
    retention = _retention(t, where)
    paths = t.get("paths", ["/"])
    if not isinstance(paths, list) or not paths or not all(
            isinstance(p, str) and p.startswith("/") for p in paths):
        raise ConfigError(f"{where} paths: expected a list of absolute paths such as [\"/\"]")
    key_file = t.get("key_file")
    if key_file is not None:
        if not isinstance(key_file, str):
            raise ConfigError(f"{where} key_file: expected a path")
        key_file = Path(base / Path(key_file).expanduser())
    return BackupSpec(name, settings, root, schedule, retention,
                      tuple(normalize_path(p) for p in paths), key_file, shared)


def _name(name: object, where: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"{where} name: {name!r}: use letters, digits, '-', '_' and '.'")
    return name


def _retention(t: dict, where: str) -> Retention:
    values = {}
    for key in RETENTION_KEYS:
        v = t.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{where} {key}: expected a count of backups (0 or more), "
                              f"got {v!r}")
        values[key] = v
    return Retention(**values)


def normalize_path(path: str) -> str:
    """'/a/b/' -> '/a/b'; '/' stays."""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise ConfigError(f"path {path!r}: '..' is not allowed")
    return "/" + "/".join(parts)
