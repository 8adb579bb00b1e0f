"""The governance rule engine: pure decisions over ``[[governance.rules]]``, no I/O.

A rule selects files by ``paths`` (globs, as in placement: ``**`` spans
directories) and/or ``classification`` (a class given by a
``[[governance.classes]]`` path rule or by the file's ``user.omnifs.class``
xattr; the xattr wins). When both are given a file must match both. A rule
then says any of:

* residency: ``regions`` / ``deny_regions`` (region globs), ``providers`` /
  ``deny_providers`` (store names);
* ``retention`` (``"7y"``, ``"30d"``, ``"12h"``, ``"5s"``) or ``retention_days``:
  no overwrite, truncate, delete, rename, xattr or mode change before that long
  after the file's creation (WORM; its birth time, which no later change moves:
  a chmod, rename or link once retention ended does not start it again);
* ``legal_hold = true``: the same changes refused until the rule is removed;
* ``min_copies`` and ``distinct_regions``: how many stores, in how many regions;
* ``encryption = true``: only stores with server-side encryption settings.

:func:`parse` validates tables (one line per problem, naming the rule's index
and key) and builds a :class:`Governance`, which compiles every glob once;
:meth:`Governance.check_change` is what the mount asks on each change.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .placement import _glob_regex

#: the changes a WORM or legal-hold rule refuses on a file
PROTECTED_OPS = frozenset({"write", "truncate", "delete", "rename", "setxattr", "chmod"})
#: the xattr a file's classification is read from
CLASS_XATTR = b"user.omnifs.class"

_LIST_KEYS = ("paths", "regions", "deny_regions", "providers", "deny_providers")
_KEYS = frozenset(_LIST_KEYS) | {"name", "classification", "retention", "retention_days",
                                 "legal_hold", "min_copies", "distinct_regions", "encryption"}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdy])\s*\Z")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


class RuleError(ValueError):
    """Invalid governance tables: ``problems`` holds one line each."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class GovRule:
    index: int
    name: str = ""
    paths: tuple[str, ...] = ()
    classification: str | None = None
    regions: tuple[str, ...] = ()
    deny_regions: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    deny_providers: tuple[str, ...] = ()
    #: seconds after its creation during which a file is WORM
    retention_s: float | None = None
    legal_hold: bool = False
    min_copies: int = 0
    distinct_regions: int = 0
    encryption: bool = False

    @property
    def label(self) -> str:
        return self.name or f"rule {self.index}"

    @property
    def protects(self) -> bool:
        return self.legal_hold or bool(self.retention_s)

    def retained_until(self, born_ns: int) -> float | None:
        """Epoch seconds a file created at ``born_ns`` stays WORM under this rule (None:
        no retention)."""
        return None if not self.retention_s else born_ns / 1e9 + self.retention_s

    @property
    def residency(self) -> bool:
        return bool(self.regions or self.deny_regions or self.providers or self.deny_providers)


@dataclass(frozen=True)
class ClassRule:
    paths: tuple[str, ...]
    cls: str


@dataclass(frozen=True)
class Denial:
    """A refused change: the rule, and why in one phrase."""

    rule: GovRule
    reason: str


@dataclass(frozen=True)
class StoreView:
    """What the engine knows of a store: name, region, whether it encrypts at rest."""

    name: str
    region: str | None = None
    encrypted: bool = False


@dataclass(frozen=True)
class Violation:
    rule: GovRule
    kind: str  # "region", "provider", "copies", "regions", "encryption"
    store: str | None
    detail: str


def parse_duration(value: object) -> float:
    """``"7y"``, ``"30d"``, ``"12h"``, ``"10m"``, ``"5s"`` -> seconds (a year is 365 days)."""
    if isinstance(value, str):
        m = _DURATION.match(value.lower())
        if m:
            return float(m.group(1)) * _SECONDS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; write e.g. \"7y\", \"30d\" or \"12h\"")


def _strings(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> tuple:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}: {key}: expected a list of non-empty strings, got {value!r}")
        return ()
    return tuple(value)


