"""Which providers hold a file: pure decisions, no I/O, no SDK.

The mount asks ``place(path, ...)`` on close to learn where to upload now
(``write_now``, ``write_quorum`` of them) and where the daemon must copy
later (``pending``); the daemon asks it again when a provider is lost, to
find where to recreate copies. ``rank_reads`` orders a file's holders for a read.

Order of preference among the providers a path is *allowed* on (governance
rules: glob paths -> region patterns):

1. usable before unusable (healthy/unknown, then degraded, then down; lost
   providers are never chosen);
2. lower score = ``(1 + load) * (1 + cost_per_gb) / weight`` - less loaded,
   cheaper and heavier-weighted providers first;
3. ties broken by a hash of the path when ``balance`` is on (so equal
   providers share new writes when ``write_quorum < copies``), else by config
   order (the first provider is the "primary").

Draining providers (being swapped out by ``omnifs migrate provider``) take
no new replica: :func:`views_from_config` leaves them out of the views
placement chooses from, while reads still rank their replicas.

Down providers may still appear in ``targets`` when there are not enough
others (they are caught up when they return), but never in ``write_now``:
close succeeds as long as one allowed provider is up.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .health import DOWN, LOST, RANK


class PlacementError(Exception):
    """No allowed provider can take the write. ``str()`` is one line."""


@dataclass(frozen=True)
class ProviderView:
    """What placement knows of one provider: config plus live state."""

    name: str
    region: str | None = None
    weight: float = 1.0
    cost_per_gb: float = 0.0
    status: str = "unknown"
    #: queued work or bytes in flight, any consistent unit; higher = busier
    load: float = 0.0
    #: measured p50 latency in seconds (read ranking)
    latency: float | None = None
    #: position in the config file (tie-break; 0 is the primary)
    order: int = 0
    #: the store declares server-side encryption (its ``encryption`` key)
    encrypted: bool = False


@dataclass(frozen=True)
class Rule:
    """A governance rule's residency: files under ``paths`` may only live in ``regions``
    (when given), never in ``deny_regions``, only on ``providers`` (when given), never on
    ``deny_providers``, and only on encrypting stores when ``encryption``."""

    paths: tuple[str, ...]
    regions: tuple[str, ...]
    deny_regions: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    deny_providers: tuple[str, ...] = ()
    encryption: bool = False

    def accepts(self, p: ProviderView) -> bool:
        if self.regions and not region_allowed(p.region, self.regions):
            return False
        if self.deny_regions and (p.region is None or region_allowed(p.region,
                                                                     self.deny_regions)):
            return False
        if self.providers and p.name not in self.providers:
            return False
        return p.name not in self.deny_providers and (p.encrypted or not self.encryption)


@dataclass
class Placement:
    #: the providers that should hold the file, best first (``copies`` of them when possible)
    targets: list[str] = field(default_factory=list)
    #: upload before close returns (the first usable targets, ``write_quorum`` of them)
    write_now: list[str] = field(default_factory=list)
    #: the other targets: queued for the daemon
    pending: list[str] = field(default_factory=list)
    #: copies that cannot be placed (too few allowed providers)
    shortfall: int = 0


# -- region inference ------------------------------------------------------

_REGION_IN_HOST = re.compile(
    r"(?<![a-z0-9])((?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-)?[a-z]+-\d)(?![a-z0-9])"
    r"|(?<![a-z0-9])((?:europe|asia|australia|northamerica|southamerica|us|me|africa)-[a-z]+\d)(?![a-z0-9])")


def infer_region(table: Mapping[str, object]) -> str | None:
    """A provider's region: its ``region`` key, else one spelled in its endpoint or URI.

    Recognises AWS-style (``eu-west-1``) and GCP-style (``europe-west1``)
    names in hosts such as ``s3.eu-west-1.amazonaws.com``. Returns None when
    nothing says where the data lives (such a provider never satisfies a
    region rule: compliance must be provable).
    """
    region = table.get("region")
    if isinstance(region, str) and region:
        return region.lower()
    for key in ("endpoint", "account_url", "uri"):
        value = table.get(key)
        if isinstance(value, str):
            m = _REGION_IN_HOST.search(value.lower())
            if m:
                return m.group(1) or m.group(2)
    return None


# -- path rules ------------------------------------------------------------

@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` spans directories, ``*``/``?`` stay within one; ``/a/**`` also matches ``/a``."""
    pat = "/" + pattern.strip("/") if pattern.strip("/") else "/"
    out = []
    i = 0
    while i < len(pat):
        if pat.startswith("/**", i) and (i + 3 == len(pat) or pat[i + 3] == "/"):
            out.append("(?:/.*)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def path_matches(path: str, pattern: str) -> bool:
    norm = "/" + path.strip("/")
    return _glob_regex(pattern).match(norm) is not None


def rules_from_config(raw: Iterable[Mapping[str, Any]]) -> list[Rule]:
    """``[[governance.rules]]`` tables -> the placement side of them.

    Tables with none of the residency keys are not placement rules, nor are
    those selecting files by ``classification`` alone (a class read from an
    xattr is not known when a file is placed: ``omnifs gov check`` covers them);
    a rule with paths and a classification is applied to all its paths.
    """
    def strings(value: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in ([value] if isinstance(value, str) else value or ()))

    rules = []
    for table in raw:
        if not any(table.get(k) for k in _RESIDENCY_KEYS):
            continue
        if table.get("classification") and not table.get("paths"):
            continue
        rules.append(Rule(strings(table.get("paths")) or ("/**",),
                          strings(table.get("regions")),
                          deny_regions=strings(table.get("deny_regions")),
                          providers=strings(table.get("providers")),
                          deny_providers=strings(table.get("deny_providers")),
                          encryption=table.get("encryption") is True))
    return rules


_RESIDENCY_KEYS = ("regions", "deny_regions", "providers", "deny_providers", "encryption")


def region_allowed(region: str | None, patterns: Sequence[str]) -> bool:
    if region is None:
        return False
    return any(fnmatch.fnmatchcase(region.lower(), p.lower()) for p in patterns)


def allowed(path: str, providers: Iterable[ProviderView],
            rules: Sequence[Rule]) -> list[ProviderView]:
    """The providers ``path`` may live on: every rule whose paths match must accept the region."""
    applicable = [r for r in rules if any(path_matches(path, p) for p in r.paths)]
    return [p for p in providers if all(r.accepts(p) for r in applicable)]


# -- choosing ----------------------------------------------------------------

def score(p: ProviderView) -> float:
    weight = p.weight if p.weight > 0 else 1e-9
    return (1.0 + max(p.load, 0.0)) * (1.0 + max(p.cost_per_gb, 0.0)) / weight


def _spread(path: str, name: str) -> int:
    digest = hashlib.blake2b(f"{path}\0{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def rank(path: str, candidates: Iterable[ProviderView], *, balance: bool) -> list[ProviderView]:
    usable = [p for p in candidates if p.status != LOST]

    def key(p: ProviderView):
        tie = _spread(path, p.name) if balance else p.order
        return (RANK.get(p.status, 0), round(score(p), 9), tie, p.order)

    return sorted(usable, key=key)


def place(path: str, providers: Sequence[ProviderView], rules: Sequence[Rule], *,
          copies: int, write_quorum: int = 1, balance: bool | None = None,
          exclude: Iterable[str] = ()) -> Placement:
    """Choose ``copies`` distinct providers for ``path``.

    ``balance`` defaults to ``write_quorum < copies``: then equally good
    providers share the first uploads by path hash instead of all landing on
    the primary. ``exclude`` drops providers (e.g. the one being replaced).
    Raises PlacementError when no allowed provider is usable for ``write_now``.
    """
    if balance is None:
        balance = write_quorum < copies
    skip = set(exclude)
    candidates = [p for p in allowed(path, providers, rules) if p.name not in skip]
    ranked = rank(path, candidates, balance=balance)
    targets = [p.name for p in ranked[:copies]]
    up = [p.name for p in ranked if p.status != DOWN]
    write_now = up[:write_quorum]
    if not write_now:
        if not candidates:
            raise PlacementError(f"{path}: no configured provider is allowed for this path "
                                 "by the governance rules")
        raise PlacementError(f"{path}: every provider allowed for this path is down")
    # a down target is replaced by an up one when there is one to spare
    chosen = list(write_now) + [t for t in targets if t not in write_now]
    chosen = chosen[:copies]
    return Placement(targets=chosen, write_now=write_now,
                     pending=[t for t in chosen if t not in write_now],
                     shortfall=max(0, copies - len(chosen)))


def rank_reads(holders: Iterable[ProviderView]) -> list[ProviderView]:
    """Replicas holding the current version, best first: usable, then fastest measured."""
    def key(p: ProviderView):
        latency = p.latency if p.latency is not None else float("inf")
        return (RANK.get(p.status, 0), latency, p.order)

    return sorted((p for p in holders if p.status != LOST), key=key)


def views_from_config(provider_tables: Mapping[str, Mapping[str, object]],
                      status: Mapping[str, str] | None = None,
                      load: Mapping[str, float] | None = None,
                      latency: Mapping[str, float | None] | None = None,
                      draining: Collection[str] = ()) -> list[ProviderView]:
    """ProviderViews from ``Config.provider_tables`` (config order) and live state.

    ``draining`` providers are left out: placement never chooses them, so no
    new replica lands there (their ``order`` stays their config position).
    """
    status = status or {}
    load = load or {}
    latency = latency or {}
    views = []
    for i, (name, table) in enumerate(provider_tables.items()):
        if name in draining:
            continue
        weight = table.get("weight", 1.0)
        cost = table.get("cost_per_gb", 0.0)
        views.append(ProviderView(
            name=name, region=infer_region(table),
            weight=float(weight) if isinstance(weight, (int, float)) else 1.0,
            cost_per_gb=float(cost) if isinstance(cost, (int, float)) else 0.0,
            status=status.get(name, "unknown"), load=float(load.get(name, 0.0)),
            latency=latency.get(name), order=i, encrypted=bool(table.get("encryption"))))
    return views
