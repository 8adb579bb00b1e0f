"""``omnifs migrate report PLAN --format md|html|json [-o FILE]``: a migration's report.

The plan file is checked first (an edited plan is refused in one line); the
run's record comes from the config's catalog when there is one, else the
report shows the plan alone. Without ``-o`` the report goes to stdout; with it,
the file is written atomically (Markdown adds its charts as PNGs beside it).
"""

from __future__ import annotations

import argparse

from omnifs.providers import ProviderSettings

from ...config import Config
from ...migration.planfile import Place
from ...migration.report import migration_report
from ...report.output import FORMATS, emit
from . import opened_plan, step_parser

ORDER = 40


def add_steps(steps: argparse._SubParsersAction) -> None:
    p = step_parser(
        steps, "report", help="write a migration's report (md, html or json)",
        description="Summary, objects and bytes per action and state, a per-prefix table, "
                    "failures, verification, the estimated cost beside the cost the run "
                    "counted, and charts of bytes and throughput over time and cost per "
                    "store. HTML is one self-contained file with the charts embedded.")
    p.add_argument("plan", metavar="PLAN.json")
    p.add_argument("--format", "-f", choices=FORMATS, default="md", help="(md)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here (atomically) instead of stdout")
    p.set_defaults(func=cmd_report)


def _settings(cfg: Config, place: Place) -> ProviderSettings:
    """The configured provider a plan place names, else what its bare URI implies."""
    return cfg.providers.get(place.provider) or ProviderSettings(name=place.provider,
                                                                 uri=place.uri)


def cmd_report(args) -> int:
    with opened_plan(args) as (cfg, plan, cat):
        src, dst = _settings(cfg, plan.src), _settings(cfg, plan.dst)
        report = migration_report(plan, None if cat is None else cat.migrations, src, dst,
                                  cfg.prices)
    emit(report, args.format, args.output)
    return 0
