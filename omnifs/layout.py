"""How the namespace is laid out in every store, in one place.

A file ``/a/b.txt`` is the object ``a/b.txt`` under the provider's prefix,
carrying its SHA-256 and mtime as user metadata so other tools and a fresh
catalog can verify and rebuild; omnifs's own objects live under
``RESERVED_PREFIX``, which the namespace never shows. The mount (writing),
the executor of queued work (copying, moving) and the importer and
reconciler (reading back) must agree on all of this, so none of them spells
it out on its own.

Long paths. A path that cannot be a key on a store (longer than the store
takes with its prefix, ``Provider.key_limit``, or not valid UTF-8) is kept
under a fallback key instead: ``.omnifs/long/<SHA-256 of the path's bytes>``
(:func:`object_key`, the one function that says which key a path has on a
provider; publish, queued moves and renames, and the replicator all ask it).
The catalog's replica row holds that key, as for any file. The object
carries the real path in its user metadata, ``omnifs_path`` (the path's
bytes percent-encoded, so any store takes it), when it fits the store's
metadata limit; where it does not, a sidecar object ``<key>.path`` holds the
path's raw bytes. :func:`long_objects` reads both back, for ``omnifs import``
and ``omnifs check``. The same path always gets the same key, on every store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import quote, unquote_to_bytes

from providers import META_MTIME, META_SHA256, RESERVED_PREFIX, ObjectInfo, Provider
from providers.errors import NotFound

#: where files whose paths cannot be keys live
LONG_PREFIX = f"{RESERVED_PREFIX}long/"
#: user metadata of a long-path object: its path, percent-encoded
META_PATH = "omnifs_path"
#: a long-path object's sidecar (when its path does not fit the metadata): ``<key>.path``
SIDECAR_SUFFIX = ".path"


def object_meta(sha256: str | None, mtime_ns: int) -> dict[str, str]:
    """The user metadata every object omnifs writes carries."""
    meta = {META_MTIME: f"{mtime_ns / 1e9:.9f}"}
    if sha256:
        meta[META_SHA256] = sha256
    return meta


def orphan_key(ino: int) -> str:
    """Where the bytes of an unlinked-but-open file wait when their key is reused."""
    return f"{RESERVED_PREFIX}orphans/{ino}"


def _path_bytes(path: str) -> bytes:
    """A catalog path's bytes as the user named them (names that are not UTF-8 included)."""
    return path.encode("utf-8", "surrogateescape")


def long_key(path: str) -> str:
    """The fallback key of ``path``: the same on every store."""
    return LONG_PREFIX + hashlib.sha256(_path_bytes(path.lstrip("/"))).hexdigest()


def is_long_key(key: str) -> bool:
    return key.startswith(LONG_PREFIX) and not key.endswith(SIDECAR_SUFFIX)


def object_key(provider: Provider, path: str) -> str:
    """The key ``path``'s bytes have on ``provider``: the path, or its :func:`long_key`."""
    path = path.lstrip("/")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:  # a name that is not UTF-8: no store takes it as a key
        return long_key(path)
    return path if size <= provider.key_limit() else long_key(path)


def _meta_size(meta: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())


def placed_meta(provider: Provider, key: str, path: str,
                meta: dict[str, str]) -> tuple[dict[str, str], bytes | None]:
    """(metadata, sidecar bytes or None) of an object at ``key`` holding ``path``'s bytes.

    A long key's object names its path in its metadata when that fits the
    store, else in a sidecar (:func:`write_sidecar`); a plain key's object
    never carries a path (the key is the path).
    """
    meta = {k: v for k, v in meta.items() if k != META_PATH}
    if not is_long_key(key):
        return meta, None
    raw = _path_bytes(path.lstrip("/"))
    named = {**meta, META_PATH: quote(raw, safe="/")}
    if _meta_size(named) <= provider.capabilities.max_metadata_bytes:
        return named, None
    return meta, raw


def write_sidecar(provider: Provider, key: str, sidecar: bytes | None) -> None:
    if sidecar is not None:
        provider.write_bytes(key + SIDECAR_SUFFIX, sidecar, content_type="application/octet-stream")


def delete_object(provider: Provider, key: str) -> None:
    """Delete an object omnifs wrote, with its sidecar if it is a long-path object."""
    provider.delete(key)
    if is_long_key(key):
        provider.delete(key + SIDECAR_SUFFIX)


def copy_object_to(provider: Provider, src_key: str, dst_key: str, dst_path: str) -> ObjectInfo:
    """Server-side copy of an object to the key of ``dst_path``, its path metadata following.

    Plain keys on both sides: a plain copy (metadata kept). A long key on
    either side: the source's metadata with the new path (or a sidecar).
    """
    if not (is_long_key(src_key) or is_long_key(dst_key)):
        return provider.copy(src_key, dst_key, None)
    meta, sidecar = placed_meta(provider, dst_key, dst_path, provider.head(src_key).metadata)
    info = provider.copy(src_key, dst_key, meta)
    write_sidecar(provider, dst_key, sidecar)
    return info


def long_path(provider: Provider, info: ObjectInfo) -> str | None:
    """The path a long-path object holds the bytes of, from its metadata or sidecar."""
    quoted = info.metadata.get(META_PATH) if info.metadata_known else None
    if quoted is None and not info.metadata_known:
        quoted = provider.head(info.key).metadata.get(META_PATH)
    if quoted is not None:
        raw = unquote_to_bytes(quoted)
    else:
        try:
            raw = provider.read_bytes(info.key + SIDECAR_SUFFIX)
        except NotFound:
            return None
    path = raw.decode("utf-8", "surrogateescape")
    return path if long_key(path) == info.key else None  # a stray or damaged one: not ours


def long_objects(provider: Provider) -> Iterator[tuple[ObjectInfo, str]]:
    """Every long-path object of a store with its path (``omnifs import``, ``omnifs check``)."""
    for info in provider.list(LONG_PREFIX, recursive=True):
        if info.is_prefix or not is_long_key(info.key):
            continue
        path = long_path(provider, info)
        if path is not None:
            yield info, path


def visible_objects(provider: Provider) -> Iterator[ObjectInfo]:
    """Every object of the namespace a store holds: no prefixes, no bookkeeping."""
    for info in provider.list("", recursive=True):
        if info.key and not info.is_prefix and not info.key.startswith(RESERVED_PREFIX):
            yield info
