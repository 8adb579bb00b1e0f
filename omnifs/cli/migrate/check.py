"""``omnifs migrate verify``, ``rollback`` and ``finalize``: check a run, undo it, accept it.

``verify PLAN.json`` reads every destination object the plan put there and
compares its SHA-256 with the source's (``--fast``: equal native checksums the
stores computed are enough); mismatches and missing objects are listed, one
line each, and make the exit status 1. It works from the plan file alone;
when the catalog records a run of the plan, the verdicts are stored per object.
``rollback PLAN.json`` returns the destination (and a move's source) to the
state before the run; ``finalize PLAN.json`` accepts the run, deletes the
copies saved for rollback, and makes rollback impossible. See
:mod:`omnifs.migration.verify` and :mod:`omnifs.migration.rollback`.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from omnifs.providers import InvalidInput

from ...migration.planfile import MigrationPlan
from ...migration.rollback import finalize, rollback
from ...migration.sides import open_sides
from ...migration.verify import verify
from ...targets import Resolver
from . import opened_plan, step_parser

if TYPE_CHECKING:
    from omnifs.catalog import Catalog

ORDER = 30


def _parallel(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError("between 1 and 256")
    return n


def add_steps(steps: argparse._SubParsersAction) -> None:
    v = step_parser(
        steps, "verify", help="check every destination object against its source",
        description="Read each object the plan put at the destination, hash it (SHA-256) and "
                    "compare with the source's; objects the plan deletes must be gone. "
                    "Mismatches are listed; exit status 1 when there is any.")
    v.add_argument("plan", metavar="PLAN.json")
    v.add_argument("--parallel", type=_parallel, default=8, metavar="N",
                   help="objects checked at once (8)")
    v.add_argument("--fast", action="store_true",
                   help="accept equal native checksums both stores computed (md5 of a "
                        "single-part upload, crc32c) instead of reading the bytes")
    v.set_defaults(func=cmd_verify)
    rb = step_parser(
        steps, "rollback", help="return the destination to its state before the run",
        description="Remove the objects the run created, restore the ones it overwrote or "
                    "deleted from the copies saved before, and for a move copy the sources "
                    "back first. Safe to run again; refused after finalize.")
    rb.add_argument("plan", metavar="PLAN.json")
    rb.add_argument("--parallel", type=_parallel, default=8, metavar="N",
                    help="objects undone at once (8)")
    rb.set_defaults(func=cmd_rollback)
    fz = step_parser(
        steps, "finalize", help="accept the run: delete the copies kept for rollback",
        description="Accept a finished run (for a move: every object verified), delete the "
                    "copies saved under .omnifs/migrations/ at the destination; afterwards "
                    "the run cannot be rolled back.")
    fz.add_argument("plan", metavar="PLAN.json")
    fz.add_argument("--force", action="store_true",
                    help="finalize although objects are still pending or failed")
    fz.set_defaults(func=cmd_finalize)


@contextlib.contextmanager
def _opened(args, *, need_catalog: bool) -> Iterator[tuple[MigrationPlan, Catalog | None,
                                                          Resolver]]:
    """The plan (checked against the catalog), the catalog or None, a resolver."""
    with opened_plan(args) as (cfg, plan, cat):
        if need_catalog and cat is None:
            raise InvalidInput("no catalog: no run of this plan is recorded")
        with Resolver(cfg) as r:
            yield plan, cat, r


def cmd_verify(args) -> int:
    with _opened(args, need_catalog=False) as (plan, cat, r):
        sides = open_sides(plan, r)
        result = verify(plan, sides, migrations=getattr(cat, "migrations", None),
                        parallel=args.parallel, fast=args.fast)
    for line in result.lines():
        print(line)
    return 1 if result.failed else 0


def cmd_rollback(args) -> int:
    with _opened(args, need_catalog=True) as (plan, cat, r):
        sides = open_sides(plan, r)
        assert cat is not None
        result = rollback(plan, sides, cat.migrations, parallel=args.parallel)
    for line in result.lines():
        print(line)
    return 1 if result.counts["failed"] else 0


def cmd_finalize(args) -> int:
    with _opened(args, need_catalog=True) as (plan, cat, r):
        sides = open_sides(plan, r)
        assert cat is not None
        removed = finalize(plan, sides, cat.migrations, force=args.force)
    print(f"finalized: {removed} saved cop{'ies' if removed != 1 else 'y'} deleted; "
          "the run can no longer be rolled back")
    return 0
