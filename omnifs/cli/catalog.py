"""``omnifs snapshot/dump/load``: the catalog copied to the stores, or to and from JSON.

``snapshot`` writes the catalog to every store now, as the daemon does on
its own (omnifs/snapshot.py); ``omnifs import`` restores the newest one.
``dump``/``load`` move a catalog through one JSON file (omnifs/catalog/portable.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

from omnifs.errors import InvalidInput
from omnifs.progress import human_bytes

ORDER = 35


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="write a snapshot of the catalog to every store now",
                       description="Write a compressed copy of the catalog under .omnifs/catalog/ "
                                   "in every store (the daemon does it on its own; see [daemon] "
                                   "snapshot_interval). `omnifs import` restores the newest.")
    p.add_argument("--list", action="store_true", help="list the snapshots the stores hold")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("dump", help="write the whole catalog as JSON",
                       description="The whole tree: attributes, symlinks, hard links, xattrs, "
                                   "versions, replicas and queued work, as one JSON document.")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("load", help="fill an empty catalog from `omnifs dump` JSON",
                       description="Load a dump into an empty catalog (nothing mounted on it); "
                                   "the row counts are verified, all or nothing.")
    p.add_argument("file", metavar="FILE", help="the dump ('-': stdin)")
    p.add_argument("--force", action="store_true",
                   help="replace a catalog that already holds a tree")
    p.set_defaults(func=cmd_load)


def _config(args):
    from omnifs.config import load_config

    return load_config(args.config)


def cmd_snapshot(args) -> int:
    from omnifs import snapshot
    from omnifs.mountfs.mount import open_stores

    cfg = _config(args)
    target = cfg.catalog_target()
    stores = open_stores(cfg)
    try:
        if args.list:
            found, errors = snapshot.find(stores.by_name)
            for s in found:
                when = datetime.fromtimestamp(s.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                entries = f"{s.inodes} entries" if s.inodes is not None else "? entries"
                print(f"{when}  {s.provider:<12} {human_bytes(s.size):>10}  {entries:<14} {s.host}")
            for name, err in errors.items():
                print(f"omnifs: {name}: {err}", file=sys.stderr)
            if not found:
                print("no catalog snapshots in the stores", file=sys.stderr)
            return 1 if errors else 0
        existing_catalog(target, "nothing to snapshot").close()
        taken = snapshot.take(target, stores.by_name)
    finally:
        stores.close()
    print(f"snapshot {taken.key} ({taken.inodes} entries, {human_bytes(taken.size)}) written to "
          f"{', '.join(taken.stored)} in {taken.seconds:.1f} s")
    for name, err in taken.failed.items():
        print(f"omnifs: not written to {name}: {err}", file=sys.stderr)
    return 1 if taken.failed else 0


def cmd_dump(args) -> int:
    from omnifs.catalog import portable

    cfg = _config(args)
    cat = existing_catalog(cfg.catalog_target(), "nothing to dump")
    try:
        if args.output and args.output != "-":
            tmp = f"{args.output}.tmp-{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with open(fd, "w", encoding="utf-8") as out:
                    found = portable.dump(cat, out)
                os.replace(tmp, args.output)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            print(f"dumped {_counts(found)} to {args.output}", file=sys.stderr)
        else:
            portable.dump(cat, sys.stdout)
    finally:
        cat.close()
    return 0


def cmd_load(args) -> int:
    from omnifs.catalog import Catalog, portable
    from omnifs.catalog.backend import describe

    cfg = _config(args)
    start = time.monotonic()
    try:
        if args.file == "-":
            data = json.load(sys.stdin)
        else:
            with open(args.file, encoding="utf-8") as f:
                data = json.load(f)
    except OSError as e:
        raise InvalidInput(f"{args.file}: {e.strerror}") from None
    except ValueError as e:
        raise InvalidInput(f"{args.file}: not JSON: {e}") from None
    cat = Catalog(cfg.catalog_target())
    try:
        got = portable.load(cat, data, force=args.force)
    finally:
        cat.close()
    print(f"loaded {_counts(got)} into {describe(cat.target)} in "
          f"{time.monotonic() - start:.1f} s (counts verified)")
    return 0


def existing_catalog(target, nothing: str):
    """The catalog at ``target`` opened; InvalidInput (``no catalog at ...: nothing``) when
    there is none."""
    from omnifs.catalog import Catalog, NoCatalog
    from omnifs.catalog.backend import describe

    try:
        return Catalog(target, create=False)
    except NoCatalog:
        raise InvalidInput(f"no catalog at {describe(target)}: {nothing}") from None


def _counts(found: dict[str, int]) -> str:
    names = {"inodes": "entries", "links": "hard links", "xattrs": "xattrs",
             "versions": "versions", "replicas": "replicas"}
    return ", ".join(f"{found.get(t, 0)} {label}" for t, label in names.items())
