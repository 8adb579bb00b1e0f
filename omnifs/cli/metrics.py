"""metrics: compare the stores side by side, export a snapshot, generate alerting rules.

``omnifs metrics compare [--since 1h]`` prints p50/p95/p99 latency per op,
throughput, error rate and dollars per GB read for every store, from
Prometheus (``[metrics] prometheus_url``) or the local sample store the mount
and daemon keep (docs/metrics.md). ``export --format json|csv`` writes the
same rows over all history kept; ``alerts`` prints Prometheus rules for
``[alerts]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time

from ..config import load_config
from ..errors import InvalidInput

ORDER = 45

COLUMNS = ("provider", "op", "requests", "p50_ms", "p95_ms", "p99_ms", "mib_s", "error_rate",
           "usd_per_gb_read")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """"90s", "15m", "1h", "2d" -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise InvalidInput(f"--since: {text!r} is not a duration; write e.g. 15m, 1h or 2d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="compare stores, export metrics, generate alert rules")
    m = p.add_subparsers(dest="metrics_cmd", metavar="COMMAND")
    c = m.add_parser("compare", help="the stores side by side: latency, throughput, errors, "
                                     "cost per GB read")
    c.add_argument("--since", default="1h", metavar="DURATION",
                   help="window to compare, e.g. 15m, 1h, 2d (default: %(default)s)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_compare)
    e = m.add_parser("export", help="a snapshot of every store's metrics over all history kept")
    e.add_argument("--format", choices=("json", "csv"), default="json")
    e.set_defaults(func=cmd_export)
    a = m.add_parser("alerts", help="Prometheus alerting rules for [alerts] "
                                    "(omnifs metrics alerts > omnifs.rules.yml)")
    a.set_defaults(func=cmd_alerts)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _rows(config, since: float | None) -> tuple[list[dict], float, str]:
    from ..metrics import compare, samples
    from ..metrics.cost import prices_of

    prices = prices_of(config)
    url = config.metrics.prometheus_url
    if url:
        seconds = since if since is not None else 30 * 86400.0
        return compare.rows(compare.from_prometheus(url, seconds), seconds, prices), seconds, url
    start = time.time() - since if since is not None else None
    totals, seconds = compare.from_samples(samples.read(config.cache_dir), start)
    return compare.rows(totals, seconds, prices), seconds, "local samples"


def cmd_compare(args) -> int:
    config = load_config(args.config)
    since = parse_duration(args.since)
    rows, seconds, source = _rows(config, since)
    if args.json:
        print(json.dumps({"source": source, "seconds": round(seconds, 1), "rows": rows},
                         indent=2))
        return 0
    if not rows:
        print(f"no store requests measured in the last {args.since} ({source})")
        return 0
    print(f"stores over the last {args.since} ({source}):")
    table = [COLUMNS] + [tuple("-" if r[c] is None else str(r[c]) for c in COLUMNS)
                         for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_export(args) -> int:
    config = load_config(args.config)
    rows, seconds, source = _rows(config, None)
    if args.format == "json":
        print(json.dumps({"source": source, "seconds": round(seconds, 1), "rows": rows},
                         indent=2))
    else:
        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return 0


def cmd_alerts(args) -> int:
    from ..metrics.rules import rules_yaml

    config = load_config(args.config)
    if not config.metrics.alerts.thresholds():
        print("no thresholds in [alerts]: the rule file has no rules", file=sys.stderr)
    sys.stdout.write(rules_yaml(config.metrics.alerts))
    return 0
