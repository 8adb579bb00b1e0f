"""``omnifs dr restore`` and ``dr catalog``: a file, a tree, everything, or the catalog,
as it was."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from omnifs.errors import InvalidInput
from omnifs.units import human_bytes

from . import Progress, config, step_parser


def add_steps(cmds: argparse._SubParsersAction) -> None:
    p = step_parser(cmds, "restore", help="restore a file, a tree or everything as it was",
                        description="Restore PATH (default: everything) as it was at TIME, "
                                    "into DIR (each entry under its full path), into an empty "
                                    "store (objects and a catalog snapshot: `omnifs import` "
                                    "over it gives the tree) or in place through the running "
                                    "mount (as new versions).")
    p.add_argument("--at", required=True, metavar="TIME",
                   help="2026-12-07T02:30:00Z, \"2h ago\", a backup id, or latest")
    p.add_argument("--path", "-p", default="/", metavar="P", help="a file or tree (default: /)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR|STORE",
                       help="restore under this local directory, or into an empty store (URI "
                            "or NAME:/path) as a namespace `omnifs import` turns back into the "
                            "tree")
    where.add_argument("--in-place", action="store_true",
                       help="restore through this namespace's running mount")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would be restored")
    p.add_argument("--delete", action="store_true",
                   help="also remove what is under PATH there but was not in the backup")
    p.add_argument("--force", action="store_true",
                   help="--to STORE: write into it even though it holds objects already")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.set_defaults(func=cmd_restore)

    p = step_parser(cmds, "catalog", help="the catalog host is lost: rebuild from a backup",
                        description="Fill an empty catalog with the catalog of a backup, then "
                                    "settle it with what the stores hold now (as omnifs import "
                                    "does with a snapshot). Mount afterwards.")
    p.add_argument("--at", default="latest", metavar="TIME", help="which backup (default: "
                                                                  "latest)")
    p.add_argument("--target", "-t", metavar="NAME", help="which [[dr.backups]] (default: first)")
    p.set_defaults(func=cmd_catalog)


def cmd_restore(args) -> int:
    from omnifs.dr import restore, state
    from omnifs.dr.config import normalize_path
    from omnifs.dr.versions import kept_versions, overlay
    from omnifs.dr.when import fmt, parse_time, pick

    cfg = config(args)
    spec = cfg.dr.backup(args.target)
    at = parse_time(args.at)
    path = normalize_path(args.path)
    into_store = not args.in_place and _is_store(args.to)
    if into_store and args.delete:
        raise InvalidInput("--delete: a restore into a store goes into an empty one; "
                           "there is nothing to remove")
    if args.force and not into_store:
        raise InvalidInput("--force is for --to STORE (a store that is not empty)")
    target = state.open_target(spec)
    try:
        chosen = pick(target.backups(), at)
        manifest = restore.load_manifest(target, chosen.id)
        kept = kept_versions(target, time.time())
        if kept:  # [dr] keep_versions_for: the changes since that backup, up to --at
            manifest = overlay(manifest, kept, at)
        if into_store:
            return _restore_to_store(cfg, target, chosen, manifest, path, args)
        dest = _mountpoint(cfg) if args.in_place else Path(args.to)
        unchanged = _live_shas(cfg, manifest.select(path)) if args.in_place else None
        progress = Progress("restore")
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
        return _print_plan(done, chosen, str(dest))
    print(f"restored {done.files} files ({human_bytes(done.bytes)}, "
          f"{human_bytes(int(done.throughput))}/s), {done.dirs} directories, {done.others} "
          f"other entries from backup {chosen.id} ({fmt(chosen.at)}) into {dest}"
          + (f"; {done.unchanged} files already as they were" if done.unchanged else "")
          + (f"; {done.deleted} entries not in the backup removed" if done.deleted else "")
          + "; every file verified against its SHA-256")
    return _failures(done)


def _print_plan(done, chosen, dest: str) -> int:
    from omnifs.dr.when import fmt

    for action, p, size in done.plan:
        print(f"{action:<12} {p}" + (f"  ({human_bytes(size)})" if size else ""))
    print(f"would restore {done.files} files, {human_bytes(done.bytes)} from backup "
          f"{chosen.id} ({fmt(chosen.at)}) into {dest}")
    return 0


def _failures(done) -> int:
    for p, why in sorted(done.failed.items()):
        print(f"omnifs: not restored: {p}: {why}", file=sys.stderr)
    return 1 if done.failed else 0


def _mountpoint(cfg) -> Path:
    from omnifs.mounts import FSTYPE, mounts

    want = os.path.abspath(cfg.path) if cfg.path else None
    for m in reversed(mounts()):
        if m.fstype == FSTYPE and m.source == want:
            return Path(m.mountpoint)
    raise InvalidInput("--in-place: this namespace is not mounted here; mount it "
                       "(omnifs mount DIR) or restore --to DIR")


def _is_store(text: str) -> bool:
    """``s3://b/p`` or ``NAME:/p``: a store, not a local directory."""
    import re

    return "://" in text or re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*:/", text) is not None


def _restore_to_store(cfg, target, chosen, manifest, path: str, args) -> int:
    """Into a fresh store: objects and a catalog snapshot, so an import gives the tree."""
    from omnifs.dr import fresh, restore
    from omnifs.dr.when import fmt
    from omnifs.targets import Resolver

    where = args.to
    with Resolver(cfg) as r:
        dst = r.resolve(where)
        # a store of this namespace: only an empty one (one that replaces a lost store)
        live = dst.provider.name in cfg.providers
        if live and dst.key.strip("/"):
            raise InvalidInput(f"{where}: a prefix inside {dst.provider.name}, a store of this "
                               "namespace (its files would show in the mount): restore into a "
                               "store of its own")
        store = fresh.rooted(dst.provider, dst.key)
        try:
            if not args.force or live:
                fresh.check_empty(store, where, force=not live)
            if args.dry_run:
                done = restore.restore(manifest, target, Path("."), path=path, dry_run=True)
                return _print_plan(done, chosen, where)
            progress = Progress("restore")
            try:
                done = fresh.restore_to_store(manifest, target, store, path=path,
                                              progress=progress)
            finally:
                progress.end()
        finally:
            if store is not dst.provider:
                store.close()
    print(f"restored {done.files} files ({human_bytes(done.bytes)}, "
          f"{human_bytes(int(done.throughput))}/s), {done.dirs} directories, {done.others} "
          f"other entries from backup {chosen.id} ({fmt(chosen.at)}) into {where}; every file "
          "verified against its SHA-256")
    if done.failed:
        print("omnifs: no catalog snapshot written (files failed): an import of this store "
              "would not give the whole tree; run the restore again", file=sys.stderr)
    else:
        print(f"catalog snapshot {done.snapshot} written beside them: `omnifs import` over "
              "this store (or a mount on a new catalog) brings back the tree with its "
              "directories, modes, owners, times, symlinks, hard links and xattrs")
    return _failures(done)


def _live_shas(cfg, entries) -> dict[str, str | None]:
    """path -> SHA-256 of the file the live catalog has there now (in-place restores)."""
    from omnifs.catalog import Catalog
    from omnifs.errors import NotFound

    cat = Catalog(cfg.catalog_target(), create=False)
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


def cmd_catalog(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.catalog.backend import describe
    from omnifs.dr import restore, state
    from omnifs.dr.when import fmt, parse_time, pick
    from omnifs.importer import import_stores
    from omnifs.mountfs.mount import open_stores

    cfg = config(args)
    spec = cfg.dr.backup(args.target)
    cat = Catalog(cfg.catalog_target())
    path = describe(cat.target)
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
