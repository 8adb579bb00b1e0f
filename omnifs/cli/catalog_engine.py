"""``omnifs catalog migrate``: a catalog moved between engines (SQLite <-> PostgreSQL).

The copy and its verification are omnifs/catalog/engine_copy.py; here the
places are parsed and the result printed. Stop the mounts and daemons of the
source first: what they change during the copy is not carried over.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omnifs.errors import InvalidInput

ORDER = 36


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="the catalog's engine: move it between SQLite and "
                                       "PostgreSQL")
    steps = p.add_subparsers(dest="step", metavar="STEP", required=True)
    m = steps.add_parser(
        "migrate", help="copy a whole catalog to another engine, verified",
        description="Copy every table of the catalog at --from into --to (an empty catalog "
                    "unless --force), in one transaction, then verify the row counts of every "
                    "table and a checksum of the tree. Stop mounts and daemons first; then "
                    "point [catalog] url at the new place.")
    m.add_argument("--from", dest="src", required=True, metavar="URL",
                   help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    m.add_argument("--to", dest="dst", required=True, metavar="URL",
                   help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    m.add_argument("--force", action="store_true",
                   help="replace what the destination holds")
    m.set_defaults(func=cmd_migrate)


def place(url: str, flag: str) -> str | Path:
    """A catalog place as ``Catalog()`` takes it."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):]).expanduser().absolute()
    if url.startswith(("postgresql://", "postgres://")):
        return url
    raise InvalidInput(f"{flag}: sqlite:///PATH or postgresql://... expected, got {url!r}")


def cmd_migrate(args) -> int:
    from omnifs.catalog import Catalog
    from omnifs.catalog.backend import describe
    from omnifs.catalog.engine_copy import copy_catalog

    src_place, dst_place = place(args.src, "--from"), place(args.dst, "--to")
    if describe(src_place) == describe(dst_place):
        raise InvalidInput("--from and --to are the same catalog")
    src = Catalog(src_place, create=False)
    try:
        dst = Catalog(dst_place)
        try:
            copied = copy_catalog(src, dst, force=args.force)
        finally:
            dst.close()
    finally:
        src.close()
    total = sum(copied.rows.values())
    print(f"copied {total} rows in {len(copied.rows)} tables "
          f"({copied.rows.get('inodes', 0)} inodes) from {describe(src_place)} to "
          f"{describe(dst_place)} in {copied.seconds:.1f} s; row counts and tree checksum "
          f"{copied.checksum[:16]} verified", file=sys.stderr)
    return 0
