"""Prometheus alerting rules from ``[alerts]`` (``omnifs metrics alerts > omnifs.rules.yml``).

One rule per configured threshold, over the series the mount and the daemon
export; the daemon evaluates the same thresholds itself (``alerts``). The
YAML is written by hand: every string is JSON-quoted, which YAML reads as is.
"""

from __future__ import annotations

import json

from omnifs.metrics_config import AlertSettings

#: threshold -> (alert name, PromQL with {x} for the threshold, summary)
RULES: dict[str, tuple[str, str, str]] = {
    "replication_lag": (
        "OmnifsReplicationLag", "max(omnifs_replication_lag_seconds) > {x}",
        "replication lags {{ $value | humanizeDuration }} behind"),
    "under_replicated": (
        "OmnifsUnderReplicated", "max(omnifs_under_replicated_files) > {x}",
        "{{ $value }} files have fewer copies than configured"),
    "provider_down": (
        "OmnifsProviderDown", "max by (provider) (omnifs_provider_up) == 0",
        "store {{ $labels.provider }} is down"),
    "error_rate": (
        "OmnifsStoreErrorRate",
        'sum by (provider) (rate(omnifs_store_errors_total{{error!="not_found"}}[5m])) / '
        "sum by (provider) (rate(omnifs_store_requests_total[5m])) > {x}",
        "{{ $labels.provider }}: {{ $value | humanizePercentage }} of requests fail"),
    "p95_latency": (
        "OmnifsStoreSlow",
        "histogram_quantile(0.95, sum by (provider, le) "
        "(rate(omnifs_store_request_seconds_bucket[5m]))) > {x}",
        "{{ $labels.provider }}: p95 request latency {{ $value }} s"),
    "cache_hit_ratio": (
        "OmnifsCacheHitRatioLow",
        "sum(rate(omnifs_cache_hits_total[10m])) / (sum(rate(omnifs_cache_hits_total[10m])) + "
        "sum(rate(omnifs_cache_misses_total[10m]))) < {x}",
        "the block cache serves only {{ $value | humanizePercentage }} of reads"),
    "monthly_cost": (
        "OmnifsMonthlyCost",
        "sum(max by (provider) (omnifs_storage_cost_usd_per_month)) + "
        "sum(max by (provider, kind) (rate(omnifs_cost_usd_total[1h]))) * 2592000 > {x}",
        "the stores cost about ${{ $value | printf \"%.2f\" }} a month"),
    "recovery_point": (
        "OmnifsRecoveryPointOld", "max(omnifs_dr_recovery_point_seconds) > {x}",
        "changes {{ $value | humanizeDuration }} old are not in a backup yet (RPO)"),
}


def _duration(seconds: float) -> str:
    return f"{max(0, round(seconds))}s"


def rules_yaml(alerts: AlertSettings) -> str:
    """The rule file for the thresholds configured (an empty group when none is)."""
    lines = ["groups:", "  - name: omnifs", "    rules:"]
    thresholds = alerts.thresholds()
    if not thresholds:
        lines[-1] = "    rules: []"
    for key, x in thresholds.items():
        name, expr, summary = RULES[key]
        wait = x if key == "provider_down" else alerts.for_seconds
        lines += [f"      - alert: {name}",
                  f"        expr: {json.dumps(expr.format(x=f'{x:g}'))}",
                  f"        for: {_duration(wait)}",
                  "        labels:",
                  "          severity: \"warning\"",
                  f"          threshold: {json.dumps(key)}",
                  "        annotations:",
                  f"          summary: {json.dumps(summary)}"]
    return "\n".join(lines) + "\n"
