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
"""

from __future__ import annotations

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


def parse_governance(table: dict, source: str, parse_size) -> GovernanceSettings:
    """``[governance]`` -> settings; a ConfigError names file, section, rule and key."""
    for key in sorted(set(table) - {"rules", "classes", "audit"}):
        raise ConfigError(f"{source}: [governance] {key}: unknown key (known: rules, classes, "
                          "audit)")
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
    return out


def audit_dir(catalog_path: Path) -> Path:
    """The audit log's folder, beside the catalog (the data dir)."""
    return catalog_path.parent / "audit"
