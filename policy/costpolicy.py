"""The ``[cost]`` policies: when a file goes cooler, how long a move may take to pay back.

omnifs.toml's ``[cost]`` table (checked here, wrapped into a ConfigError line by
``omnifs.config``)::

    [cost]
    cool_after_days = 30        # unread for 30 days: a cool tier
    cold_after_days = 90        # unset: no cold step
    archive_after_days = 180    # unset: never archived
    horizon_days = 365          # a move must pay for itself within this
    auto = false                # the daemon applies recommendations on `schedule`
    schedule = "1d"             # 30m, 12h, 1d, 7d or seconds
    allow_archive_only = false  # may every copy of a file be archived?

    [[cost.rules]]              # per-prefix overrides; the first matching rule wins
    paths = ["/backups/**"]
    archive_after_days = 7

A rule may set the ``*_after_days`` keys, ``horizon_days`` and
``allow_archive_only``; the keys it leaves out are the top level's. Globs are
those of the governance rules (policy.placement): ``**`` spans directories.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .placement import path_matches

#: the access classes a policy moves files into, warmest first, and their keys
AFTER_KEYS = (("cool", "cool_after_days"), ("cold", "cold_after_days"),
              ("archive", "archive_after_days"))
RULE_KEYS = {"paths": list, "cool_after_days": int, "cold_after_days": int,
             "archive_after_days": int, "horizon_days": int, "allow_archive_only": bool}
TOP_KEYS = {**{k: v for k, v in RULE_KEYS.items() if k != "paths"},
            "auto": bool, "schedule": (str, int), "rules": list,
            # the mount's access counting, which the policies read (omnifs/config.py)
            "access_stats": bool, "access_stats_interval": (int, float)}

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class PolicyError(ValueError):
    """A mistake in the ``[cost]`` table; ``str()`` is one line naming the key."""


@dataclass(frozen=True)
class TierPolicy:
    """The policy one path is under (the top level with its first matching rule applied)."""

    cool_after_days: int | None = 30
    cold_after_days: int | None = None
    archive_after_days: int | None = 180
    #: a recommendation whose break-even is longer than this is not made
    horizon_days: int = 365
    #: a file may have every copy in a tier that must be restored before a read
    allow_archive_only: bool = False

    @cached_property
    def _steps(self) -> tuple[tuple[int, str], ...]:
        """(days, class), coldest first, of the steps this policy has."""
        return tuple((getattr(self, key), name) for name, key in reversed(AFTER_KEYS)
                     if getattr(self, key) is not None)

    def target_class(self, idle_days: float) -> str:
        """The access class a file idle (unread, unwritten) for ``idle_days`` belongs in."""
        for after, name in self._steps:
            if idle_days >= after:
                return name
        return "hot"


@dataclass(frozen=True)
class CostRule:
    paths: tuple[str, ...]
    policy: TierPolicy


@dataclass(frozen=True)
class CostPolicy:
    default: TierPolicy = field(default_factory=TierPolicy)
    rules: tuple[CostRule, ...] = ()
    #: the daemon applies approved moves by itself every ``schedule_seconds``
    auto: bool = False
    schedule_seconds: int = 86400

    def for_path(self, path: str) -> TierPolicy:
        """The policy of ``path``: the first rule whose globs match it, else the top level."""
        for rule in self.rules:
            for pattern in rule.paths:
                if path_matches(path, pattern):
                    return rule.policy
        return self.default


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else (
        f" (known keys: {', '.join(sorted(known))})")


def _check_types(table: Mapping[str, Any], schema: dict, where: str) -> None:
    names = {list: "a list of globs", int: "a whole number of days", bool: "true or false",
             (str, int): "a duration like \"12h\" or \"1d\""}
    for key, value in table.items():
        if key not in schema:
            raise PolicyError(f"{where}: unknown key {key!r}{_suggest(key, schema)}")
        kind = schema[key]
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise PolicyError(f"{where} {key}: expected {names[kind]}, got {value!r}")
        if kind is int and value < 0:
            raise PolicyError(f"{where} {key}: must not be negative, got {value}")
    if "horizon_days" in table and table["horizon_days"] < 1:
        raise PolicyError(f"{where} horizon_days: must be at least 1 day")


def _checked_order(p: TierPolicy, where: str) -> TierPolicy:
    set_ = [(key, getattr(p, key)) for _, key in AFTER_KEYS if getattr(p, key) is not None]
    for (k1, v1), (k2, v2) in zip(set_, set_[1:], strict=False):
        if v1 > v2:
            raise PolicyError(f"{where} {k1} ({v1}) must not be more than {k2} ({v2}): "
                              "files go cool, then cold, then archive")
    return p


def check_glob(pattern: object, where: str) -> str:
    """A path glob of a rule: absolute, ``*``, ``?`` and ``**`` only."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise PolicyError(f"{where} paths: {pattern!r} is not a path glob; write e.g. "
                          "\"/backups/**\"")
    if "***" in pattern or "//" in pattern or any(c in pattern for c in "[]{}\\"):
        raise PolicyError(f"{where} paths: bad glob {pattern!r}; use *, ? and ** only")
    return pattern


def parse_duration(value: object, where: str) -> int:
    """"30m", "12h", "1d" or a number of seconds -> seconds (at least 60)."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif m:
        seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    else:
        raise PolicyError(f"{where} schedule: {value!r} is not a duration; write e.g. "
                          "\"12h\" or \"1d\"")
    if seconds < 60:
        raise PolicyError(f"{where} schedule: must be at least a minute, got {value!r}")
    return seconds


def _overrides(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k in RULE_KEYS and k != "paths"}


def _inherit(default: TierPolicy, own: dict[str, Any]) -> TierPolicy:
    """``default`` with a rule's keys; an inherited step out of order with them is dropped.

    (``archive_after_days = 7`` under a top-level ``cool_after_days = 30``: no cool step.)
    """
    merged = replace(default, **own)
    keys = [key for _, key in AFTER_KEYS]
    for i, key in enumerate(keys):
        value = getattr(merged, key)
        if key in own or value is None:
            continue
        earlier = [own[k] for k in keys[:i] if k in own]
        later = [own[k] for k in keys[i + 1:] if k in own]
        if (later and value > min(later)) or (earlier and value < max(earlier)):
            dropped: dict[str, Any] = {key: None}
            merged = replace(merged, **dropped)
    return merged


def parse_cost_policy(table: Mapping[str, Any], where: str = "[cost]") -> CostPolicy:
    """Validate a ``[cost]`` table into a :class:`CostPolicy`; PolicyError on a mistake."""
    _check_types(table, TOP_KEYS, where)
    default = _checked_order(replace(TierPolicy(), **_overrides(table)), where)
    rules = []
    raw_rules = table.get("rules", [])
    for i, raw in enumerate(raw_rules, 1):
        rwhere = f"{where} rule {i} ([[cost.rules]])"
        if not isinstance(raw, dict):
            raise PolicyError(f"{rwhere}: must be a table")
        _check_types(raw, RULE_KEYS, rwhere)
        if not raw.get("paths"):
            raise PolicyError(f"{rwhere}: missing key 'paths' (a list of globs)")
        paths = tuple(check_glob(p, rwhere) for p in raw["paths"])
        policy = _checked_order(_inherit(default, _overrides(raw)), rwhere)
        rules.append(CostRule(paths, policy))
    schedule = parse_duration(table.get("schedule", 86400), where)
    return CostPolicy(default=default, rules=tuple(rules), auto=table.get("auto", False),
                      schedule_seconds=schedule)
