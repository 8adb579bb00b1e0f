"""``omnifs cp`` and ``omnifs sync``: the transfer engine on the command line.

Output contract: the progress bar only on a terminal (or ``--progress=bar``),
JSON lines on stdout with ``--progress=json``, the ``--dry-run`` plan on
stdout, and on stderr one summary line plus one line per failed object.
Exit 0 only when every object arrived and verified.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from omnifs.providers import InvalidInput, NotFound

from ..config import load_config
from ..progress import JsonLines, RichBar, Stats, summary_line
from ..sync_plan import Filter
from ..targets import Resolver
from ..transfer import Options, Result, copy_object, copy_tree
from ..tree_copy import dir_prefix
from ..usage_log import recording
from .gov import gate

ORDER = 20

EXIT_FAILED = 1


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC",
                   help="s3://, gs://, az://, minio://, file:// URI, NAME:/path or a local path")
    p.add_argument("dst", metavar="DST", help="destination URI, NAME:/path or local path")
    p.add_argument("--transfers", type=_positive, default=4, metavar="N",
                   help="objects in parallel (4)")
    p.add_argument("--checkers", type=_positive, default=8, metavar="N",
                   help="parallel metadata checks and deletes (8)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="copy only keys matching (repeatable; ** crosses /)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip keys matching")
    p.add_argument("--keep-tier", action="store_true",
                   help="give copies the source's storage tier, or the destination's tier of "
                        "the same access class (S3 STANDARD_IA = GCS NEARLINE = Azure Cool)")
    p.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto",
                   help="auto: a bar on a terminal, nothing otherwise")
    p.add_argument("--hash-mode", choices=("auto", "prepass", "record"), default="auto",
                   help="a big source without a recorded SHA-256: hash it in a first read "
                        "(prepass), or have the destination copy the object onto itself with "
                        "the hash afterwards (record; no second read of the source); auto picks "
                        "the cheaper for the two stores")
    p.add_argument("--no-server-side", action="store_true", help=argparse.SUPPRESS)


def register(sub) -> None:
    cp = sub.add_parser("cp", help="copy an object, or a tree with -r, between any two stores",
                        description="Copy between stores. With -r, objects already present "
                                    "and equal at the destination are skipped.")
    _common(cp)
    cp.add_argument("-r", "--recursive", action="store_true", help="copy everything under SRC")
    cp.add_argument("--dry-run", action="store_true",
                    help="print the plan, change nothing (with -r)")
    cp.set_defaults(func=run_cp)

    sy = sub.add_parser("sync",
                        help="make DST hold what SRC holds (only missing or different objects)",
                        description="Equality: size + SHA-256 from metadata, else native "
                                    "checksums, else size + mtime.")
    _common(sy)
    sy.add_argument("--delete", action="store_true", help="remove objects under DST that SRC lacks")
    sy.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sy.set_defaults(func=run_sync)


def _options(args) -> Options:
    return Options(transfers=args.transfers, checkers=args.checkers, keep_tier=args.keep_tier,
                   server_side=not args.no_server_side, hash_mode=args.hash_mode)


@contextlib.contextmanager
def _progress(args, description: str):
    mode = args.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    if mode == "json":
        yield JsonLines(sys.stdout)
    elif mode == "bar":
        with RichBar(description) as bar:
            yield bar
    else:
        yield None


def _report(result: Result) -> int:
    for f in result.failures:
        print(f"omnifs: failed: {f}", file=sys.stderr)
    print(f"omnifs: {summary_line(result.stats)}", file=sys.stderr)
    return 0 if result.ok else EXIT_FAILED


def _tree(args, delete: bool) -> int:
    config = load_config(args.config, required=False)
    with Resolver(config) as r, recording(_catalog(config)):
        src, dst = r.resolve(args.src, local_paths=True), r.resolve(args.dst, local_paths=True)
        filt = Filter(tuple(args.include), tuple(args.exclude))
        if config.governance.engine.rules and not args.dry_run:
            planned = copy_tree(src.provider, src.key, dst.provider, dst.key,
                                options=_options(args), filt=filt, delete=delete, dry_run=True)
            assert planned.plan is not None
            gate(config, dst.provider.name,
                 [dir_prefix(dst.key) + a.rel for a in planned.plan.copies], args.command)
        with _progress(args, "sync" if delete else "copy") as cb:
            result = copy_tree(src.provider, src.key, dst.provider, dst.key, options=_options(args),
                               filt=filt, delete=delete, dry_run=args.dry_run, progress=cb)
        if args.dry_run:
            assert result.plan is not None
            for line in result.plan.lines():
                print(line)
            return 0
        return _report(result)


def _catalog(config):
    """The config's catalog, where the copy's store requests are recorded (if it exists)."""
    return config.catalog_target() if config.path is not None else None


def run_sync(args) -> int:
    return _tree(args, delete=args.delete)


def run_cp(args) -> int:
    if args.recursive:
        return _tree(args, delete=False)
    if args.include or args.exclude:
        raise InvalidInput("--include/--exclude need -r (or use sync)")
    if args.dry_run:
        raise InvalidInput("--dry-run needs -r (or use sync)")
    config = load_config(args.config, required=False)
    with Resolver(config) as r, recording(_catalog(config)):
        src, dst = r.resolve(args.src, local_paths=True), r.resolve(args.dst, local_paths=True)
        if not src.key or src.key.endswith("/"):
            raise InvalidInput(f"{args.src} names a prefix, not an object: use cp -r")
        dst_key = dst.key
        if not dst_key or dst_key.endswith("/"):
            dst_key += src.key.rsplit("/", 1)[-1]
        gate(config, dst.provider.name, [dst_key], "cp")
        try:
            info = src.provider.head(src.key)
        except NotFound:
            raise NotFound("no such object (use cp -r for a prefix)", provider=src.provider.name,
                           key=src.key) from None
        with _progress(args, "copy") as cb:
            stats = Stats(cb)
            stats.planned(1, info.size)
            result = Result()
            try:
                copy_object(src.provider, src.key, dst.provider, dst_key, options=_options(args),
                            stats=stats, src_info=info)
                stats.done(src.key)
                result.copied.append(src.key)
            except Exception:
                stats.fail(src.key)
                raise
            finally:
                stats.end()
            result.stats = stats.snapshot()
        return _report(result)
