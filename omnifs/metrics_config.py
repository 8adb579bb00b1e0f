"""``[metrics]`` and ``[alerts]`` of omnifs.toml (docs/metrics.md).

``[metrics]``: ``enabled`` (false: no store, FUSE or cost instrumentation at
all), ``port`` (the daemon's /metrics, 0 off), ``mount_port`` (the mount's own
/metrics, 0 off), ``addr`` (where both listen, 127.0.0.1 by default),
``prometheus_url`` (where ``omnifs metrics compare`` reads history; without
it, the local sample store), ``sample_interval`` (seconds between the
daemon's samples into that store).

``[alerts]``: the thresholds of the alerting rules and of the daemon's own
evaluation; a key left out is an alert not raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError


@dataclass
class AlertSettings:
    #: seconds the oldest pending replication may wait
    replication_lag: float | None = None
    #: files with fewer copies than configured
    under_replicated: float | None = None
    #: seconds a provider may be down before it is an alert
    provider_down: float | None = None
    #: share (0..1) of a store's requests that may fail (not-found answers excluded)
    error_rate: float | None = None
    #: seconds a store's p95 request latency may reach
    p95_latency: float | None = None
    #: lowest acceptable share (0..1) of block reads served by the cache
    cache_hit_ratio: float | None = None
    #: dollars a month the stores may cost (storage, and requests and egress at the current rate)
    monthly_cost: float | None = None
    #: seconds the oldest change not yet in a backup may wait ([dr] rpo unless set here)
    recovery_point: float | None = None
    #: URL the daemon POSTs firing and resolved alerts to (JSON)
    webhook: str | None = None
    webhook_timeout: float = 5.0
    webhook_retries: int = 3
    #: seconds an alert's condition must hold before it fires
    for_seconds: float = 60.0
    #: seconds between the daemon's evaluations
    interval: float = 15.0

    def thresholds(self) -> dict[str, float]:
        """The alerts configured, by name."""
        return {name: getattr(self, name) for name in THRESHOLDS
                if getattr(self, name) is not None}


THRESHOLDS = ("replication_lag", "under_replicated", "provider_down", "error_rate",
              "p95_latency", "cache_hit_ratio", "monthly_cost", "recovery_point")


@dataclass
class MetricsSettings:
    enabled: bool = True
    port: int = 9469
    mount_port: int = 9470
    addr: str = "127.0.0.1"
    prometheus_url: str | None = None
    sample_interval: float = 60.0
    alerts: AlertSettings = field(default_factory=AlertSettings)


#: key -> the type(s) its value may have
_METRICS_KEYS: dict[str, Any] = {"enabled": bool, "port": int, "mount_port": int, "addr": str,
                                 "prometheus_url": str, "sample_interval": (int, float)}


def _number(value, where: str, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{where} must be {limit}, got {value!r}")
    return float(value)


def parse_metrics(metrics: dict, alerts: dict, source: str) -> MetricsSettings:
    """Both sections, checked; every mistake one line naming file, section and key."""
    out = MetricsSettings()
    value: Any
    for key, value in metrics.items():
        where = f"{source}: [metrics] {key}"
        kinds = _METRICS_KEYS.get(key)
        if kinds is None:
            raise ConfigError(f"{source}: [metrics]: unknown key {key!r} (known: "
                              f"{', '.join(_METRICS_KEYS)})")
        if isinstance(value, bool) != (kinds is bool) or not isinstance(value, kinds):
            raise ConfigError(f"{where}: wrong type {type(value).__name__} ({value!r})")
        if key in ("port", "mount_port") and not 0 <= value <= 65535:
            raise ConfigError(f"{where} must be a TCP port (0 turns it off), got {value!r}")
        if key == "sample_interval":
            value = _number(value, where, low=1.0)
        if key == "prometheus_url" and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{where} must be an http:// or https:// URL")
        setattr(out, key, value)
    a = out.alerts
    known = {f.name for f in fields(AlertSettings)}
    for key, value in alerts.items():
        where = f"{source}: [alerts] {key}"
        if key not in known:
            raise ConfigError(f"{source}: [alerts]: unknown key {key!r} (known: "
                              f"{', '.join(sorted(known))})")
        if key == "webhook":
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise ConfigError(f"{where} must be an http:// or https:// URL")
            a.webhook = value
        elif key == "webhook_retries":
            a.webhook_retries = int(_number(value, where, high=20))
        elif key in ("error_rate", "cache_hit_ratio"):
            setattr(a, key, _number(value, where, high=1.0))
        else:
            setattr(a, key, _number(value, where))
    if a.interval < 0.1:
        raise ConfigError(f"{source}: [alerts] interval must be at least 0.1")
    return out
