"""How the namespace is laid out in every store, in one place.

A file ``/a/b.txt`` is the object ``a/b.txt`` under the provider's prefix,
carrying in its user metadata what a fresh catalog needs to rebuild it: the
SHA-256 and mtime of its content, its mode, owner and group, the change time
those were taken at, and which inode of which catalog it belongs to (see
:func:`object_meta`). omnifs's own objects live under ``RESERVED_PREFIX``,
which the namespace never shows; catalog snapshots under
:data:`SNAPSHOT_PREFIX`. The mount (writing), the executor of queued work
(copying, moving) and the importer and reconciler (reading back) must agree
on all of this, so none of them spells it out on its own.

Metadata keys are lowercase ``[a-z0-9_]`` (Azure holds no ``-``) and short:
S3 allows 2 KiB of user metadata per object, keys and values together, and
:func:`object_meta` stays under 300 bytes (the path of a long-path object
aside, below).

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
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from omnifs.providers import META_MTIME, META_SHA256, RESERVED_PREFIX, ObjectInfo, Provider
from omnifs.providers.errors import NotFound

#: where files whose paths cannot be keys live
LONG_PREFIX = f"{RESERVED_PREFIX}long/"
#: user metadata of a long-path object: its path, percent-encoded
META_PATH = "omnifs_path"
#: a long-path object's sidecar (when its path does not fit the metadata): ``<key>.path``
SIDECAR_SUFFIX = ".path"

#: permission bits (setuid, setgid and sticky included), octal without a prefix: "644"
META_MODE = "omnifs_mode"
#: numeric owner and group, decimal
META_UID = "omnifs_uid"
META_GID = "omnifs_gid"
#: the file's ctime when the metadata was written (seconds, like META_MTIME): a fresh
#: catalog takes attributes from the object only when they are newer than its snapshot's
META_CTIME = "omnifs_ctime"
#: "<catalog id>:<inode>": the file the object belongs to, so an import recognises a
#: file that was renamed (its objects moved) after the catalog snapshot it restored
META_ORIGIN = "omnifs_origin"

#: where catalog snapshots live in every store (omnifs/snapshot.py)
SNAPSHOT_PREFIX = f"{RESERVED_PREFIX}catalog/"


@dataclass(frozen=True, slots=True)
class FileAttrs:
    """What an object's metadata says about its file, beyond the content."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    ctime_ns: int | None = None
    #: (catalog id, inode) from META_ORIGIN
    origin: tuple[str, int] | None = None


def object_meta(sha256: str | None, mtime_ns: int, attrs: FileAttrs | None = None
                ) -> dict[str, str]:
    """The user metadata every object omnifs writes carries."""
    meta = {META_MTIME: _seconds(mtime_ns)}
    if sha256:
        meta[META_SHA256] = sha256
    if attrs is not None:
        if attrs.mode is not None:
            meta[META_MODE] = f"{stat.S_IMODE(attrs.mode):o}"
        if attrs.uid is not None:
            meta[META_UID] = str(attrs.uid)
        if attrs.gid is not None:
            meta[META_GID] = str(attrs.gid)
        if attrs.ctime_ns is not None:
            meta[META_CTIME] = _seconds(attrs.ctime_ns)
        if attrs.origin is not None:
            meta[META_ORIGIN] = f"{attrs.origin[0]}:{attrs.origin[1]}"
    return meta


def file_attrs(inode, catalog_id: str | None, *, ctime_ns: int | None = None) -> FileAttrs:
    """The attributes of a catalog ``Inode`` for :func:`object_meta`."""
    return FileAttrs(mode=inode.mode, uid=inode.uid, gid=inode.gid,
                     ctime_ns=inode.ctime_ns if ctime_ns is None else ctime_ns,
                     origin=(catalog_id, inode.id) if catalog_id else None)


def attrs_of(info: ObjectInfo) -> FileAttrs:
    """What ``info``'s metadata says (fields it lacks, or holds garbage in, are None).

    The values come from a store, so each is checked: a mode is permission
    bits only, ids are 32-bit, never a file type or a negative number.
    """
    m = info.metadata
    mode = _number(m.get(META_MODE), 8, 0o7777)
    uid = _number(m.get(META_UID), 10, 2**32 - 2)
    gid = _number(m.get(META_GID), 10, 2**32 - 2)
    ctime_ns = _nanoseconds(m.get(META_CTIME))
    origin = None
    cid, sep, ino = (m.get(META_ORIGIN) or "").rpartition(":")
    if sep and cid and ino.isdigit():
        origin = (cid, int(ino))
    return FileAttrs(mode, uid, gid, ctime_ns, origin)


def mtime_ns_of(info: ObjectInfo) -> int | None:
    """The file's mtime in nanoseconds: ours from metadata (exact), else the store's."""
    ns = _nanoseconds(info.metadata.get(META_MTIME))
    if ns is None and info.last_modified is not None:
        ns = int(info.last_modified * 1e9)
    return ns


def namespace_key(key: str) -> bool:
    """Whether ``key`` is a file's path (plain layout), not one of omnifs's own objects."""
    return bool(key) and not key.startswith(RESERVED_PREFIX)


def namespace_path(info: ObjectInfo) -> str | None:
    """The namespace path an object holds a file for, or None for bookkeeping objects.

    The one place an object is mapped back to its file's path: objects
    stored under another key than their path say so here.
    """
    if info.is_prefix or not namespace_key(info.key):
        return None
    return info.key


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
        if namespace_path(info) is not None:
            yield info


def _seconds(ns: int) -> str:
    """Exact decimal seconds: a float would round nanoseconds away (``find -printf %T@``)."""
    sign = "-" if ns < 0 else ""
    whole, frac = divmod(abs(ns), 10**9)
    return f"{sign}{whole}.{frac:09d}"


def _nanoseconds(raw: str | None) -> int | None:
    """Inverse of :func:`_seconds`; also takes any float a foreign tool wrote."""
    if not raw:
        return None
    text = raw.strip()
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("+-").partition(".")
    if whole.isdigit() and (not frac or frac.isdigit()) and len(frac) <= 9:
        return sign * (int(whole) * 10**9 + int((frac or "0").ljust(9, "0")))
    try:
        return int(float(text) * 1e9)
    except ValueError:
        return None


def _number(raw: str | None, base: int, top: int) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw, base)
    except ValueError:
        return None
    return value if 0 <= value <= top else None
