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

from ...config import load_config
from ...migration.outcome import RunProgress, failure_lines, summary_lines
from ...migration.planfile import MigrationPlan, Place, load
from ...migration.run import MigrationRun, RunOptions
from ...migration.throttle import parse_rate
from ...progress import RichBar, Snapshot
from ...targets import Resolver, Target
from . import step_parser

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


def _target(r: Resolver, place: Place, side: str) -> Target:
    """The plan's place, resolved again; refused when it now names another store or key."""
    t = r.resolve(place.given)
    if t.provider.name != place.provider or t.key != place.key:
        raise InvalidInput(f"{side} {place.given} now resolves to {t}, the plan was made for "
                           f"{place.provider}:/{place.key}: make a new plan")
    return t


def _plan(path: str, catalog_id: str) -> MigrationPlan:
    plan = load(path)
    if plan.catalog_id is not None:  # a plan made where no catalog existed yet fits any
        plan = load(path, catalog_id=catalog_id)
    return plan


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
    cfg = load_config(args.config, required=False)
    from omnifs.catalog import Catalog

    cat = Catalog(cfg.catalog_path())
    try:
        plan = _plan(args.plan, cat.catalog_id())
        with Resolver(cfg) as r:
            src, dst = _target(r, plan.src, "SRC"), _target(r, plan.dst, "DST")
            with _progress(args.progress) as cb:
                opts = RunOptions(parallel=args.parallel, bandwidth=rate, max_cost=max_cost,
                                  attempts=args.attempts, wait_down=args.wait_down,
                                  progress=cb,
                                  interval=0.5 if args.progress == "json" else 0.1)
                result = MigrationRun(cat, plan, src.provider, dst.provider, opts,
                                      cfg.prices).run()
    finally:
        cat.close()
    for line in failure_lines(result.failed):
        print(f"omnifs: {line}", file=sys.stderr)
    for line in summary_lines(result, plan.mode):
        print(f"omnifs: {line}", file=sys.stderr)
    if result.stopped:
        print(f"omnifs: {result.stopped}", file=sys.stderr)
    return 0 if result.ok else EXIT_INCOMPLETE
