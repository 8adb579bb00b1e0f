"""``omnifs dr ...``: backups to other stores, point-in-time restores, pruning, drills,
failover; one module per group of steps, each adding its steps with ``add_steps(cmds)``:

* :mod:`.backups`: ``dr backup``, ``list``, ``prune``, ``keygen``;
* :mod:`.restores`: ``dr restore`` (to a directory, in place, or into a store), ``catalog``;
* :mod:`.recovery`: ``dr drill``, ``failover``, ``failback``.

The work is in omnifs/dr/; these modules parse the options, open the
config's stores and the backup target, show progress and turn the outcome
into lines and an exit status (docs/dr.md).
"""

from __future__ import annotations

import argparse
import sys
import time

from omnifs.units import human_bytes

ORDER = 60


def register(sub: argparse._SubParsersAction) -> None:
    from . import backups, recovery, restores

    dr = sub.add_parser("dr", help="disaster recovery: backups, restores, drills",
                        description="Deduplicated backups of the namespace to other stores "
                                    "([[dr.backups]] in config), point-in-time restores, "
                                    "retention and drills. See docs/dr.md.")
    cmds = dr.add_subparsers(dest="dr_command", metavar="STEP", required=True)
    for module in (backups, restores, recovery):
        module.add_steps(cmds)


def step_parser(cmds: argparse._SubParsersAction, name: str, **kw) -> argparse.ArgumentParser:
    """A step's parser, accepting ``--config`` after the step as well."""
    p = cmds.add_parser(name, **kw)
    p.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                   help="config file (see `omnifs --help`)")
    return p


def config(args):
    from omnifs.config import load_config

    return load_config(args.config)


def specs(cfg, name: str | None, all_by_default: bool):
    if name is None and all_by_default:
        return list(cfg.dr.backups) or [cfg.dr.backup(None)]
    return [cfg.dr.backup(name)]


class Progress:
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
