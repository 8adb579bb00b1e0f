"""``omnifs dr backup``, ``list``, ``prune``, ``keygen``: taking and keeping backups."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from omnifs.errors import InvalidInput
from omnifs.units import human_bytes

from . import Progress, config, specs, step_parser


def add_steps(cmds: argparse._SubParsersAction) -> None:
    p = step_parser(cmds, "backup", help="take a backup now",
                        description="A catalog snapshot plus the content the target lacks, "
                                    "content-addressed by SHA-256 and checked as written.")
    p.add_argument("--now", action="store_true", required=True,
                   help="run it now (the daemon runs backups on their schedule)")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.set_defaults(func=cmd_backup)

    p = step_parser(cmds, "list", help="list the backups and restorable points")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.set_defaults(func=cmd_list)

    p = step_parser(cmds, "prune", help="forget backups past retention, delete unneeded content")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would go")
    p.set_defaults(func=cmd_prune)

    p = step_parser(cmds, "keygen", help="write a new random key file for encrypted backups")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_keygen)


def cmd_backup(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import backup, state
    from omnifs.mountfs.mount import open_stores

    from ..catalog import existing_catalog

    cfg = config(args)
    chosen = specs(cfg, args.target, True)
    path = cfg.catalog_target()
    existing_catalog(path, "nothing to back up").close()
    stores = open_stores(cfg)
    try:
        for spec in chosen:
            target = state.open_target(spec)
            progress = Progress(f"backup {spec.name}")
            try:
                done = backup.run(path, stores.by_name, target, name=spec.name,
                                  paths=list(spec.paths), progress=progress)
            finally:
                progress.end()
                target.provider.close()
            cat = Catalog(path)
            try:
                state.record(cat, state.BACKUP_PREFIX, spec.name,
                             {"id": done.id, "at": done.at, "files": done.files,
                              "bytes_new": done.bytes_new, "seconds": done.seconds})
            finally:
                cat.close()
            print(f"backup {done.id} to {spec.name}: {done.files} files, "
                  f"{human_bytes(done.bytes_total)}; new {done.objects_new} objects, "
                  f"{human_bytes(done.bytes_new)}; {done.seconds:.1f} s")
            for p, why in done.left_out.items():
                print(f"omnifs: left out {p}: {why}", file=sys.stderr)
    finally:
        stores.close()
    return 0


def cmd_list(args) -> int:
    from omnifs.dr import state, versions
    from omnifs.dr.when import fmt

    cfg = config(args)
    for spec in specs(cfg, args.target, True):
        target = state.open_target(spec)
        try:
            found = target.backups()
            kept = versions.kept_versions(target, time.time())
        finally:
            target.provider.close()
        print(f"{spec.name} ({spec.settings.uri}{'/' + spec.root if spec.root else ''}):")
        if not found:
            print("  no backups yet")
        print(f"  {'id':<24} {'time':<24} {'files':>8} {'new':>10} {'total':>10}")
        for b in found:
            print(f"  {b.id:<24} {fmt(b.at):<24} {_n(b.files):>8} "
                  f"{_b(b.bytes_new):>10} {_b(b.bytes_total):>10}")
        if kept:
            print(f"  and {len(kept)} versions kept between backups ([dr] keep_versions_for), "
                  f"replaced from {fmt(min(v.replaced_at for v in kept))} to "
                  f"{fmt(max(v.replaced_at for v in kept))}: restorable with --at")
    return 0


def _n(v: int | None) -> str:
    return "?" if v is None else str(v)


def _b(v: int | None) -> str:
    return "?" if v is None else human_bytes(v)


def cmd_prune(args) -> int:
    from omnifs.dr import prune, state

    cfg = config(args)
    for spec in specs(cfg, args.target, True):
        target = state.open_target(spec)
        try:
            done = prune.prune(target, spec.retention, dry_run=args.dry_run)
        finally:
            target.provider.close()
        verb = "would forget" if args.dry_run else "forgot"
        print(f"{spec.name}: kept {len(done.kept)} backups, {verb} {len(done.forgotten)}; "
              f"{'would delete' if args.dry_run else 'deleted'} {done.objects_deleted} objects "
              f"({human_bytes(done.bytes_deleted)})")
        if done.note:
            print(f"omnifs: {spec.name}: {done.note}", file=sys.stderr)
    return 0


def cmd_keygen(args) -> int:
    from omnifs.dr import crypto

    path = Path(args.file).expanduser()
    try:
        crypto.new_key_file(path)
    except FileExistsError:
        raise InvalidInput(f"{path} exists: a key is never overwritten (backups made with it "
                           "could no longer be read)") from None
    except OSError as e:
        raise InvalidInput(f"{path}: {e.strerror}") from None
    print(f"wrote a new key to {path}: keep a copy apart from the stores, without it the "
          "backups cannot be read")
    return 0
