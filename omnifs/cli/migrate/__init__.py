"""``omnifs migrate``: moving a tree between stores in steps, one module per step.

Each module of this package adds its steps to the ``migrate`` group with
``add_steps(steps)`` (in ``ORDER``), each step with ``set_defaults(func=handler)``:

* :mod:`.plan`: ``migrate plan``, ``migrate show`` (what the migration would do, priced).
* :mod:`.run`: ``migrate run`` (carry out a plan; rerun to resume or retry what failed).
* :mod:`.check`: ``migrate verify``, ``rollback``, ``finalize`` (check, undo, accept a run).
* :mod:`.report`: ``migrate report`` (md, html or json: what the run did and what it cost).
* :mod:`.provider`: ``migrate provider OLD NEW`` (swap a store under a live mount).

Bad input (SRC = DST, overlapping trees, an edited plan, an unknown provider
or URI) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...config import Config, load_config
from ...migration.planfile import MigrationPlan, check_catalog, load

if TYPE_CHECKING:
    from omnifs.catalog import Catalog

ORDER = 25


def step_parser(steps: argparse._SubParsersAction, name: str, **kw) -> argparse.ArgumentParser:
    """A step's parser, accepting ``--config`` after the step as well."""
    p = steps.add_parser(name, **kw)
    # the CLI adds --config after first-level commands only; accept it after the step too
    p.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                   help="config file (see `omnifs --help`)")
    return p


@contextlib.contextmanager
def opened_plan(args, *, create_catalog: bool = False
                ) -> Iterator[tuple[Config, MigrationPlan, Catalog | None]]:
    """The config, the plan ``args.plan`` and the config's catalog, for every step.

    The catalog is the config's (with no config, ``./.omnifs-data/catalog.db``);
    None when it does not exist, unless ``create_catalog``. A plan that names
    another catalog is refused in one line.
    """
    cfg = load_config(args.config, required=False)
    plan = load(args.plan)
    path = cfg.catalog_target()
    cat = None
    if create_catalog or isinstance(path, str) or path.exists():
        from omnifs.catalog import Catalog

        cat = Catalog(path, create=create_catalog)
    try:
        if cat is not None:
            check_catalog(plan, args.plan, cat.catalog_id())
        yield cfg, plan, cat
    finally:
        if cat is not None:
            cat.close()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="move or copy a tree between stores: plan, then run",
                       description="Migrate a tree of objects from SRC to DST in steps.")
    steps = p.add_subparsers(dest="migrate_command", metavar="STEP")
    modules = [importlib.import_module(f"{__name__}.{m.name}")
               for m in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.add_steps(steps)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
