"""Does a destination object hold its source's bytes? The check a resumed item and a move's
source deletion rely on: equal size and equal SHA-256.

The destination's SHA-256 is the one the copy engine recorded in its metadata;
the source's is its own recorded one, or, for a source without one, the hash
of a full read of it (never trusted from the destination alone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from omnifs.providers import NotFound, Provider

from ..copy_options import Options, retrying

#: count(side, kind, n): the usage counters of the run ("src"/"dst", "head_requests", ...)
Count = Callable[[str, str, float], None]


def same_bytes(src: Provider, skey: str, dst: Provider, dkey: str, options: Options,
               count: Count) -> bool | str:
    """True when ``dst``'s ``dkey`` holds ``src``'s ``skey``, else "missing" or "mismatch"."""
    count("dst", "head_requests", 1)
    try:
        got = retrying(lambda: dst.head(dkey), options)
    except NotFound:
        return "missing"
    count("src", "head_requests", 1)
    have = retrying(lambda: src.head(skey), options)
    if got.size != have.size:
        return "mismatch"
    want = have.sha256 or source_sha256(src, skey, have.size, count)
    return True if got.sha256 == want else "mismatch"


def source_sha256(src: Provider, key: str, size: int, count: Count) -> str:
    """The SHA-256 of a source object, by reading it whole."""
    count("src", "get_requests", 1)
    count("src", "bytes_out", size)
    h = hashlib.sha256()
    f = src.open_read(key)
    try:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    finally:
        f.close()
    return h.hexdigest()
