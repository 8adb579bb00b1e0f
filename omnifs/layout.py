"""How the namespace is laid out in every store, in one place.

A file ``/a/b.txt`` is the object ``a/b.txt`` under the provider's prefix,
carrying its SHA-256 and mtime as user metadata so other tools and a fresh
catalog can verify and rebuild; omnifs's own objects live under
``RESERVED_PREFIX``, which the namespace never shows. The mount (writing),
the executor of queued work (copying, moving) and the importer and
reconciler (reading back) must agree on all of this, so none of them spells
it out on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from providers import META_MTIME, META_SHA256, RESERVED_PREFIX, ObjectInfo, Provider


def object_meta(sha256: str | None, mtime_ns: int) -> dict[str, str]:
    """The user metadata every object omnifs writes carries."""
    meta = {META_MTIME: f"{mtime_ns / 1e9:.9f}"}
    if sha256:
        meta[META_SHA256] = sha256
    return meta


def orphan_key(ino: int) -> str:
    """Where the bytes of an unlinked-but-open file wait when their key is reused."""
    return f"{RESERVED_PREFIX}orphans/{ino}"


def visible_objects(provider: Provider) -> Iterator[ObjectInfo]:
    """Every object of the namespace a store holds: no prefixes, no bookkeeping."""
    for info in provider.list("", recursive=True):
        if info.key and not info.is_prefix and not info.key.startswith(RESERVED_PREFIX):
            yield info
