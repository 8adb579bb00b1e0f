"""cost: what the stores cost this month, what to move to pay less, moving it, the moves made.

``omnifs cost report [--by provider|tier|prefix]``, ``omnifs cost recommend``,
``omnifs cost apply [--dry-run] [--max-moves N]`` and ``omnifs cost history``.
Reports go to stdout, or with ``-o FILE`` to a file written atomically, as
Markdown, one-file HTML with charts, or JSON. The work is in omnifs/costing/;
the policies are ``[cost]`` (docs/cost.md).
"""

from __future__ import annotations

import argparse
import sys

from ..catalog import Catalog
from ..config import load_config
from ..costing import apply as applying
from ..costing.bill import month_bill
from ..costing.reports import GROUPINGS, bill_report, history_report, recommend_report
from ..errors import InvalidInput
from ..report.output import FORMATS, emit
from ..report.values import format_value

ORDER = 45
#: recommendations listed by default (memory stays bounded over millions of files)
LIMIT = 1000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="storage cost: report, recommend, apply, history",
                       description="What the stores cost this month, which tier moves and "
                                   "placements would cost less, and moving them.")
    steps = p.add_subparsers(dest="cost_command", metavar="STEP", required=True)

    def step(name: str, help_: str, func, description: str = "") -> argparse.ArgumentParser:
        s = steps.add_parser(name, help=help_, description=description or help_)
        s.add_argument("--format", "-f", choices=FORMATS, default="md", help="(md)")
        s.add_argument("-o", "--output", metavar="FILE",
                       help="write here (atomically) instead of stdout")
        s.set_defaults(func=func)
        return s

    r = step("report", "this month's estimated cost per store, tier and prefix", cmd_report,
             "Storage (a whole month of what is stored now), requests and egress (what "
             "omnifs asked of each store this month) and retrieval (bytes read from cool "
             "tiers), with the inputs behind each figure.")
    r.add_argument("--by", choices=GROUPINGS, default="provider",
                   help="the grouping shown (and charted) first (provider)")
    rec = step("recommend", "tier moves and cheaper placements, with savings and break-even",
               cmd_recommend)
    rec.add_argument("--limit", type=int, default=LIMIT, metavar="N",
                     help="list the N best by saving (the total counts them all; "
                          "default %(default)s)")
    a = step("apply", "queue the recommended moves for the daemon", cmd_apply,
             "Queue the recommended moves (best saving first) as work for the daemon "
             "(or `omnifs replicate --now`); every move is recorded (`omnifs cost history`).")
    a.add_argument("--dry-run", action="store_true", help="show what would be queued")
    a.add_argument("--max-moves", type=int, metavar="N", help="queue at most N moves")
    step("history", "the moves `cost apply` made, and how each ended", cmd_history)


def _catalog(args) -> tuple:
    cfg = load_config(args.config)
    if not cfg.providers:
        raise InvalidInput(f"no [providers] in {cfg.path or 'the config'}: nothing to price")
    return cfg, Catalog(cfg.catalog_target(), create=False)


def cmd_report(args) -> int:
    cfg, cat = _catalog(args)
    try:
        bill = month_bill(cat, cfg)
    finally:
        cat.close()
    emit(bill_report(bill, args.by), args.format, args.output)
    return 0


def _horizon(days: int) -> str:
    return f"moves whose break-even is beyond {days} days (horizon_days) are not made"


def cmd_recommend(args) -> int:
    if args.limit < 1:
        raise InvalidInput(f"--limit {args.limit}: must be at least 1")
    cfg, cat = _catalog(args)
    try:
        found = applying.recommend(cat, cfg, limit=args.limit)
    finally:
        cat.close()
    report = recommend_report(found.recommendations, found.totals, found.currency,
                              horizon_note=_horizon(found.horizon_days))
    emit(report, args.format, args.output)
    return 0


def cmd_apply(args) -> int:
    if args.max_moves is not None and args.max_moves < 1:
        raise InvalidInput(f"--max-moves {args.max_moves}: must be at least 1")
    cfg, cat = _catalog(args)
    try:
        found, queued = applying.apply(cat, cfg, max_moves=args.max_moves,
                                       dry_run=args.dry_run)
    finally:
        cat.close()
    if args.output or args.format != "md":
        report = recommend_report([r for r, _ in queued], found.totals, found.currency,
                                  horizon_note=_horizon(found.horizon_days))
        emit(report, args.format, args.output)
    verb = "would queue" if args.dry_run else "queued"
    saving = sum((r.saving_per_month for r, _ in queued), start=0)
    once = sum((r.one_time for r, _ in queued), start=0)
    for r, move in queued:
        where = f"{r.store} {r.source} -> {r.target}" if r.kind == "tier" else \
            f"{r.source} -> {r.target}"
        tag = f"move {move}: " if move is not None else ""
        print(f"omnifs: {verb} {tag}{r.kind} {r.path}: {where}, saving "
              f"{format_value(r.saving_per_month, found.currency)}/month", file=sys.stderr)
    print(f"omnifs: {verb} {len(queued)} of {found.totals.recommendations} move(s), saving "
          f"{format_value(saving, found.currency)}/month for "
          f"{format_value(once, found.currency)} once", file=sys.stderr)
    return 0


def cmd_history(args) -> int:
    _, cat = _catalog(args)
    try:
        moves = cat.cost.moves()
    finally:
        cat.close()
    emit(history_report(moves), args.format, args.output)
    return 0
