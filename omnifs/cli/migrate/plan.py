"""``omnifs migrate plan`` and ``omnifs migrate show``: what a migration would do, priced.

``migrate plan SRC DST -o PLAN.json`` lists both trees, diffs them
(:mod:`omnifs.migration.plan`) and writes the plan file
(:mod:`omnifs.migration.planfile`); it changes nothing in either store. On
stdout: objects and bytes per action, the cost estimate and the time estimate
(:mod:`omnifs.migration.speed`: throughput recorded in the catalog's health
samples, else measured by a bounded probe of both stores, which ``--no-probe``
skips). ``--since OLD.json`` reuses the checksums an older plan of the same
SRC and DST recorded for source objects that have not changed since, so fewer
objects are headed. ``migrate show PLAN.json`` prints that
again from the file, after checking it was not edited. Bad input (SRC = DST, overlapping
trees, an unknown provider or URI) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from omnifs.providers import InvalidInput

from ...config import Config, load_config
from ...migration import timing
from ...migration.costing import plan_estimate
from ...migration.plan import ACTIONS, MODES, Reused, plan_migration
from ...migration.planfile import MigrationPlan, Place, load
from ...migration.speed import time_estimate
from ...migration.timing import DEFAULT_PARALLEL
from ...sync_plan import Filter
from ...targets import Resolver, Target
from ...tree_copy import dir_prefix
from ...units import human_bytes, plural
from . import step_parser

if TYPE_CHECKING:
    from omnifs.catalog import Catalog

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
    pl.add_argument("--since", metavar="OLD.json",
                    help="an older plan of the same SRC and DST: reuse the checksums it "
                         "recorded for source objects unchanged since (fewer heads)")
    pl.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
                    help=f"the run's parallelism the time estimate assumes ({DEFAULT_PARALLEL})")
    pl.add_argument("--no-probe", action="store_true",
                    help="never measure the stores' throughput: estimate time only from "
                         "figures the catalog recorded")
    pl.set_defaults(func=cmd_plan)
    sh = step_parser(steps, "show", help="print a plan file's places and summary (checks it)",
                     description="Read PLAN.json, refuse it if it was edited, and print "
                                 "SRC, DST, mode and objects/bytes per action.")
    sh.add_argument("plan", metavar="PLAN.json")
    sh.set_defaults(func=cmd_show)


@contextlib.contextmanager
def _catalog(cfg: Config) -> Iterator[Catalog | None]:
    """The config's catalog (the one `migrate run` records in) when it exists; none is made."""
    target = cfg.catalog_target()
    if not isinstance(target, str) and not target.exists():
        yield None
        return
    from omnifs.catalog import Catalog

    cat = Catalog(target, create=False)
    try:
        yield cat
    finally:
        cat.close()


def _old_plan(path: str, src: Target, dst: Target) -> MigrationPlan:
    """The ``--since`` plan: valid, and for the same SRC and DST (else one line)."""
    old = load(path)
    for side, place, t in (("SRC", old.src, src), ("DST", old.dst, dst)):
        if (place.uri, place.key) != (t.provider.settings.uri, t.key):
            raise InvalidInput(f"{path} is a plan for another {side} ({place.given}); "
                               "--since needs a plan of the same SRC and DST")
    return old


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
    if plan.time_estimate is not None:
        out.append(timing.line(timing.TimeEstimate.from_dict(plan.time_estimate)))
    return out


def cmd_plan(args) -> int:
    out = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(out)):
        raise InvalidInput(f"cannot write plan {args.output}: no such directory")
    if args.parallel < 1:
        raise InvalidInput(f"--parallel {args.parallel}: must be at least 1")
    cfg = load_config(args.config, required=False)
    notes: list[str] = []
    with Resolver(cfg) as r, _catalog(cfg) as cat:
        src = r.resolve(args.src, local_paths=True)
        dst = r.resolve(args.dst, local_paths=True)
        since = _old_plan(args.since, src, dst) if args.since else None
        filt = Filter(tuple(args.include), tuple(args.exclude))
        reused = Reused()
        entries = plan_migration(src.provider, src.key, dst.provider, dst.key, mode=args.mode,
                                 filt=filt, delete=args.delete,
                                 since=since.entries if since else None, reused=reused)
        plan = MigrationPlan(src=_place(args.src, src), dst=_place(args.dst, dst),
                             mode=args.mode, entries=entries, delete=args.delete,
                             include=filt.include, exclude=filt.exclude,
                             catalog_id=cat.catalog_id() if cat is not None else None)
        try:
            plan.estimate = plan_estimate(plan.summary, src.provider.settings,
                                          dst.provider.settings, cfg.prices).as_dict()
        except InvalidInput as e:
            print(f"omnifs: no cost estimate: {e}", file=sys.stderr)
        timed = time_estimate(entries, plan.summary, src.provider, dir_prefix(src.key),
                              dst.provider, dir_prefix(dst.key), cat=cat, probe=not args.no_probe,
                              parallel=args.parallel)
        if timed.estimate is not None:
            plan.time_estimate = timed.estimate.as_dict()
        elif timed.missing:
            print(f"omnifs: {timed.missing}", file=sys.stderr)
        else:
            notes.append(timed.note or "")
    if since is not None:
        notes.append(f"reused the checksums of {plural(reused.checksums, 'unchanged object')} "
                     f"from {args.since} ({plural(reused.heads_saved, 'source head')} saved)")
    try:
        plan.save(out)
    except OSError as e:
        raise InvalidInput(f"cannot write plan {args.output}: {e.strerror or e}") from None
    for line in summary_lines(plan) + notes:
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
