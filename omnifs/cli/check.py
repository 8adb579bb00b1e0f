"""check: compare the catalog with what every store holds (like `rclone check`, `juicefs fsck`).

Each store is listed once and every replica the catalog says it holds is
compared with the listing (:mod:`omnifs.scrub`, the comparison the daemon
runs every ``reconcile_interval``): missing, extra, wrong-size and wrong-hash
objects. ``--verify`` also reads every object back and hashes it. Exit 0
when everything matches, 1 on any difference or a store that could not be
checked, 2 on bad input.

``--repair`` treats the catalog as the truth: missing and wrong replicas are
marked pending and copies from good replicas are queued (the daemon or
``omnifs replicate --now`` runs them). Extra objects are never touched, and a
store whose bucket is gone is only reported: omnifs does not create buckets.
"""

from __future__ import annotations

import argparse
import json

from .. import scrub
from ..catalog import Catalog
from ..config import load_config
from ..errors import InvalidInput
from ..scrub import Scope, StoreReport

ORDER = 32

#: problem lines printed before "... and N more"
SHOWN = 50


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="compare the catalog with every store: missing, extra, wrong objects",
        description="List each store once and compare it with the catalog (no request per "
                    "object). Exit 0 when everything matches, 1 on a difference.")
    p.add_argument("path", nargs="?", default="", metavar="PATH",
                   help="check only this file or directory of the namespace (default: all)")
    p.add_argument("--provider", "-p", metavar="NAME", help="check only this store")
    p.add_argument("--verify", action="store_true",
                   help="also read every object back and check its SHA-256 (reads every byte)")
    p.add_argument("--checkers", type=int, default=4, metavar="N",
                   help="objects read back at once with --verify (default: %(default)s)")
    p.add_argument("--repair", action="store_true",
                   help="mark missing and wrong replicas and queue copies from good ones "
                        "(the daemon or `omnifs replicate --now` runs them)")
    p.add_argument("--json", action="store_true", help="everything found, machine-readable")
    p.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    from omnifs.providers import NotFound, open_provider

    cfg = load_config(args.config)
    if args.provider is not None and args.provider not in cfg.providers:
        raise InvalidInput(f"no provider named {args.provider!r} in {cfg.path or 'the config'} "
                           f"(configured: {', '.join(cfg.providers) or 'none'})")
    if args.checkers < 1:
        raise InvalidInput(f"--checkers must be at least 1, got {args.checkers}")
    path = cfg.catalog_target()
    if not isinstance(path, str) and not path.exists():
        raise InvalidInput(f"no catalog at {path}: nothing to check yet (mount once, or run "
                           "`omnifs import`)")
    names = [args.provider] if args.provider else list(cfg.providers)
    cat = Catalog(path)
    try:
        try:
            scope = scrub.scope_of(cat, args.path)
        except NotFound:
            raise InvalidInput(f"{args.path}: not in the namespace") from None
        reports = []
        for name in names:
            provider = open_provider(cfg.providers[name])
            try:
                reports.append(scrub.scrub_store(cat, provider, scope,
                                                 verify_workers=args.checkers if args.verify else 0,
                                                 mark_verified=args.repair))
            finally:
                provider.close()
        problems = [p for r in reports for p in r.problems]
        scrub.fill_paths(cat, problems)
        fixed = None
        if args.repair:
            listed = [p for r in reports if not r.root_missing for p in r.problems]
            fixed = scrub.repair(cat, listed)
            if scope == Scope():
                for r in reports:
                    scrub.record(cat, r, "check")
    finally:
        cat.close()
    clean = all(r.clean for r in reports)
    if args.json:
        out = {"clean": clean, "path": scope.path, "verify": args.verify,
               "stores": [r.summary() for r in reports],
               "problems": [p.as_dict() for p in problems],
               "repair": None if fixed is None else {
                   "queued": fixed.queued, "skipped": fixed.skipped,
                   "unrepairable": [p.as_dict() for p in fixed.unrepairable]}}
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        _print(reports, problems, fixed, cfg)
    return 0 if clean else 1


def _print(reports: list[StoreReport], problems, fixed, cfg) -> None:
    width = max(len(r.provider) for r in reports)
    for r in reports:
        kind = cfg.providers[r.provider].uri.split(":", 1)[0]
        print(f"{r.provider:<{width}}  {kind:<5} {_store_line(r)}")
    for p in problems[:SHOWN]:
        print(p.describe())
    if len(problems) > SHOWN:
        print(f"... and {len(problems) - SHOWN} more (--json lists them all)")
    counts = dict.fromkeys(scrub.KINDS, 0)
    for p in problems:
        counts[p.kind] += 1
    claims = sum(r.claims for r in reports)
    unchecked = [r for r in reports if r.error and not r.root_missing]
    found = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    stores = f"{len(reports)} store{'s' if len(reports) != 1 else ''}"
    if not problems and not unchecked:
        print(f"clean: {stores}, {claims} replica{'s' if claims != 1 else ''} match the catalog")
    else:
        print(f"{stores}, {claims} replicas: {found or 'no difference found'}"
              + (f"; {len(unchecked)} store(s) not checked" if unchecked else ""))
    if fixed is not None:
        print(f"repair: {fixed.queued} cop{'y' if fixed.queued == 1 else 'ies'} queued (the "
              "daemon or `omnifs replicate --now` makes them)"
              + (f"; {fixed.skipped} changed since the check, left alone" if fixed.skipped
                 else ""))
        for p in fixed.unrepairable:
            print(f"cannot repair {p.path or p.key} on {p.provider}: no good replica left")
    if counts[scrub.EXTRA]:
        print("extra objects are left alone: `omnifs import` adds them to the namespace")
    for r in reports:
        if r.root_missing:
            print(f"{r.provider}: omnifs does not create buckets: create it, then run "
                  "`omnifs check --repair` (or let the daemon restore the copies)")


def _store_line(r: StoreReport) -> str:
    if r.root_missing:
        return f"{r.error}: all {r.claims} replicas there are missing"
    if r.error:
        return f"not checked: {r.error}"
    line = f"{r.claims} replicas, {r.listed} objects listed; "
    if r.method == "size":
        line += "compared by size only (its listing carries no SHA-256"
        line += ")" if r.verified else "; --verify reads the bytes)"
    elif r.method == "-":
        line += "nothing to compare"
    elif r.by_size:
        line += f"compared by sha256, {r.by_size} by size only (no SHA-256 metadata)"
    else:
        line += "compared by sha256"
    if r.verified or r.unverifiable:
        line += f"; {r.verified} read back and hashed"
        if r.unverifiable:
            line += f", {r.unverifiable} without a SHA-256 in the catalog"
    return line
