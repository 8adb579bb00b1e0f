"""Versions kept between backups (``[dr] keep_versions_for``).

When the daemon is about to delete an object (a file deleted through the
mount) or overwrite a stale replica with a newer version (a file
overwritten: with ``copies`` >= 2 the other replica still holds the old
version until then), :class:`Keeper` first stores those bytes on the first
backup target (content-addressed like backups: nothing twice) and a small
record ``versions/<when>-<n>.json.gz``: path, SHA-256, size, mtime, mode,
owner, when it was made and when it was replaced, and until when it is
kept. A restore to a time between two backups lays these over the older
backup (:func:`overlay`); prune keeps their content until they expire.

A version whose last copy the mount itself overwrites in place (``copies =
1``, or every replica in one publish) never reaches the daemon that way: the
mount first sets it aside in the same store (:func:`set_aside`, a server-side
copy to ``.omnifs/kept/``) and queues a ``keep`` item (omnifs/work.py) with the
file's path and the version's times; the daemon (or ``omnifs replicate
--now``) keeps it like the others and deletes the copy (:func:`keep_version`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass

from omnifs.errors import NotFound, OmnifsError
from omnifs.fallbacks import copies_in_store
from omnifs.layout import attrs_of, delete_object, mtime_ns_of, namespace_path
from omnifs.providers import RESERVED_PREFIX, Provider
from omnifs.work import KeepVersion

from .manifest import Entry, Manifest
from .target import Target, backup_id

log = logging.getLogger("omnifs.dr")
FOLDER = "versions"
#: where the mount sets aside, in a file's own store, a version it is about to overwrite
KEPT_PREFIX = f"{RESERVED_PREFIX}kept/"


@dataclass(frozen=True)
class KeptVersion:
    path: str
    sha256: str
    size: int
    mtime_ns: int
    mode: int | None
    uid: int | None
    gid: int | None
    #: when this content was written (the object's time), and replaced or deleted
    made_at: float
    replaced_at: float
    until: float
    #: "overwritten" | "deleted"
    reason: str


class Keeper:
    """The daemon's hook: ``keeper(provider, key, reason)`` before it drops an object."""

    def __init__(self, target: Target, keep_for: float, clock=time.time) -> None:
        self.target, self.keep_for, self.clock = target, keep_for, clock

    def __call__(self, provider: Provider, key: str, reason: str, *, path: str | None = None,
                 made_at: float | None = None, replaced_at: float | None = None) -> None:
        """Keep the version at ``key``; ``path`` and the times default to what the object
        says (its path, its last-modified time) and now."""
        try:
            info = provider.head(key)
        except NotFound:
            return
        sha = info.sha256
        if not sha:
            log.info("%s:%s has no SHA-256 in its metadata: not kept", provider.name, key)
            return
        now = self.clock() if replaced_at is None else replaced_at
        mode = attrs_of(info)
        path = path or "/" + (namespace_path(info) or key).lstrip("/")
        if not self.target.provider.exists(self.target.data_key(sha)):
            with provider.open_read(key) as src:
                self.target.put_content(sha, info.size, src)
        v = KeptVersion(path, sha, info.size, mtime_ns_of(info) or 0,
                        mode.mode, mode.uid, mode.gid,
                        made_at or info.last_modified or now, now, now + self.keep_for, reason)
        name = f"{FOLDER}/{backup_id(now)}-{os.urandom(4).hex()}.json.gz"
        self.target.put_doc(name, json.dumps(asdict(v)).encode())


def kept_key(ino: int, version: int) -> str:
    """Where the mount sets a version aside before overwriting its last copy."""
    return f"{KEPT_PREFIX}{ino}-{version}-{os.urandom(4).hex()}"


def set_aside(p: Provider, key: str, dest: str) -> bool:
    """Copy the object at ``key`` to ``dest`` in its store (server-side where the store
    can: omnifs/fallbacks.py); False when there is no object at ``key``."""
    try:
        if copies_in_store(p):
            p.copy(key, dest, None)
        else:
            info = p.head(key)
            with p.open_read(key) as src:
                p.write(dest, src, info.size, info.metadata, info.content_type)
    except NotFound:
        return False
    return True


def keep_version(providers: dict[str, Provider], work: KeepVersion, keep) -> None:
    """Run a ``keep`` item: the set-aside copy kept (when ``keep`` is configured), then
    deleted."""
    p = providers.get(work.provider)
    if p is None:
        return
    if keep is not None:
        keep(p, work.key, "overwritten", path=work.path, made_at=work.made_ns / 1e9,
             replaced_at=work.replaced_ns / 1e9)
    delete_object(p, work.key)


def kept_versions(target: Target, now: float, *, expire: bool = False) -> list[KeptVersion]:
    """The versions still kept at ``now``; ``expire`` deletes the records of the others."""
    out = []
    for info in target.list_docs(FOLDER):
        name = info.key[len(target.root):]
        try:
            v = KeptVersion(**json.loads(target.get_doc(name)))
        except (OmnifsError, ValueError, TypeError) as e:
            raise OmnifsError(f"kept version {name} cannot be read: {e}") from None
        if v.until > now:
            out.append(v)
        elif expire:
            target.delete_doc(name)
    return out


def overlay(manifest: Manifest, versions: list[KeptVersion], at: float) -> Manifest:
    """The tree at ``at``: ``manifest`` (taken before ``at``) with the versions kept
    since laid over it: a version live at ``at`` replaces the file's entry (or adds it),
    a file deleted between the backup and ``at`` is dropped."""
    by_path = {e.path: e for e in manifest.entries}
    entries = list(manifest.entries)
    for path in sorted({v.path for v in versions}):
        mine = [v for v in versions if v.path == path]
        live = [v for v in mine if v.made_at <= at < v.replaced_at]
        gone = [v for v in mine if v.reason == "deleted" and manifest.at < v.replaced_at <= at]
        old = by_path.get(path)
        if live:
            v = max(live, key=lambda v: v.made_at)
            e = Entry.from_dict(old.as_dict()) if old is not None else Entry(
                path, "file", 0o100000 | (v.mode or 0o644), v.uid or 0, v.gid or 0, v.mtime_ns,
                v.mtime_ns)
            e.kind, e.sha256, e.size, e.mtime_ns = "file", v.sha256, v.size, v.mtime_ns
            if v.mode is not None:
                e.mode = 0o100000 | v.mode
            if old is not None:
                entries[entries.index(old)] = e
            else:
                entries.append(e)
        elif gone and old is not None:
            entries.remove(old)
    return Manifest(manifest.id, manifest.at, manifest.backup, manifest.paths, manifest.host,
                    entries, manifest.bytes_new)


def keeper_for(dr) -> Keeper | None:
    """The hook for ``[dr] keep_versions_for`` (versions go to the first backup target)."""
    if dr.keep_versions_for is None or not dr.backups:
        return None
    from .state import open_target

    return Keeper(open_target(dr.backups[0]), dr.keep_versions_for)