def _count(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> int:
    value = table.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: {key}: expected a whole number >= 0, got {value!r}")
        return 0
    return value


def _flag(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        problems.append(f"{where}: {key}: expected true or false, got {value!r}")
        return False
    return value


def _retention(table: Mapping[str, Any], where: str, problems: list[str]) -> float | None:
    if "retention" in table and "retention_days" in table:
        problems.append(f"{where}: retention: give retention or retention_days, not both")
        return None
    if "retention_days" in table:
        days = table["retention_days"]
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
            problems.append(f"{where}: retention_days: expected a number of days > 0, "
                            f"got {days!r}")
            return None
        return float(days) * 86400
    if "retention" in table:
        try:
            seconds = parse_duration(table["retention"])
        except ValueError as e:
            problems.append(f"{where}: retention: {e}")
            return None
        if seconds <= 0:
            problems.append(f"{where}: retention: must be longer than 0")
            return None
        return seconds
    return None


def parse_rule(table: Mapping[str, Any], index: int, problems: list[str]) -> GovRule | None:
    """One ``[[governance.rules]]`` table (``index`` from 1) -> a rule; problems appended."""
    where = f"rule {index}"
    if not isinstance(table, Mapping):
        problems.append(f"{where}: expected a table")
        return None
    before = len(problems)
    for key in sorted(set(table) - _KEYS):
        problems.append(f"{where}: {key}: unknown key (known: {', '.join(sorted(_KEYS))})")
    name = table.get("name", "")
    if not isinstance(name, str):
        problems.append(f"{where}: name: expected a string, got {name!r}")
        name = ""
    cls = table.get("classification")
    if cls is not None and not (isinstance(cls, str) and cls):
        problems.append(f"{where}: classification: expected a non-empty string, got {cls!r}")
        cls = None
    lists = {k: _strings(table, k, where, problems) for k in _LIST_KEYS}
    for key in lists["paths"]:
        if not key.startswith("/"):
            problems.append(f"{where}: paths: {key!r} must start with '/'")
    rule = GovRule(index=index, name=name, classification=cls, **lists,
                   retention_s=_retention(table, where, problems),
                   legal_hold=_flag(table, "legal_hold", where, problems),
                   min_copies=_count(table, "min_copies", where, problems),
                   distinct_regions=_count(table, "distinct_regions", where, problems),
                   encryption=_flag(table, "encryption", where, problems))
    if len(problems) > before:
        return None
    if not rule.paths and rule.classification is None:
        problems.append(f"{where}: paths: give paths and/or classification")
        return None
    if not (rule.residency or rule.protects or rule.min_copies or rule.distinct_regions
            or rule.encryption):
        problems.append(f"{where}: a rule needs one of regions, deny_regions, providers, "
                        "deny_providers, retention, legal_hold, min_copies, distinct_regions, "
                        "encryption")
        return None
    return rule


def parse_classes(raw: Iterable[Any], problems: list[str]) -> list[ClassRule]:
    out = []
    for i, table in enumerate(raw, 1):
        where = f"class {i}"
        if not isinstance(table, Mapping):
            problems.append(f"{where}: expected a table")
            continue
        for key in sorted(set(table) - {"paths", "class"}):
            problems.append(f"{where}: {key}: unknown key (known: class, paths)")
        paths = _strings(table, "paths", where, problems)
        cls = table.get("class")
        if not isinstance(cls, str) or not cls:
            problems.append(f"{where}: class: expected a non-empty string, got {cls!r}")
            continue
        if not paths:
            problems.append(f"{where}: paths: give at least one glob")
            continue
        out.append(ClassRule(paths, cls))
    return out


def parse(rules: Iterable[Any] = (), classes: Iterable[Any] = ()) -> Governance:
    """Tables -> a compiled :class:`Governance`; :class:`RuleError` lists every problem."""
    problems: list[str] = []
    parsed = [parse_rule(t, i, problems) for i, t in enumerate(rules, 1)]
    class_rules = parse_classes(classes, problems)
    if problems:
        raise RuleError(problems)
    return Governance([r for r in parsed if r is not None], class_rules)


def _any_regex(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [_glob_regex(p).pattern for p in dict.fromkeys(patterns)]
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


def _norm(path: str) -> str:
    return "/" + path.strip("/")


@dataclass
class Governance:
    """The compiled rules; every glob is compiled once, here."""

    rules: list[GovRule] = field(default_factory=list)
    classes: list[ClassRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._paths = [(r, _any_regex(r.paths)) for r in self.rules]
        self._classes = [(c, _any_regex(c.paths)) for c in self.classes]
        protecting = [r for r in self.rules if r.protects]
        #: whether any rule refuses changes at all (the mount's fast path)
        self.protects = bool(protecting)
        #: whether a file's class may matter to a protecting rule (then the xattr is read)
        self.class_protects = any(r.classification for r in protecting)
        #: one regex over every path-only protecting rule: most changes match none
        self._protect_any = _any_regex(p for r in protecting if r.classification is None
                                       for p in r.paths)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def class_of(self, path: str, xattr: bytes | str | None = None) -> str | None:
        """The file's classification: its xattr, else the first class rule matching."""
        if xattr:
            return xattr.decode(errors="replace") if isinstance(xattr, bytes) else xattr
        norm = _norm(path)
        for c, rx in self._classes:
            if rx is not None and rx.match(norm):
                return c.cls
        return None

    def _applies(self, rule: GovRule, rx: re.Pattern[str] | None, norm: str,
                 cls: str | None) -> bool:
        if rule.paths and (rx is None or not rx.match(norm)):
            return False
        return rule.classification is None or rule.classification == cls

    def rules_for(self, path: str, cls: str | None = None) -> list[GovRule]:
        norm = _norm(path)
        return [r for r, rx in self._paths if self._applies(r, rx, norm, cls)]

    def may_protect(self, path: str) -> bool:
        """Cheap pre-check: could a protecting rule cover ``path`` (before reading classes)?"""
        if self.class_protects:
            return True
        return self._protect_any is not None and self._protect_any.match(_norm(path)) is not None

    def check_change(self, op: str, path: str, *, born_ns: int, now: float,
                     cls: str | None = None) -> Denial | None:
        """Whether ``op`` (one of PROTECTED_OPS) may change the file at ``path``.

        ``born_ns`` is the file's creation time (retention runs from it, whatever
        changed since); ``now`` is epoch seconds (injectable for tests).
        """
        if op not in PROTECTED_OPS or not self.may_protect(path):
            return None
        norm = _norm(path)
        for rule, rx in self._paths:
            if not rule.protects or not self._applies(rule, rx, norm, cls):
                continue
            if rule.legal_hold:
                return Denial(rule, "under legal hold")
            until = rule.retained_until(born_ns)
            if until is not None and now < until:
                return Denial(rule, f"retained (WORM) for {until - now:.0f} s more")
        return None

    # -- residency, copies, encryption --------------------------------------------
    @staticmethod
    def store_refusal(rule: GovRule, store: StoreView) -> tuple[str, str] | None:
        """Why ``rule`` refuses ``store`` as a holder: (kind, one phrase), or None."""
        region = (store.region or "").lower()
        if rule.regions and not (region and any(fnmatch.fnmatchcase(region, p.lower())
                                                for p in rule.regions)):
            return "region", f"region {store.region or 'unknown'} not in {list(rule.regions)}"
        if region and any(fnmatch.fnmatchcase(region, p.lower()) for p in rule.deny_regions):
            return "region", f"region {store.region} is denied"
        if rule.deny_regions and not region:
            return "region", "region unknown (a denied region cannot be ruled out)"
        if rule.providers and store.name not in rule.providers:
            return "provider", f"store {store.name} not in {list(rule.providers)}"
        if store.name in rule.deny_providers:
            return "provider", f"store {store.name} is denied"
        if rule.encryption and not store.encrypted:
            return "encryption", f"store {store.name} has no server-side encryption setting"
        return None

    def allowed_stores(self, path: str, stores: Sequence[StoreView],
                       cls: str | None = None) -> list[StoreView]:
        rules = self.rules_for(path, cls)
        return [s for s in stores if not any(self.store_refusal(r, s) for r in rules)]

    def violations(self, path: str, holders: Sequence[StoreView],
                   cls: str | None = None) -> list[Violation]:
        """What is wrong with where ``path``'s copies are (``holders``: in-sync replicas)."""
        out = []
        for rule in self.rules_for(path, cls):
            for s in holders:
                refusal = self.store_refusal(rule, s)
                if refusal:
                    out.append(Violation(rule, refusal[0], s.name, refusal[1]))
            if rule.min_copies and len(holders) < rule.min_copies:
                out.append(Violation(rule, "copies", None,
                                     f"{len(holders)} copies, rule wants {rule.min_copies}"))
            regions = {s.region for s in holders if s.region}
            if rule.distinct_regions and len(regions) < rule.distinct_regions:
                out.append(Violation(rule, "regions", None,
                                     f"{len(regions)} regions, rule wants "
                                     f"{rule.distinct_regions}"))
        return out

    def wanted_copies(self, path: str, cls: str | None = None) -> tuple[int, int]:
        """(min copies, distinct regions) the rules ask of ``path`` (0 when none)."""
        rules = self.rules_for(path, cls)
        return (max((r.min_copies for r in rules), default=0),
                max((r.distinct_regions for r in rules), default=0))

    def extra_homes(self, path: str, holders: Sequence[StoreView], candidates: Sequence[StoreView],
                    cls: str | None = None) -> list[str]:
        """Stores to add so ``path`` meets its min_copies and distinct_regions, best first:
        ``candidates`` in order, allowed ones only, new regions first."""
        copies, regions = self.wanted_copies(path, cls)
        have = {s.name for s in holders}
        seen = {s.region for s in holders if s.region}
        add: list[str] = []
        pool = [s for s in self.allowed_stores(path, candidates, cls) if s.name not in have]
        for s in pool:
            if len(seen) >= regions:
                break
            if s.region and s.region not in seen:
                add.append(s.name)
                seen.add(s.region)
        for s in pool:
            if len(have) + len(add) >= copies:
                break
            if s.name not in add:
                add.append(s.name)
        return add
