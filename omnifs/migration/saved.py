"""Keeping a destination object a run is about to replace or delete (the CONTRACT with rollback).

Before ``migrate run`` overwrites or deletes a destination object, it copies
the old one within the destination store to
``.omnifs/migrations/<migration id>/<full destination key>`` and records
``saved = "copy:<that key>"`` on the item, committed before the destination
changes. ``migrate rollback`` puts it back from there; ``migrate finalize``
may remove it.
"""

from __future__ import annotations

from omnifs.providers import NotFound, Provider

from ..copy_options import Options, retrying
from .verify import saved_key


def keep_old(dst: Provider, mid: str, dst_key: str, options: Options) -> str | None:
    """Copy the destination's current ``dst_key`` aside; the item's ``saved`` value.

    None when there is no object to keep (it went away since planning).
    """
    key = saved_key(mid, dst_key)
    try:
        retrying(lambda: dst.copy(dst_key, key, None), options)
    except NotFound:
        return None
    return f"copy:{key}"
