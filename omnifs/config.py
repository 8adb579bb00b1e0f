"""omnifs.toml: load, validate, and explain mistakes in one line each.

Validation is hand-written against a small schema table because every
message must name the file, the table and the key, and say how to fix it;
generic validators produce paragraphs.

Relative paths (``[catalog] url``, ``[cache] dir``, ``file://`` URIs) are
relative to the config file's directory, so a mount started from any
directory finds the same data; ``~`` is the user's home.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from omnifs.policy.costpolicy import CostPolicy, PolicyError, parse_cost_policy
from omnifs.providers import InvalidInput, ProviderSettings, encryption, parse_uri
from omnifs.providers.capabilities import check_disable
from omnifs.providers.diskspace import DEFAULT_FREE_SPACE_RATIO
from omnifs.providers.registry import provider_options

from .dr.config import DrConfig, parse_dr
from .errors import ConfigError
from .governance_config import GovernanceSettings, parse_governance
from .metrics_config import MetricsSettings, parse_metrics
from .prices import PriceOverride, parse_price_overrides

DEFAULT_PATHS = (
    Path("omnifs.toml"),
    Path.home() / ".config" / "omnifs" / "omnifs.toml",
    Path("/etc/omnifs/omnifs.toml"),
)

#: provider-table keys holding secrets: a file with any of them must be mode 0600
SECRET_KEYS = ("secret_key", "connection_string", "account_key", "sas_token")

PROVIDER_KEYS = {
    "uri": str, "endpoint": str, "region": str, "access_key": str, "secret_key": str,
    "connection_string": str, "account_url": str, "account_key": str, "sas_token": str,
    "credentials_file": str, "project": str, "timeout": (int, float),
    # placement and cost weights (policy/)
    "weight": (int, float), "cost_per_gb": (int, float), "tier": str,
    # governance (docs/governance.md): the store's server-side encryption setting
    "encryption": str,
    # abilities omnifs must not use on this store (docs/compat.md): their fallbacks apply
    "disable": list,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4,
          "tb": 1000**4, "tib": 1024**4, "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


def parse_size(value: int | str, what: str) -> int:
    """'20GiB' -> bytes; ints are bytes. Raises ConfigError naming ``what``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a size like \"20GiB\", got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{what}: size must not be negative")
        return value
    m = _SIZE.match(str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{what}: {value!r} is not a size; write e.g. \"512MiB\" or \"20GiB\"")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def free_space_ratio(value, what: str) -> float:
    """A share of a disk to keep free: a number from 0 (none) to 0.9."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 0.9:
        raise ConfigError(f"{what}: expected a share of the disk to keep free from 0 to 0.9 "
                          f"(0.1 keeps 10 % free), got {value!r}")
    return float(value)


@dataclass
class Config:
    path: Path | None = None
    catalog_url: str = "sqlite:///./.omnifs-data/catalog.db"
    cache_dir: Path = Path(".omnifs-data/cache")
    cache_size: int = 2 * 1024**3
    cache_block_size: int = 4 * 1024**2
    cache_readahead: int = 8
    #: writes get ENOSPC and the cache evicts before a disk's free space drops under this
    #: share of it (the cache's disk and file:// stores' disks)
    free_space_ratio: float = DEFAULT_FREE_SPACE_RATIO
    copies: int = 2
    write_quorum: int = 1
    conflict: str = "newest"
    #: in config order, which is also the default placement order
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    #: raw provider tables, for policy weights (cost_per_gb, weight, tier)
    provider_tables: dict[str, dict] = field(default_factory=dict)
    allow_other: bool = False
    #: close() returns once the file is staged locally; uploads follow (fsync still waits)
    writeback: bool = False
    governance_rules: list[dict] = field(default_factory=list)
    #: [governance]: the compiled rules and the audit log's settings (docs/governance.md)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    daemon: dict = field(default_factory=dict)
    metrics_port: int = 9469
    #: [metrics] and [alerts]: instrumentation, the mount's port, thresholds (docs/metrics.md)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    #: [prices.NAME]: price-table choices and negotiated or own-store rates per provider
    prices: dict[str, PriceOverride] = field(default_factory=dict)
    #: [cost]: tier policies, break-even horizon, automatic moves (docs/config.md)
    cost: CostPolicy = field(default_factory=CostPolicy)
    #: [cost] access_stats: the mount counts reads and writes per file (omnifs/access_log.py)
    access_stats: bool = True
    #: [cost] access_stats_interval: seconds between flushes of those counts to the catalog
    access_stats_interval: float = 10.0
    #: [dr] and [[dr.backups]]: backups, restores, drills (omnifs/dr/config.py)
    dr: DrConfig = field(default_factory=lambda: DrConfig())

    def catalog_path(self) -> Path:
        """The SQLite file behind ``catalog_url``; commands that work on the file refuse
        a PostgreSQL catalog here (:meth:`catalog_target` opens either)."""
        if not self.catalog_url.startswith("sqlite:///"):
            from omnifs.catalog.backend import redact
            raise ConfigError("this command needs a SQLite catalog (sqlite:///PATH); "
                              f"[catalog] url is {redact(self.catalog_url)}")
        return Path(self.catalog_url[len("sqlite:///"):])

    def catalog_target(self) -> str | Path:
        """What ``Catalog()`` opens: the SQLite file, or the ``postgresql://`` URL."""
        return self.catalog_url if self.catalog_url.startswith("postgres") else self.catalog_path()

    def catalog_file(self) -> Path:
        """The path files kept beside the catalog are named after (audit log, keys, spares):
        the SQLite file, or ``catalog.postgresql`` in the data directory (the parent of
        ``[cache] dir``) for a PostgreSQL catalog."""
        if self.catalog_url.startswith("postgres"):
            return self.cache_dir.parent / "catalog.postgresql"
        return self.catalog_path()


