"""``omnifs migrate run PLAN``: carry out a plan, resumably, in parallel (omnifs.migration.run).

The run's state lives in the catalog (the config's, else
``./.omnifs-data/catalog.db``), so running the same plan again after a crash
or a failure continues it: only pending and failed objects are tried. Exit
status 0 when every object is done; 1 when some failed (listed on stderr, one
per line) or the run stopped early (a store down too long, ``--max-cost``);
2 for bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from omnifs.providers import InvalidInput

from ...migration.outcome import RunProgress, failure_lines, summary_lines
from ...migration.run import MigrationRun, RunOptions
from ...migration.sides import open_sides
from ...migration.throttle import parse_rate
from ...progress import RichBar, Snapshot
from ...targets import Resolver
from ...usage_log import recording
from ..gov import gate
from . import opened_plan, step_parser

ORDER = 20

EXIT_INCOMPLETE = 1


def add_steps(steps: argparse._SubParsersAction) -> None:
    p = step_parser(
        steps, "run", help="carry out a plan: copy, overwrite, delete (resumable)",
        description="Carry out PLAN.json in parallel. Its state is kept in the catalog: "
                    "after a crash or failures, run the same plan again to continue; objects "
                    "done are not copied again.")
    p.add_argument("plan", metavar="PLAN.json")
    p.add_argument("--parallel", type=int, default=8, metavar="N",
                   help="objects worked on at once (8)")
    p.add_argument("--bandwidth", metavar="RATE",
                   help="limit for all transfers together, e.g. 100MiB/s")
    p.add_argument("--max-cost", metavar="USD",
                   help="refuse a plan estimated above this; stop before spending more")
    p.add_argument("--attempts", type=int, default=3, metavar="N",
                   help="tries per object before it is recorded failed (3)")
    p.add_argument("--wait-down", type=float, default=300.0, metavar="SECONDS",
                   help="how long to wait for a store that went down before stopping (300)")
    p.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto",
                   help="bar on a terminal (auto), JSON lines on stdout, or nothing")
    p.set_defaults(func=cmd_run)


def _max_cost(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"--max-cost {text!r} is not an amount: write e.g. 25 or 0.50"
                           ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"--max-cost {text!r} must be an amount of 0 or more")
    return value


@contextlib.contextmanager
def _progress(mode: str) -> Iterator[object]:
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    if mode == "json":
        def emit(p: RunProgress) -> None:
            sys.stdout.write(json.dumps(p.as_dict()) + "\n")
            sys.stdout.flush()
        yield emit
    elif mode == "bar":
        with RichBar("migrating") as bar:
            def show(p: RunProgress) -> None:
                bar("bytes", None, Snapshot(total_objects=p.total, total_bytes=p.total_bytes,
                                            done_objects=p.done, done_bytes=p.bytes,
                                            failed=p.failed, elapsed=p.elapsed))
            yield show
    else:
        yield None


def cmd_run(args) -> int:
    if args.parallel < 1:
        raise InvalidInput(f"--parallel {args.parallel}: must be at least 1")
    if args.attempts < 1:
        raise InvalidInput(f"--attempts {args.attempts}: must be at least 1")
    if args.wait_down < 0:
        raise InvalidInput("--wait-down must not be negative")
    rate = parse_rate(args.bandwidth) if args.bandwidth is not None else None
    max_cost = _max_cost(args.max_cost)
    with opened_plan(args, create_catalog=True) as (cfg, plan, cat), Resolver(cfg) as r, \
            recording(cfg.catalog_target()):
        assert cat is not None  # created
        sides = open_sides(plan, r)
        gate(cfg, sides.dst.name, [sides.dst_key(e.key) for e in plan.entries
                                   if e.action != "delete"], "migrate run")
        with _progress(args.progress) as cb:
            opts = RunOptions(parallel=args.parallel, bandwidth=rate, max_cost=max_cost,
                              attempts=args.attempts, wait_down=args.wait_down,
                              progress=cb,
                              interval=0.5 if args.progress == "json" else 0.1)
            result = MigrationRun(cat, plan, sides.src, sides.dst, opts, cfg.prices).run()
    for line in failure_lines(result.failed):
        print(f"omnifs: {line}", file=sys.stderr)
    for line in summary_lines(result, plan.mode):
        print(f"omnifs: {line}", file=sys.stderr)
    if result.stopped:
        print(f"omnifs: {result.stopped}", file=sys.stderr)
    return 0 if result.ok else EXIT_INCOMPLETE
