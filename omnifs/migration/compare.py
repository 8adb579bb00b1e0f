"""Does a destination object hold its source's bytes? The check a resumed item and a move's
source deletion rely on: equal size and equal SHA-256.

Each side's SHA-256 is the one recorded in its metadata (the copy engine records
it on every object it writes), or, where none is recorded, the hash of a full
read of the object: an object put there by another tool is read, never assumed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from omnifs.providers import NotFound, Provider

from ..copy_options import Options, retrying

#: count(side, kind, n): the usage counters of the run ("src"/"dst", "head_requests", ...)
Count = Callable[[str, str, int], None]


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
    want = have.sha256 or read_sha256(src, skey, options, count, "src")
    held = got.sha256 or read_sha256(dst, dkey, options, count, "dst")
    return True if held == want else "mismatch"


def read_sha256(p: Provider, key: str, options: Options, count: Count, side: str) -> str:
    """The SHA-256 of an object, by reading it whole (a transient error restarts the read)."""
    def once() -> str:
        h = hashlib.sha256()
        n = 0
        try:
            with p.open_read(key) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
        finally:
            count(side, "get_requests", 1)
            count(side, "bytes_out", n)
        return h.hexdigest()

    return retrying(once, options)
