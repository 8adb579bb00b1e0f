"""``omnifs metrics compare`` and ``export``: the stores side by side, from one source of history.

History is Prometheus when ``[metrics] prometheus_url`` is set (``increase()``
over the window), else the local sample store (``samples``). Either way it
becomes the same totals per (provider, op) - requests, errors, bytes, the
latency histogram's bucket counts - and the same rows: p50/p95/p99 latency
(interpolated within buckets, as Prometheus's ``histogram_quantile``),
throughput, error rate, and dollars per GB read (``cost``).
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from decimal import Decimal

from omnifs.policy.costs import GB
from omnifs.providers.errors import Unavailable
from omnifs.providers.metered import BUCKETS

from .cost import costs

Totals = dict[tuple[str, str], dict]
FIELDS = ("requests", "errors", "bytes_in", "bytes_out", "seconds")


def _zero() -> dict:
    return {**dict.fromkeys(FIELDS, 0.0), "buckets": [0.0] * (len(BUCKETS) + 1)}


def _add(into: dict, row: dict, sign: float = 1.0) -> None:
    for f in FIELDS:
        into[f] += sign * float(row.get(f, 0.0))
    for i, v in enumerate(row.get("buckets", [])[:len(into["buckets"])]):
        into["buckets"][i] += sign * v


def from_samples(by_source: dict[str, list[dict]], since: float | None) -> tuple[Totals, float]:
    """Totals over the window from ``since`` (None: everything) and its length in seconds."""
    totals: Totals = {}
    first = last = None
    for rows in by_source.values():
        base = None
        if since is not None:
            before = [r for r in rows if r["t"] <= since]
            base = before[-1] if before else None
            if base is None and rows[-1]["t"] < since:
                continue
        end = rows[-1]
        start_t = base["t"] if base else (since if since is not None else rows[0]["t"])
        first = start_t if first is None else min(first, start_t)
        last = end["t"] if last is None else max(last, end["t"])
        for provider, ops in end["stores"].items():
            for op, row in ops.items():
                t = totals.setdefault((provider, op), _zero())
                _add(t, row)
                if base is not None:
                    _add(t, base["stores"].get(provider, {}).get(op, {}), -1.0)
    seconds = (last - first) if first is not None and last is not None else 0.0
    return totals, max(seconds, 0.0)


def _query(url: str, expr: str) -> list[dict]:
    full = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(full, timeout=10) as r:
            body = json.load(r)
    except (OSError, ValueError) as e:
        raise Unavailable(f"cannot query Prometheus at {url} ([metrics] prometheus_url): "
                          f"{getattr(e, 'reason', e)}") from None
    if body.get("status") != "success":
        raise Unavailable(f"Prometheus at {url} refused the query: {body.get('error')}")
    return body["data"]["result"]


def from_prometheus(url: str, seconds: float) -> Totals:
    """The same totals from Prometheus: ``increase()`` over the last ``seconds``."""
    window = f"{max(1, int(seconds))}s"
    totals: Totals = {}
    series = {"requests": "omnifs_store_requests_total",
              "errors": 'omnifs_store_errors_total{error!="not_found"}',
              "bytes_in": "omnifs_store_read_bytes_total",
              "bytes_out": "omnifs_store_written_bytes_total",
              "seconds": "omnifs_store_request_seconds_sum"}
    for field, metric in series.items():
        for r in _query(url, f"sum by (provider, op) (increase({metric}[{window}]))"):
            key = (r["metric"].get("provider", ""), r["metric"].get("op", ""))
            totals.setdefault(key, _zero())[field] = float(r["value"][1])
    bounds = [*BUCKETS, math.inf]
    expr = f"sum by (provider, op, le) (increase(omnifs_store_request_seconds_bucket[{window}]))"
    for r in _query(url, expr):
        key = (r["metric"].get("provider", ""), r["metric"].get("op", ""))
        le = float(r["metric"].get("le", "+Inf"))
        if le in bounds:
            totals.setdefault(key, _zero())["buckets"][bounds.index(le)] = float(r["value"][1])
    return totals


def quantile(buckets: list[float], q: float) -> float | None:
    """The ``q`` quantile of cumulative bucket counts over ``BUCKETS`` (and +Inf)."""
    total = buckets[-1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(BUCKETS, buckets, strict=False):
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return BUCKETS[-1]


def rows(totals: Totals, seconds: float, prices: dict) -> list[dict]:
    """One row per (provider, op) with traffic, sorted; cost per GB read is the provider's."""
    counts = {k: (int(v["requests"]), int(v["errors"]), int(v["bytes_in"]), int(v["bytes_out"]))
              for k, v in totals.items()}
    spent: dict[str, Decimal] = {}
    for (provider, _kind), amount in costs(prices, counts).items():
        spent[provider] = spent.get(provider, Decimal(0)) + amount
    read: dict[str, float] = {}
    for (provider, _op), v in totals.items():
        read[provider] = read.get(provider, 0.0) + v["bytes_in"]
    out = []
    for (provider, op), v in sorted(totals.items()):
        if v["requests"] <= 0:
            continue
        moved = v["bytes_in"] + v["bytes_out"]
        gb_read = read[provider] / float(GB)
        out.append({
            "provider": provider, "op": op, "requests": int(v["requests"]),
            "p50_ms": _ms(quantile(v["buckets"], 0.5)),
            "p95_ms": _ms(quantile(v["buckets"], 0.95)),
            "p99_ms": _ms(quantile(v["buckets"], 0.99)),
            "mib_s": round(moved / 2**20 / seconds, 3) if seconds > 0 else None,
            "error_rate": round(v["errors"] / v["requests"], 4),
            "usd_per_gb_read": (round(float(spent.get(provider, 0)) / float(gb_read), 4)
                                if gb_read > 0 and provider in prices else None),
        })
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
