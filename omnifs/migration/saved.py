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
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from omnifs.providers import InvalidInput, NotFound, Provider

from ..copy_options import Options, retrying
from .sides import saved_key


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
def one_runner(catalog: Path, mid: str) -> Iterator[None]:
    """Hold migration ``mid`` for this process: a second run of the same plan at the same
    time would copy objects twice, so it is refused in one line.

    A lock file beside the catalog, held with ``flock``: the kernel drops it
    when the process dies, so kill -9 leaves nothing to clean up.
    """
    path = catalog.parent / f".migrate-{mid}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"migration {mid} is being run by another process: wait for "
                               "it, or stop it and run the plan again") from None
        yield
    finally:
        os.close(fd)