_SECTIONS = {
    "catalog": {"url": str},
    "cache": {"dir": str, "size": (str, int), "block_size": (str, int), "readahead": int,
              "free_space_ratio": (int, float)},
    "replication": {"copies": int, "write_quorum": int, "conflict": str},
    "mount": {"allow_other": bool, "writeback": bool},
    "providers": dict,
    "governance": dict,
    "daemon": dict,
    "metrics": dict,
    "alerts": dict,
    "prices": dict,
    "cost": dict,
    "dr": dict,
}


def _check_type(value, types, where: str) -> None:
    if types is object:  # a provider-specific option: the provider checks it
        return
    if isinstance(value, bool) and types is not bool and bool not in (
            types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"{where}: expected {_type_name(types)}, got {value!r}")
    if not isinstance(value, types):
        raise ConfigError(f"{where}: expected {_type_name(types)}, "
                          f"got {type(value).__name__} {value!r}")


def _type_name(types) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
             dict: "a table", list: "a list"}
    if isinstance(types, tuple):
        return " or ".join(names.get(t, t.__name__) for t in types)
    return names.get(types, types.__name__)


def _suggest(key: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known keys: {', '.join(sorted(known))})"


def find_config(path: str | os.PathLike | None) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get("OMNIFS_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return None


def load_config(path: str | os.PathLike | None = None, *, required: bool = True) -> Config:
    """Read and validate. ``path`` None searches $OMNIFS_CONFIG then DEFAULT_PATHS."""
    found = find_config(path)
    if found is None:
        if required:
            raise ConfigError("no omnifs.toml found: run `omnifs init` or pass --config PATH")
        return Config()
    try:
        raw = found.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{found}: no such config file; "
                          f"create one with `omnifs init --config {found}`") from None
    except OSError as e:
        raise ConfigError(f"{found}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{found}: not valid TOML: {e}") from None
    _refuse_exposed_secrets(found, data)
    cfg = parse_config(data, source=str(found), base=found.absolute().parent)
    cfg.path = found
    _refuse_missing_stores(cfg, str(found))
    return cfg


