"""``omnifs dr ...``: backups to other stores, point-in-time restores, pruning and drills.

The work is in omnifs/dr/ (one module per step); this module parses the
options, opens the config's stores and the backup target, shows progress and
turns the outcome into lines and an exit status (docs/dr.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from omnifs.errors import InvalidInput
from omnifs.progress import human_bytes

ORDER = 60


def register(sub: argparse._SubParsersAction) -> None:
    dr = sub.add_parser("dr", help="disaster recovery: backups, restores, drills",
                        description="Deduplicated backups of the namespace to other stores "
                                    "([[dr.backups]] in config), point-in-time restores, "
                                    "retention and drills. See docs/dr.md.")
    cmds = dr.add_subparsers(dest="dr_command", metavar="STEP", required=True)

    p = cmds.add_parser("backup", help="take a backup now",
                        description="A catalog snapshot plus the content the target lacks, "
                                    "content-addressed by SHA-256 and checked as written.")
    p.add_argument("--now", action="store_true", required=True,
                   help="run it now (the daemon runs backups on their schedule)")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.set_defaults(func=cmd_backup)

    p = cmds.add_parser("list", help="list the backups and restorable points")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("restore", help="restore a file, a tree or everything as it was",
                        description="Restore PATH (default: everything) as it was at TIME, "
                                    "into DIR (each entry under its full path) or in place "
                                    "through the running mount (as new versions).")
    p.add_argument("--at", required=True, metavar="TIME",
                   help="2026-12-07T02:30:00Z, \"2h ago\", a backup id, or latest")
    p.add_argument("--path", "-p", default="/", metavar="P", help="a file or tree (default: /)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR", help="restore under this local directory")
    where.add_argument("--in-place", action="store_true",
                       help="restore through this namespace's running mount")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would be restored")
    p.add_argument("--delete", action="store_true",
                   help="also remove what is under PATH there but was not in the backup")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.set_defaults(func=cmd_restore)

    p = cmds.add_parser("prune", help="forget backups past retention, delete unneeded content")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: all)")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would go")
    p.set_defaults(func=cmd_prune)

    p = cmds.add_parser("drill", help="restore into scratch, verify, measure the RTO, report")
    p.add_argument("--at", default="latest", metavar="TIME", help="which point (default: latest)")
    p.add_argument("--sample", metavar="N%", help="restore only this share of the files")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.add_argument("--scratch", metavar="DIR", help="restore here (default: a temporary "
                                                    "directory beside the cache, removed after)")
    p.add_argument("--report", "-o", metavar="FILE",
                   help="write the report here (.md, .html or .json)")
    p.set_defaults(func=cmd_drill)

    p = cmds.add_parser("failover", help="a store is lost: restore copies without it",
                        description="Mark the store lost (no new replicas there), then give "
                                    "every file it held `copies` replicas again, from the "
                                    "surviving replicas, else from the backups.")
    p.add_argument("--from", dest="lost", required=True, metavar="P", help="the lost store")
    p.add_argument("--to", metavar="Q", help="put the new copies here first")
    p.add_argument("--target", "-t", metavar="NAME",
                   help="the [[dr.backups]] to restore only-copies from (default: first)")
    p.add_argument("--report", "-o", metavar="FILE", help="write a report (.md, .html, .json)")
    p.set_defaults(func=cmd_failover)

    p = cmds.add_parser("failback", help="a lost store is back: verify it, then use it again")
    p.add_argument("store", metavar="P")
    p.set_defaults(func=cmd_failback)

    p = cmds.add_parser("catalog", help="the catalog host is lost: rebuild from a backup",
                        description="Fill an empty catalog with the catalog of a backup, then "
                                    "settle it with what the stores hold now (as omnifs import "
                                    "does with a snapshot). Mount afterwards.")
    p.add_argument("--at", default="latest", metavar="TIME", help="which backup (default: "
                                                                  "latest)")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.set_defaults(func=cmd_catalog)

    p = cmds.add_parser("keygen", help="write a new random key file for encrypted backups")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_keygen)


def _config(args):
    from omnifs.config import load_config

    return load_config(args.config)


def _specs(cfg, name: str | None, all_by_default: bool):
    if name is None and all_by_default:
        return list(cfg.dr.backups) or [cfg.dr.backup(None)]
    return [cfg.dr.backup(name)]


class _Progress:
    """A one-line counter on a terminal; nothing otherwise."""

    def __init__(self, what: str) -> None:
        self.what, self.on, self.last = what, sys.stderr.isatty(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.on and (now - self.last > 0.2 or done == total):
            self.last = now
            print(f"\r{self.what}: {human_bytes(done)} / {human_bytes(total)}", end="",
                  file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.on:
            print(file=sys.stderr)


def cmd_backup(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import backup, state
    from omnifs.mountfs.mount import open_stores

    cfg = _config(args)
    specs = _specs(cfg, args.target, True)
    path = cfg.catalog_path()
    if not path.exists():
        raise InvalidInput(f"no catalog at {path}: nothing to back up")
    stores = open_stores(cfg)
    try:
        for spec in specs:
            target = state.open_target(spec)
            progress = _Progress(f"backup {spec.name}")
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

    cfg = _config(args)
    for spec in _specs(cfg, args.target, True):
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


def _mountpoint(cfg) -> Path:
    from omnifs.mounts import FSTYPE, mounts

    want = os.path.abspath(cfg.path) if cfg.path else None
    for m in reversed(mounts()):
        if m.fstype == FSTYPE and m.source == want:
            return Path(m.mountpoint)
    raise InvalidInput("--in-place: this namespace is not mounted here; mount it "
                       "(omnifs mount DIR) or restore --to DIR")


def cmd_restore(args) -> int:
    from omnifs.dr import restore, state
    from omnifs.dr.config import normalize_path
    from omnifs.dr.versions import kept_versions, overlay
    from omnifs.dr.when import fmt, parse_time, pick

    cfg = _config(args)
    spec = cfg.dr.backup(args.target)
    at = parse_time(args.at)
    path = normalize_path(args.path)
    dest = _mountpoint(cfg) if args.in_place else Path(args.to)
    target = state.open_target(spec)
    try:
        chosen = pick(target.backups(), at)
        manifest = restore.load_manifest(target, chosen.id)
        kept = kept_versions(target, time.time())
        if kept:  # [dr] keep_versions_for: the changes since that backup, up to --at
            manifest = overlay(manifest, kept, at)
        unchanged = _live_shas(cfg, manifest.select(path)) if args.in_place else None
        progress = _Progress("restore")
        try:
            done = restore.restore(manifest, target, dest, path=path, dry_run=args.dry_run,
                                   progress=progress, delete=args.delete,
                                   unchanged=(lambda e, _w: unchanged.get(e.path) == e.sha256)
                                   if unchanged is not None else None)
        finally:
            progress.end()
    finally:
        target.provider.close()
    if args.dry_run:
        for action, p, size in done.plan:
            print(f"{action:<12} {p}" + (f"  ({human_bytes(size)})" if size else ""))
        print(f"would restore {done.files} files, {human_bytes(done.bytes)} from backup "
              f"{chosen.id} ({fmt(chosen.at)}) into {dest}")
        return 0
    print(f"restored {done.files} files ({human_bytes(done.bytes)}, "
          f"{human_bytes(int(done.throughput))}/s), {done.dirs} directories, {done.others} "
          f"other entries from backup {chosen.id} ({fmt(chosen.at)}) into {dest}"
          + (f"; {done.unchanged} files already as they were" if done.unchanged else "")
          + (f"; {done.deleted} entries not in the backup removed" if done.deleted else "")
          + "; every file verified against its SHA-256")
    for p, why in sorted(done.failed.items()):
        print(f"omnifs: not restored: {p}: {why}", file=sys.stderr)
    return 1 if done.failed else 0


def _live_shas(cfg, entries) -> dict[str, str | None]:
    """path -> SHA-256 of the file the live catalog has there now (in-place restores)."""
    from omnifs.catalog import Catalog
    from omnifs.errors import NotFound

    cat = Catalog(cfg.catalog_path(), create=False)
    out: dict[str, str | None] = {}
    try:
        for e in entries:
            if e.kind != "file":
                continue
            try:
                inode = cat.ns.resolve(e.path)
            except NotFound:
                continue
            if inode.kind == "file" and inode.size == e.size and not inode.staged:
                out[e.path] = inode.sha256
    finally:
        cat.close()
    return out


def cmd_prune(args) -> int:
    from omnifs.dr import prune, state

    cfg = _config(args)
    for spec in _specs(cfg, args.target, True):
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


def cmd_drill(args) -> int:
    from omnifs.dr import drill

    cfg = _config(args)
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


def cmd_failover(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import failover, state
    from omnifs.mountfs.mount import open_stores

    cfg = _config(args)
    if args.lost not in cfg.providers:
        raise InvalidInput(f"--from {args.lost}: not a provider of this config "
                           f"({', '.join(cfg.providers)})")
    if args.to is not None and (args.to not in cfg.providers or args.to == args.lost):
        raise InvalidInput(f"--to {args.to}: must be another provider of this config")
    target = state.open_target(cfg.dr.backup(args.target)) if cfg.dr.backups else None
    stores = open_stores(cfg)
    cat = Catalog(cfg.catalog_path(), create=False)
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

    cfg = _config(args)
    if args.store not in cfg.providers:
        raise InvalidInput(f"{args.store}: not a provider of this config")
    p = open_provider(cfg.providers[args.store])
    cat = Catalog(cfg.catalog_path(), create=False)
    try:
        failover.failback(cat, p)
    finally:
        cat.close()
        p.close()
    print(f"{args.store} verified (written, read back, deleted) and takes new replicas again; "
          "the daemon restores its share of copies as placement chooses it")
    return 0


def cmd_catalog(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.dr import restore, state
    from omnifs.dr.when import fmt, parse_time, pick
    from omnifs.importer import import_stores
    from omnifs.mountfs.mount import open_stores

    cfg = _config(args)
    spec = cfg.dr.backup(args.target)
    path = cfg.catalog_path()
    cat = Catalog(path)
    try:
        if not cat.is_empty():
            raise InvalidInput(f"the catalog at {path} already holds a tree: move it aside "
                               "first (this rebuilds a lost one)")
        target = state.open_target(spec)
        try:
            chosen = pick(target.backups(), parse_time(args.at))
            found = restore.restore_catalog(cat, target, chosen.id)
        finally:
            target.provider.close()
        stores = open_stores(cfg)
        try:
            result = import_stores(cat, stores.by_name, cfg, restored_at=chosen.at)
        finally:
            stores.close()
    finally:
        cat.close()
    print(f"catalog of backup {chosen.id} ({fmt(chosen.at)}, {found['inodes']} entries) "
          f"restored into {path} and settled with the stores")
    for line in result.errors:
        print(f"omnifs: {line}", file=sys.stderr)
    return 1 if result.errors else 0
