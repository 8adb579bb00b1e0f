"""``omnifs migrate plan`` and ``omnifs migrate show``: what a migration would do, priced.

``migrate plan SRC DST -o PLAN.json`` lists both trees, diffs them
(:mod:`omnifs.migration.plan`) and writes the plan file
(:mod:`omnifs.migration.planfile`); it changes nothing in either store. On
stdout: objects and bytes per action. ``migrate show PLAN.json`` prints that
again from the file, after checking it was not edited. Bad input (SRC = DST, overlapping
trees, an unknown provider or URI) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from omnifs.providers import InvalidInput

from ...config import Config, load_config
from ...migration.costing import plan_estimate
from ...migration.plan import ACTIONS, MODES, plan_migration
from ...migration.planfile import MigrationPlan, Place, load
from ...sync_plan import Filter
from ...targets import Resolver, Target
from ...units import human_bytes, plural
from . import step_parser

ORDER = 10


def add_steps(steps: argparse._SubParsersAction) -> None:
    pl = step_parser(
        steps, "plan",
        help="list both sides and write what a migration would do (changes nothing)",
        description="Inventory SRC and DST by listing, diff them (size, SHA-256 from omnifs "
                    "metadata, else native md5/crc32c) and write the plan: objects and bytes "
                    "to copy, overwrite, skip and delete.")
    pl.add_argument("src", metavar="SRC",
                    help="s3://, gs://, az://, minio://, file:// URI, NAME:/path or a local path")
    pl.add_argument("dst", metavar="DST", help="destination URI, NAME:/path or a local path")
    pl.add_argument("--mode", choices=MODES, default="copy",
                    help="move: delete each source object once its copy is verified (copy)")
    pl.add_argument("--include", action="append", default=[], metavar="GLOB",
                    help="only keys matching (repeatable; ** crosses /)")
    pl.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="leave out keys matching (repeatable)")
    pl.add_argument("--delete", action="store_true",
                    help="also delete destination objects that SRC lacks")
    pl.add_argument("-o", "--output", required=True, metavar="PLAN.json",
                    help="where to write the plan")
    pl.set_defaults(func=cmd_plan)
    sh = step_parser(steps, "show", help="print a plan file's places and summary (checks it)",
                     description="Read PLAN.json, refuse it if it was edited, and print "
                                 "SRC, DST, mode and objects/bytes per action.")
    sh.add_argument("plan", metavar="PLAN.json")
    sh.set_defaults(func=cmd_show)


def _catalog_id(cfg: Config) -> str | None:
    """The id of the config's catalog (the one `migrate run` records in), when it exists."""
    path = cfg.catalog_path()
    if not path.exists():
        return None
    from omnifs.catalog import Catalog

    cat = Catalog(path, create=False)
    try:
        return cat.catalog_id()
    finally:
        cat.close()


def _place(given: str, t: Target) -> Place:
    return Place(given=given, provider=t.provider.name, uri=t.provider.settings.uri, key=t.key)


def summary_lines(plan: MigrationPlan) -> list[str]:
    s = plan.summary
    out = [f"{action:9} {plural(s[action]['objects'], 'object'):>16}  "
           f"{human_bytes(s[action]['bytes'])}" for action in ACTIONS]
    if plan.mode == "move":
        ds = s["delete_source"]
        out.append(f"{'move':9} {plural(ds['objects'], 'object'):>16}  "
                   f"{human_bytes(ds['bytes'])} deleted from SRC once verified")
    e = plan.estimate
    if e is not None:
        out.append(f"estimated cost: {e['total']} {e['currency']} (source egress "
                   f"{e['source_egress']}, requests {e['source_requests']} + "
                   f"{e['destination_requests']}, retrieval {e['retrieval']}, early deletion "
                   f"{e['early_deletion']}, storage {e['destination_storage_per_month']}/month)")
    return out


def cmd_plan(args) -> int:
    out = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(out)):
        raise InvalidInput(f"cannot write plan {args.output}: no such directory")
    cfg = load_config(args.config, required=False)
    with Resolver(cfg) as r:
        src = r.resolve(args.src, local_paths=True)
        dst = r.resolve(args.dst, local_paths=True)
        filt = Filter(tuple(args.include), tuple(args.exclude))
        entries = plan_migration(src.provider, src.key, dst.provider, dst.key, mode=args.mode,
                                 filt=filt, delete=args.delete)
        plan = MigrationPlan(src=_place(args.src, src), dst=_place(args.dst, dst),
                             mode=args.mode, entries=entries, delete=args.delete,
                             include=filt.include, exclude=filt.exclude,
                             catalog_id=_catalog_id(cfg))
        try:
            plan.estimate = plan_estimate(plan.summary, src.provider.settings,
                                          dst.provider.settings, cfg.prices).as_dict()
        except InvalidInput as e:
            print(f"omnifs: no cost estimate: {e}", file=sys.stderr)
    try:
        plan.save(out)
    except OSError as e:
        raise InvalidInput(f"cannot write plan {args.output}: {e.strerror or e}") from None
    for line in summary_lines(plan):
        print(line)
    print(f"plan written to {args.output}")
    return 0


def cmd_show(args) -> int:
    plan = load(args.plan)
    print(f"{plan.mode} {plan.src.given} -> {plan.dst.given}"
          f"{' (with --delete)' if plan.delete else ''}, planned {plan.created}")
    for line in summary_lines(plan):
        print(line)
    return 0
