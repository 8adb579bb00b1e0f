"""``omnifs migrate provider OLD NEW``: swap a store under a live mount.

Every file gets a synced replica on NEW, then OLD's replicas leave the
catalog (``--delete-old``: and OLD's objects, each once the file's NEW copy
is verified); :mod:`omnifs.migration.swap` says how. Mounts and the daemon go
on reading and writing meanwhile: OLD is marked draining in the catalog, so
nothing places a new replica there. Rerunning the command resumes a run that
was stopped or killed; ``--abort`` stops the swap and lets OLD take new
replicas again. Bad input (OLD = NEW, a name not in the config, too few
stores left for ``copies``, NEW not answering) is one line, and nothing
changes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from omnifs.providers import RESERVED_PREFIX, NotFound, open_provider
from omnifs.providers.errors import InvalidInput, OmnifsError, Unavailable

from ...catalog import Catalog
from ...config import Config, load_config
from ...migration.swap import Swap, SwapStats, abort
from ...policy.placement import rules_from_config
from ...units import human_bytes, plural
from . import step_parser

ORDER = 50

#: failures printed before "... and N more"
SHOWN = 10
#: seconds between progress lines when stderr is not a terminal
EVERY = 2.0


def add_steps(steps: argparse._SubParsersAction) -> None:
    p = step_parser(
        steps, "provider",
        help="swap a store under a live mount: every file's replicas leave OLD for NEW",
        description="Give every file a synced replica on NEW, then drop OLD's replicas from "
                    "the catalog, while mounts keep reading and writing; OLD takes no new "
                    "replica meanwhile. Both must be in the config. Rerun to resume.")
    p.add_argument("old", metavar="OLD", help="the provider to empty (a configured name)")
    p.add_argument("new", metavar="NEW", help="the provider to fill (a configured name)")
    p.add_argument("--delete-old", action="store_true",
                   help="also delete each OLD object once the file's NEW copy is verified")
    p.add_argument("--parallel", type=int, default=4, metavar="N",
                   help="files handled at once (default: %(default)s)")
    p.add_argument("--abort", action="store_true",
                   help="stop swapping: OLD takes new replicas again (what moved stays)")
    p.set_defaults(func=cmd_provider)


def _check(cfg: Config, old: str, new: str, parallel: int) -> None:
    where = cfg.path or "the config"
    known = ", ".join(cfg.providers) or "none"
    if old == new:
        raise InvalidInput(f"OLD and NEW are both {old!r}: name the store to empty, then "
                           "the one to fill")
    for role, name in (("OLD", old), ("NEW", new)):
        if name not in cfg.providers:
            raise InvalidInput(f"{role}: no provider named {name!r} in {where} (configured: "
                               f"{known}); both stores must be configured during the swap")
    if parallel < 1:
        raise InvalidInput(f"--parallel must be at least 1, got {parallel}")
    left = len(cfg.providers) - 1
    if left < cfg.copies:
        raise InvalidInput(f"copies = {cfg.copies} needs {cfg.copies} stores besides {old}, "
                           f"and only {left} would be left: add a store or lower copies")


def _probe(provider, name: str) -> None:
    """NEW must answer before anything changes."""
    try:
        with contextlib.suppress(NotFound):
            provider.head(RESERVED_PREFIX + "health-probe")
    except OmnifsError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Unavailable(f"NEW store {name} does not answer ({first}); nothing was changed: "
                          "rerun when it is up") from None


def _progress_printer(old: str, new: str):
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(s: SwapStats, done: int, total: int) -> None:
        now = time.monotonic()
        if not tty and done < total and now - last[0] < EVERY:
            return
        last[0] = now
        line = (f"omnifs: {old} -> {new}: pass {s.passes}, {done}/{total} files, "
                f"{plural(s.copies, 'copy', 'copies')} ({human_bytes(s.bytes)}), "
                f"{s.dropped} dropped from {old}")
        if tty:
            print(f"\r{line}\033[K", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def cmd_provider(args) -> int:
    cfg = load_config(args.config)
    old, new = args.old, args.new
    _check(cfg, old, new, args.parallel)
    cat = Catalog(cfg.catalog_target(), create=False)
    try:
        if args.abort:
            left = abort(cat, old)
            print(f"swap of {old} aborted: it takes new replicas again; "
                  f"{plural(left, 'file')} still have a replica there")
            return 0
    finally:
        cat.close()
    providers = {name: open_provider(s) for name, s in cfg.providers.items()}
    try:
        _probe(providers[new], new)
        swap = Swap(cfg.catalog_target(), providers, old, new, copies=cfg.copies,
                    tables=cfg.provider_tables, rules=rules_from_config(cfg.governance_rules),
                    delete_old=args.delete_old, parallel=args.parallel,
                    progress=_progress_printer(old, new))
        stats = swap.run()
    finally:
        for p in providers.values():
            p.close()
    deleted = f", {plural(stats.deleted, 'object')} deleted" if args.delete_old else ""
    print(f"{old} -> {new}: {plural(stats.files, 'file')}, "
          f"{plural(stats.copies, 'copy', 'copies')} made ({human_bytes(stats.bytes)}), "
          f"{plural(stats.dropped, 'replica')} dropped from {old}{deleted}, "
          f"{plural(stats.passes, 'pass', 'passes')}")
    if not stats.left:
        print(f"{old} holds no replica any more: remove [providers.{old}] from the config "
              f"(until then it takes no new replica; --abort undoes that)")
        return 0
    print(f"omnifs: {plural(stats.left, 'file')} still have a replica on {old}; rerun to "
          "resume", file=sys.stderr)
    for path, err in list(stats.failures.items())[:SHOWN]:
        print(f"  {path}: {err}", file=sys.stderr)
    if len(stats.failures) > SHOWN:
        print(f"  ... and {len(stats.failures) - SHOWN} more", file=sys.stderr)
    return 1
