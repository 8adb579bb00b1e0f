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
:func:`object_meta` stays under 300 bytes.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass

from providers import META_MTIME, META_SHA256, RESERVED_PREFIX, ObjectInfo, Provider

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