def _refuse_missing_stores(cfg: Config, source: str) -> None:
    """A ``file://`` store must exist: a mistyped directory would otherwise look healthy."""
    for name, settings in cfg.providers.items():
        loc = parse_uri(settings.uri)
        if loc.scheme == "file" and not os.path.isdir(loc.path):
            what = "is not a directory" if os.path.exists(loc.path) else "does not exist"
            raise ConfigError(f"{source}: [providers.{name}] uri: {loc.path} {what}; create it "
                              f"(mkdir -p {loc.path}) or correct the uri")


def _refuse_exposed_secrets(path: Path, data: dict) -> None:
    secrets = [f"providers.{n}.{k}" for n, t in data.get("providers", {}).items()
               if isinstance(t, dict) for k in SECRET_KEYS if k in t]
    if not secrets:
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: holds secrets ({secrets[0]}) but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}` or move the secret to the environment")


def parse_config(data: dict, source: str = "config", base: Path | None = None) -> Config:
    """Validate ``data``; relative paths are taken relative to ``base`` (default: cwd)."""
    base = base or Path.cwd()
    cfg = Config()
    for section, value in data.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}]{_suggest(section, _SECTIONS)}")
        schema = _SECTIONS[section]
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        if isinstance(schema, dict):
            for key, v in value.items():
                if key not in schema:
                    raise ConfigError(
                        f"{source}: unknown key {key!r} in [{section}]{_suggest(key, schema)}")
                _check_type(v, schema[key], f"{source}: [{section}] {key}")

    cat = data.get("catalog", {})
    if "url" in cat:
        cfg.catalog_url = cat["url"]
        if not cfg.catalog_url.startswith(("sqlite:///", "postgresql://")):
            raise ConfigError(f"{source}: [catalog] url must be sqlite:///PATH or "
                              f"postgresql://..., got {cfg.catalog_url!r}")
    if cfg.catalog_url.startswith("sqlite:///"):
        cfg.catalog_url = "sqlite:///" + str(_local_path(cfg.catalog_url[len("sqlite:///"):], base))
    cache = data.get("cache", {})
    cfg.cache_dir = _local_path(cache.get("dir", cfg.cache_dir), base)
    if "size" in cache:
        cfg.cache_size = parse_size(cache["size"], f"{source}: [cache] size")
    if "block_size" in cache:
        cfg.cache_block_size = parse_size(cache["block_size"], f"{source}: [cache] block_size")
        if not 64 * 1024 <= cfg.cache_block_size <= 64 * 1024**2:
            raise ConfigError(f"{source}: [cache] block_size must be between 64KiB and 64MiB")
    if "readahead" in cache:
        cfg.cache_readahead = cache["readahead"]
        if cfg.cache_readahead < 0:
            raise ConfigError(f"{source}: [cache] readahead must be >= 0 (blocks)")
    if "free_space_ratio" in cache:
        cfg.free_space_ratio = free_space_ratio(cache["free_space_ratio"],
                                                f"{source}: [cache] free_space_ratio")

    rep = data.get("replication", {})
    cfg.copies = rep.get("copies", cfg.copies)
    cfg.write_quorum = rep.get("write_quorum", cfg.write_quorum)
    cfg.conflict = rep.get("conflict", cfg.conflict)
    if cfg.copies < 1:
        raise ConfigError(f"{source}: [replication] copies must be at least 1")
    if not 1 <= cfg.write_quorum <= cfg.copies:
        raise ConfigError(f"{source}: [replication] write_quorum must be between 1 and "
                          f"copies ({cfg.copies})")
    if cfg.conflict not in ("newest", "primary", "keep-both"):
        raise ConfigError(
            f"{source}: [replication] conflict must be \"newest\", \"primary\" or \"keep-both\"")

    cfg.allow_other = data.get("mount", {}).get("allow_other", False)
    cfg.writeback = data.get("mount", {}).get("writeback", False)
    cfg.metrics = parse_metrics(data.get("metrics", {}), data.get("alerts", {}), source)
    cfg.metrics_port = cfg.metrics.port
    _parse_access_stats(cfg, data.get("cost", {}), source)
    cfg.daemon = dict(data.get("daemon", {}))
    cfg.governance = parse_governance(data.get("governance", {}), source, parse_size,
                                      data.get("providers", {}))
    cfg.governance_rules = data.get("governance", {}).get("rules", [])

    for name, table in data.get("providers", {}).items():
        where = f"{source}: [providers.{name}]"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"{where}: provider names may hold letters, digits, '-', '_' and '.'")
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        if isinstance(table.get("uri"), str):
            table = {**table, "uri": absolute_file_uri(table["uri"], base)}
        cfg.providers[name] = provider_settings(name, table, where)
        cfg.provider_tables[name] = dict(table)
        if parse_uri(table["uri"]).scheme == "file":  # a local disk: the same reserve
            extra = cfg.providers[name].extra
            extra["free_space_ratio"] = free_space_ratio(
                extra.get("free_space_ratio", cfg.free_space_ratio), f"{where} free_space_ratio")
    _refuse_shared_places(cfg, source)
    cfg.prices = parse_price_overrides(
        data.get("prices", {}), source,
        {n: parse_uri(s.uri).scheme for n, s in cfg.providers.items()})
    try:
        cfg.cost = parse_cost_policy(data.get("cost", {}))
    except PolicyError as e:
        raise ConfigError(f"{source}: {e}") from None
    if "copies" not in rep and cfg.providers:
        cfg.copies = min(cfg.copies, len(cfg.providers))
        cfg.write_quorum = min(cfg.write_quorum, cfg.copies)
    cfg.dr = parse_dr(data.get("dr", {}), source, base, cfg.providers)
    if cfg.metrics.alerts.recovery_point is None:  # [dr] rpo is an alert threshold too
        cfg.metrics.alerts.recovery_point = cfg.dr.rpo
    if cfg.copies > len(cfg.providers) and cfg.providers:
        raise ConfigError(f"{source}: [replication] copies = {cfg.copies} but only "
                          f"{len(cfg.providers)} provider(s) are configured")
    return cfg


def _parse_access_stats(cfg: Config, cost: dict, source: str) -> None:
    cfg.access_stats = cost.get("access_stats", cfg.access_stats)
    interval = cost.get("access_stats_interval", cfg.access_stats_interval)
    if not 0 < interval <= 3600:
        raise ConfigError(f"{source}: [cost] access_stats_interval must be between 0 and 3600 "
                          f"seconds, got {interval!r}")
    cfg.access_stats_interval = float(interval)


def _local_path(text: str | os.PathLike, base: Path) -> Path:
    """``text`` as an absolute path: ``~`` expanded, relative ones under ``base``."""
    return Path(os.path.normpath(base / Path(text).expanduser()))


def file_uri(path: str | os.PathLike) -> str:
    """``file://`` URI of an absolute path; only what URI parsing would eat is escaped."""
    text = str(path).replace("%", "%25").replace("#", "%23").replace("?", "%3F")
    return "file://" + text


def absolute_file_uri(uri: str, base: Path) -> str:
    """``file://store`` or ``file://./store`` (relative to ``base``) -> ``file:///abs/store``.

    Other URIs, ``file:///abs`` and ``file://localhost/abs`` are returned as they are.
    """
    if not uri.lower().startswith("file://"):
        return uri
    rest = uri[len("file://"):]
    if rest.startswith("/") or rest.lower().startswith("localhost/") or not rest:
        return uri
    return file_uri(_local_path(rest, base))


def _place(settings: ProviderSettings) -> tuple[tuple, tuple[str, ...]]:
    """(the store service and bucket, the key prefix as parts): where a provider's objects are.

    Two providers whose services match and whose prefixes nest share objects:
    ``copies = 2`` on them is one copy. ``file://`` paths are compared after
    resolving symlinks. S3 and MinIO are one service when their endpoints are.
    """
    loc = parse_uri(settings.uri)
    if loc.scheme == "file":
        return ("file",), _parts(loc.path)
    if loc.scheme == "az":
        service = _azure_account(settings)
    else:
        family = "s3" if loc.scheme in ("s3", "minio") else loc.scheme
        endpoint = _endpoint(settings.endpoint) if settings.endpoint else f"default {loc.scheme}"
        service = (family, endpoint)
    return (*service, loc.bucket), tuple(p for p in loc.path.split("/") if p)


def same_place(a: ProviderSettings, b: ProviderSettings) -> bool:
    """The two stores' objects overlap (one's place is the other's or nested in it)."""
    service, parts = _place(a)
    other_service, other_parts = _place(b)
    return service == other_service and _nested(parts, other_parts)


def _endpoint(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _azure_account(settings: ProviderSettings) -> tuple[str, str]:
    if settings.account_url:
        return "az", _endpoint(settings.account_url)
    fields = dict(part.split("=", 1) for part in (settings.connection_string or "").split(";")
                  if "=" in part)
    if "BlobEndpoint" in fields:
        return "az", _endpoint(fields["BlobEndpoint"])
    if "AccountName" in fields:
        return "az", fields["AccountName"].lower()
    return "az", "default"


def _refuse_shared_places(cfg: Config, source: str) -> None:
    """Two providers over one place, or a ``file://`` store holding the cache or catalog."""
    seen: list[tuple[str, tuple, tuple[str, ...]]] = []
    for name, settings in cfg.providers.items():
        service, parts = _place(settings)
        for other, other_service, other_parts in seen:
            if service == other_service and _nested(parts, other_parts):
                how = "the same place" if parts == other_parts else "nested"
                raise ConfigError(
                    f"{source}: [providers.{name}] and [providers.{other}] are {how} "
                    f"({settings.uri} and {cfg.providers[other].uri}): copies on both would be "
                    "one copy; give each provider its own bucket, prefix or directory")
        seen.append((name, service, parts))
        if service == ("file",):
            _refuse_store_over_own_files(cfg, name, parts, source)


def _refuse_store_over_own_files(cfg: Config, name: str, parts: tuple[str, ...],
                                 source: str) -> None:
    """The cache and a store inside each other, or the catalog in a store: its files are not data.

    A store would list them as objects (and ``omnifs import`` would import
    them); the cache's own cleanup would delete a store's objects.
    """
    cache = _parts(cfg.cache_dir)
    catalog = _catalog_file(cfg)
    for what, path, clash in (
            ("the [cache] dir", cfg.cache_dir, _nested(cache, parts)),
            ("the catalog", catalog,
             catalog is not None and _parts(catalog)[:len(parts)] == parts)):
        if clash:
            raise ConfigError(f"{source}: [providers.{name}] uri and {what} ({path}) share a "
                              "directory; give the store a directory of its own")


def _parts(path: str | os.PathLike) -> tuple[str, ...]:
    return tuple(p for p in os.path.realpath(path).split("/") if p)


def _catalog_file(cfg: Config) -> Path | None:
    return cfg.catalog_path() if cfg.catalog_url.startswith("sqlite:///") else None


def _nested(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One prefix (as parts) is the other or lies inside it."""
    return a[:len(b)] == b or b[:len(a)] == a


def provider_settings(name: str, table: dict, where: str) -> ProviderSettings:
    if "uri" not in table:
        raise ConfigError(f"{where}: missing uri, e.g. uri = \"s3://my-bucket/prefix\"")
    if not isinstance(table["uri"], str):
        raise ConfigError(f"{where} uri: expected a string like \"s3://my-bucket/prefix\"")
    try:
        loc = parse_uri(table["uri"])
        options = provider_options(loc.scheme)
    except InvalidInput as e:
        raise ConfigError(f"{where} uri: {e}") from None
    # each scheme has extra keys its provider understands (providers/registry.py)
    allowed = {**PROVIDER_KEYS, **{k: object for k in options if k not in PROVIDER_KEYS}}
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} for a {loc.scheme}:// provider"
                              f"{_suggest(key, allowed)}")
        _check_type(value, allowed[key], f"{where} {key}")
    if "encryption" in table:
        try:
            encryption.parse(loc.scheme, table["encryption"])
        except ValueError as e:
            raise ConfigError(f"{where} encryption: {e}") from None
    if "disable" in table:
        try:
            check_disable(table["disable"])
        except ValueError as e:
            raise ConfigError(f"{where} disable: {e}") from None
    cred = table.get("credentials_file")
    if cred is not None:
        try:
            with open(os.path.expanduser(cred), "rb"):
                pass
        except OSError as e:
            raise ConfigError(
                f"{where} credentials_file {cred!r}: cannot read: {e.strerror}") from None
    timeout = table.get("timeout", 10.0)
    if timeout <= 0:
        raise ConfigError(f"{where} timeout must be a positive number of seconds")
    known = {"uri", "endpoint", "region", "access_key", "secret_key", "connection_string",
             "account_url", "credentials_file", "timeout"}
    return ProviderSettings(
        name=name, uri=table["uri"], endpoint=table.get("endpoint"), region=table.get("region"),
        access_key=table.get("access_key"), secret_key=table.get("secret_key"),
        connection_string=table.get("connection_string"), account_url=table.get("account_url"),
        credentials_file=table.get("credentials_file"), timeout=float(timeout),
        extra={k: v for k, v in table.items() if k not in known},
    )


def default_config_text(data_dir: Path) -> str:
    """The commented default ``omnifs init`` writes: works with no cloud account."""
    d = data_dir.resolve()
    return f'''# omnifs configuration. Every key is documented in docs/config.md.
# This default needs no cloud account: two local directories stand in for two
# clouds. Add [providers.NAME] tables with s3://, gs://, az:// or minio:// URIs
# to span real stores.

[catalog]
# Where the namespace and the replica map live (SQLite in WAL mode).
url = "sqlite:///{d}/catalog.db"

[cache]
# Staging files for writes and the bounded read cache; size bounds both.
dir = "{d}/cache"
size = "2GiB"
# Writes get ENOSPC and the cache evicts before a disk omnifs writes data to
# (this cache's, each file:// store's) has less than this share of it free.
free_space_ratio = 0.1

[replication]
# How many providers hold every file, and how many must have it before
# close()/fsync() returns; the daemon makes the rest.
copies = 2
write_quorum = 1
# When a store's object was changed behind omnifs's back: "newest", "primary"
# (the first provider below wins) or "keep-both".
conflict = "newest"

[mount]
# Let other users into the mount (needs user_allow_other in /etc/fuse.conf).
allow_other = false
# false: close() returns only once write_quorum stores hold the file.
# true: close() returns once the file is staged on local disk and the upload
# follows within seconds (fsync still waits); faster for many small files, but
# losing this disk before the upload loses those files.
writeback = false

[providers.local-a]
uri = "{file_uri(d / "store-a")}"

[providers.local-b]
uri = "{file_uri(d / "store-b")}"

# [providers.aws-east]
# uri = "s3://my-bucket/data"
# region = "us-east-1"          # credentials: AWS_* environment or ~/.aws
#
# [providers.gcp-eu]
# uri = "gs://my-bucket/data"
# credentials_file = "~/.config/gcloud/sa.json"
#
# [providers.azure-west]
# uri = "az://my-container/data"  # credentials: AZURE_STORAGE_CONNECTION_STRING

# [[governance.rules]]
# paths = ["/eu/**"]
# regions = ["eu*", "europe*"]
'''
