"""``omnifs dr drill``, ``failover``, ``failback``: proving restores work, and losing a store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omnifs.errors import InvalidInput

from . import config, step_parser


def add_steps(cmds: argparse._SubParsersAction) -> None:
    p = step_parser(cmds, "drill", help="restore into scratch, verify, measure the RTO, report")
    p.add_argument("--at", default="latest", metavar="TIME", help="which point (default: latest)")
    p.add_argument("--sample", metavar="N%", help="restore only this share of the files")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.add_argument("--scratch", metavar="DIR", help="restore here (default: a temporary "
                                                    "directory beside the cache, removed after)")
    p.add_argument("--report", "-o", metavar="FILE",
                   help="write the report here (.md, .html or .json)")
    p.set_defaults(func=cmd_drill)

    p = step_parser(cmds, "failover", help="a store is lost: restore copies without it",
                        description="Mark the store lost (no new replicas there), then give "
                                    "every file it held `copies` replicas again, from the "
                                    "surviving replicas, else from the backups.")
    p.add_argument("--from", dest="lost", required=True, metavar="P", help="the lost store")
    p.add_argument("--to", metavar="Q", help="put the new copies here first")
    p.add_argument("--target", "-t", metavar="NAME",
                   help="the [[dr.backups]] to restore only-copies from (default: first)")
    p.add_argument("--report", "-o", metavar="FILE", help="write a report (.md, .html, .json)")
    p.set_defaults(func=cmd_failover)

    p = step_parser(cmds, "failback", help="a lost store is back: verify it, then use it again")
    p.add_argument("store", metavar="P")
    p.set_defaults(func=cmd_failback)


def cmd_drill(args) -> int:
    from omnifs.dr import drill

    cfg = config(args)
    spec = cfg.dr.backup(args.target)
    sample = _percent(args.sample) if args.sample else 100.0
    outcome = drill.run_drill(cfg, spec, at=args.at, sample=sample,
                              scratch=Path(args.scratch) if args.scratch else None,
                              report_path=Path(args.report) if args.report else None)
    print(outcome.line)
    for p, why in sorted(outcome.failed.items())[:20]:
        print(f"omnifs: drill: {p}: {why}", file=sys.stderr)
    return 0 if outcome.ok else 1


def _percent(text: str) -> float:
    try:
        v = float(text.rstrip("%"))
    except ValueError:
        v = -1
    if not 0 < v <= 100:
        raise InvalidInput(f"--sample {text!r}: expected a share such as 10%")
    return v


def cmd_failover(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import failover, state
    from omnifs.mountfs.mount import open_stores

    cfg = config(args)
    if args.lost not in cfg.providers:
        raise InvalidInput(f"--from {args.lost}: not a provider of this config "
                           f"({', '.join(cfg.providers)})")
    if args.to is not None and (args.to not in cfg.providers or args.to == args.lost):
        raise InvalidInput(f"--to {args.to}: must be another provider of this config")
    target = state.open_target(cfg.dr.backup(args.target)) if cfg.dr.backups else None
    stores = open_stores(cfg)
    cat = Catalog(cfg.catalog_target(), create=False)
    try:
        survivors = {n: p for n, p in stores.by_name.items() if n != args.lost}
        done = failover.failover(cat, survivors, args.lost, copies=cfg.copies, to=args.to,
                                 target=target)
    finally:
        cat.close()
        stores.close()
        if target is not None:
            target.provider.close()
    print(f"failover from {args.lost}: {done.files} files re-homed in {done.seconds:.1f} s: "
          f"{done.from_replicas} copies from surviving replicas, {done.from_backup} from "
          f"backups; {len(done.short)} short of copies, {len(done.gone)} lost")
    for p in done.gone:
        print(f"omnifs: lost, no copy and no backup: {p}", file=sys.stderr)
    for p, why in sorted(done.short.items()):
        print(f"omnifs: short of copies: {p}: {why}", file=sys.stderr)
    if args.report:
        from omnifs.dr.reports import failover_report
        from omnifs.report.output import write

        path = Path(args.report)
        write(failover_report(done, cfg.copies), path.suffix.lstrip(".") or "md", path)
    return 1 if done.gone or done.short else 0


def cmd_failback(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import failover
    from omnifs.providers import open_provider

    cfg = config(args)
    if args.store not in cfg.providers:
        raise InvalidInput(f"{args.store}: not a provider of this config")
    p = open_provider(cfg.providers[args.store])
    cat = Catalog(cfg.catalog_target(), create=False)
    try:
        failover.failback(cat, p)
    finally:
        cat.close()
        p.close()
    print(f"{args.store} verified (written, read back, deleted) and takes new replicas again; "
          "the daemon restores its share of copies as placement chooses it")
    return 0
