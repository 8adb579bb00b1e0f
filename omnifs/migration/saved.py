"""Keeping a destination object a run is about to replace or delete (the CONTRACT with
rollback), and keeping a migration to one runner at a time.

Before ``migrate run`` overwrites or deletes a destination object, it copies
the old one within the destination store to
``<destination tree>/.omnifs/migrations/<migration id>/<key in the tree>``
(:func:`omnifs.migration.sides.saved_key`) and records
``saved = "copy:<that key>"`` on the item, committed before the destination
changes. ``migrate rollback`` puts it back from there; ``migrate finalize``
may remove it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from omnifs.providers import InvalidInput, NotFound, Provider

from ..copy_options import Options, retrying
from .sides import saved_key

if TYPE_CHECKING:
    from omnifs.catalog import Catalog


def keep_old(dst: Provider, dst_prefix: str, mid: str, rel: str,
             options: Options) -> str | None:
    """Copy the destination's current object at ``rel`` (in the tree at ``dst_prefix``)
    aside; the item's ``saved`` value.

    None when there is no object to keep (it went away since planning).
    """
    dst_key = dst_prefix + rel
    key = saved_key(dst_prefix, mid, rel)
    try:
        retrying(lambda: dst.copy(dst_key, key, None), options)
    except NotFound:
        return None
    return f"copy:{key}"


@contextlib.contextmanager
def one_runner(cat: Catalog, mid: str) -> Iterator[None]:
    """Hold migration ``mid`` for this process: a second run of the same plan at the same
    time (on any host sharing the catalog) would copy objects twice, so it is refused in
    one line. Released when the process dies (:meth:`Catalog.held`), so kill -9 leaves
    nothing to clean up.
    """
    with cat.held(f"migrate-{mid}") as mine:
        if not mine:
            raise InvalidInput(f"migration {mid} is being run by another process: wait for "
                               "it, or stop it and run the plan again")
        yield
