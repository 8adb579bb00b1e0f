"""The ``[governance]`` section: rules, classes and the audit log's settings.

``[[governance.rules]]`` and ``[[governance.classes]]`` are validated by the
pure engine (``omnifs.policy.governance``), which names each bad rule's index
and key; this module adds the file and section, and reads
``[governance.audit]``::

    [governance.audit]
    enabled = true             # default: on when there is any rule
    flush_interval = 0.5       # seconds between batched, fsynced appends
    rotate_size = "64MiB"      # a log file is rotated past this size
    checkpoint_interval = 300  # seconds between signed checkpoints to every store

and ``bucket_retention``: the GCS stores whose whole bucket ``omnifs gov apply``
may put under a retention policy (docs/governance.md)::

    [governance]
    bucket_retention = ["archive"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.policy.governance import Governance, RuleError, parse

from .errors import ConfigError

_AUDIT_KEYS = {"enabled", "flush_interval", "rotate_size", "checkpoint_interval"}


@dataclass
class GovernanceSettings:
    engine: Governance = field(default_factory=Governance)
    audit: bool = False
    flush_interval: float = 0.5
    rotate_size: int = 64 * 1024**2
    checkpoint_interval: float = 300.0
    #: GCS stores whose bucket `gov apply` may give a retention policy
    bucket_retention: tuple[str, ...] = ()


_KEYS = ("audit", "bucket_retention", "classes", "rules")


def parse_governance(table: dict, source: str, parse_size,
                     providers: Mapping[str, object] | None = None) -> GovernanceSettings:
    """``[governance]`` -> settings; a ConfigError names file, section, rule and key.
    ``providers``: the ``[providers]`` tables (bucket_retention names GCS ones)."""
    for key in sorted(set(table) - set(_KEYS)):
        raise ConfigError(f"{source}: [governance] {key}: unknown key (known: "
                          f"{', '.join(_KEYS)})")
    rules, classes = table.get("rules", []), table.get("classes", [])
    for key, value in (("rules", rules), ("classes", classes)):
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise ConfigError(f"{source}: [[governance.{key}]] must be an array of tables")
    try:
        engine = parse(rules, classes)
    except RuleError as e:
        raise ConfigError("\n".join(f"{source}: [[governance.rules]] {p}"
                                    if p.startswith("rule") else
                                    f"{source}: [[governance.classes]] {p}"
                                    for p in e.problems)) from None
    audit = table.get("audit", {})
    where = f"{source}: [governance.audit]"
    if not isinstance(audit, dict):
        raise ConfigError(f"{where} must be a table")
    for key in sorted(set(audit) - _AUDIT_KEYS):
        raise ConfigError(f"{where} {key}: unknown key (known: {', '.join(sorted(_AUDIT_KEYS))})")
    out = GovernanceSettings(engine=engine, audit=bool(engine.rules))
    enabled = audit.get("enabled", out.audit)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled: expected true or false, got {enabled!r}")
    out.audit = enabled
    for key in ("flush_interval", "checkpoint_interval"):
        value = audit.get(key, getattr(out, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where} {key}: expected a number of seconds > 0, got {value!r}")
        setattr(out, key, float(value))
    if "rotate_size" in audit:
        out.rotate_size = parse_size(audit["rotate_size"], f"{where} rotate_size")
    out.bucket_retention = _gcs_stores(table.get("bucket_retention", []), providers or {},
                                       f"{source}: [governance] bucket_retention")
    return out


def _gcs_stores(value: object, providers: Mapping[str, object], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of store names, got {value!r}")
    for name in value:
        table = providers.get(name)
        uri = table.get("uri", "") if isinstance(table, Mapping) else ""
        if table is None or not str(uri).startswith("gs://"):
            raise ConfigError(f"{where}: {name!r} is not a gs:// store in [providers] (a "
                              "bucket retention policy is GCS's)")
    return tuple(value)


def audit_dir(catalog_path: Path) -> Path:
    """The audit log's folder, beside the catalog (the data dir)."""
    return catalog_path.parent / "audit"
