"""init, ls, stat, cat, put, rm: one object at a time, on any store."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omnifs.providers import META_MTIME, META_SHA256, InvalidInput, NotFound, ObjectInfo
from omnifs.providers.base import guess_content_type

from ..config import ConfigError, default_config_text, load_config
from ..targets import Resolver
from ..units import human_bytes

ORDER = 10
CHUNK = 4 * 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init",
                       help="write a commented default omnifs.toml (no cloud account needed)")
    p.add_argument("--data-dir", default=".omnifs-data",
                   help="where the default local stores, catalog and cache live "
                        "(default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("ls", help="list objects under a URI or NAME:/path")
    p.add_argument("target", metavar="URI")
    p.add_argument("-r", "--recursive", action="store_true", help="list the whole tree")
    p.add_argument("-l", "--long", action="store_true", help="size, mtime and key")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("stat", help="show one object's size, checksums, metadata and tier")
    p.add_argument("target", metavar="URI")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("cat", help="stream an object to stdout")
    p.add_argument("target", metavar="URI")
    p.add_argument("--range", metavar="START-END", help="bytes START to END-1 only")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("put", help="upload a local file (or - for stdin) to a URI")
    p.add_argument("source", metavar="FILE")
    p.add_argument("target", metavar="URI",
                   help="destination key; a trailing / appends the file name")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("rm", help="delete an object (or a tree with -r)")
    p.add_argument("target", metavar="URI")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="delete every object under the prefix")
    p.set_defaults(func=cmd_rm)


def resolver(args) -> Resolver:
    return Resolver(load_config(args.config, required=False))


def cmd_init(args) -> int:
    path = Path(args.config or os.environ.get("OMNIFS_CONFIG") or "omnifs.toml")
    if path.exists() and not args.force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    data_dir = Path(args.data_dir)
    for sub in ("store-a", "store-b", "cache"):  # private: the umask is 077 (omnifs.private)
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    if data_dir.resolve() not in (Path.cwd().resolve(), Path.home().resolve(), Path("/")):
        data_dir.chmod(0o700)  # it may exist already (by hand, an older `make run`)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_config_text(data_dir))
    path.chmod(0o600)
    load_config(path)  # what we write must load
    print(f"wrote {path} (two local stores under {data_dir.resolve()})")
    return 0


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_ls(args) -> int:
    with resolver(args) as r:
        t = r.resolve(args.target)
        prefix = t.key
        if prefix and not prefix.endswith("/"):
            # a single object, or a "directory"
            try:
                info = t.provider.head(prefix)
            except NotFound:
                prefix += "/"
            else:
                _print_entry(info, args.long, "")
                return 0
        found = False
        for info in t.provider.list(prefix, recursive=args.recursive):
            found = True
            _print_entry(info, args.long, prefix)
        if not found and prefix:
            raise NotFound("no such object or prefix", provider=t.provider.name, key=t.key)
    return 0


def _print_entry(info: ObjectInfo, long: bool, prefix: str) -> None:
    name = info.key.removeprefix(prefix)
    if long:
        size = "DIR" if info.is_prefix else str(info.size)
        print(f"{size:>14}  {_fmt_time(info.mtime) if not info.is_prefix else '-':19}  {name}")
    else:
        print(name)


def cmd_stat(args) -> int:
    with resolver(args) as r:
        t = r.resolve(args.target)
        info = t.provider.head(t.key)
    doc: dict[str, Any] = {"provider": t.provider.name, "key": info.key, "size": info.size,
           "mtime": info.mtime, "last_modified": info.last_modified, "etag": info.etag,
           "version": info.version, "sha256": info.sha256, "checksums": info.checksums,
           "tier": info.tier, "content_type": info.content_type, "metadata": info.metadata}
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for k, v in doc.items():
            if k in ("mtime", "last_modified"):
                v = _fmt_time(v)
            print(f"{k + ':':15} {v if v not in (None, {}) else '-'}")
    return 0


def _parse_range(text: str | None) -> tuple[int, int | None]:
    if not text:
        return 0, None
    start, _, end = text.partition("-")
    try:
        return int(start or 0), int(end) if end else None
    except ValueError:
        raise InvalidInput(f"--range {text!r}: write START-END in bytes, e.g. 0-1024") from None


def cmd_cat(args) -> int:
    start, end = _parse_range(args.range)
    with resolver(args) as r:
        t = r.resolve(args.target)
        out = sys.stdout.buffer
        with t.provider.open_read(t.key, start, end) as f:
            shutil.copyfileobj(f, out, CHUNK)
        out.flush()
    return 0


def file_metadata(path: str) -> tuple[dict[str, str], int]:
    """SHA-256 and mtime of a local file, as the metadata every omnifs object carries."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
        size = f.tell()
    return {META_SHA256: h.hexdigest(), META_MTIME: repr(os.stat(path).st_mtime)}, size


def cmd_put(args) -> int:
    with resolver(args) as r:
        t = r.resolve(args.target)
        key = t.key
        if not key or key.endswith("/"):
            if args.source == "-":
                raise InvalidInput("put from stdin needs a full destination key, not a prefix")
            key += os.path.basename(args.source)
        started = time.monotonic()
        if args.source == "-":
            info = t.provider.write(key, sys.stdin.buffer, None, {META_MTIME: repr(time.time())})
        else:
            try:
                meta, size = file_metadata(args.source)
            except OSError as e:
                raise InvalidInput(f"{args.source}: {e.strerror}") from None
            # the source's name first (`put report.pdf s3://b/latest`); else the key's
            ctype = guess_content_type(args.source)
            with open(args.source, "rb") as f:
                info = t.provider.write(key, f, size, meta, ctype)
        took = time.monotonic() - started
    if sys.stderr.isatty():
        print(f"{human_bytes(info.size)} -> {t.provider.name}:/{key} in {took:.2f}s",
              file=sys.stderr)
    return 0


def cmd_rm(args) -> int:
    with resolver(args) as r:
        t = r.resolve(args.target)
        if not args.recursive:
            t.provider.head(t.key)  # say "not found" rather than silently succeed
            t.provider.delete(t.key)
            return 0
        prefix = t.key if not t.key or t.key.endswith("/") else t.key + "/"
        n = 0
        for info in t.provider.list(prefix, recursive=True):
            t.provider.delete(info.key)
            n += 1
        if n == 0:
            raise NotFound("nothing to delete under this prefix", provider=t.provider.name,
                           key=t.key)
    return 0
