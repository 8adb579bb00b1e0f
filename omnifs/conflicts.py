"""An object changed behind omnifs's back: what it meant, and keeping both versions.

Two places meet such an object. The daemon's reconciler finds it in a scrub
(daemon/reconcile.py, ``[replication] conflict``); a write finds it when the
store refuses its precondition (omnifs/fallbacks.py: the object at the key is
not the one the catalog recorded). For a write the rule is fixed, never a
silent overwrite and never a lost byte:

* the object says it is one of this catalog's own (``omnifs_origin``: an
  older upload of ours, a deleted file's object whose queued delete has not
  run yet): the catalog is the truth for those, the write goes on against it;
* no object any more: the write goes on as a first one;
* anything else is someone else's version: it is kept as a new file
  ``NAME.conflict-PROVIDER-YYYYmmddTHHMMSSZ`` beside the original (a
  server-side copy in the same store, with its own catalog entry, replicated
  like any file: :func:`keep_aside`), then ours goes to the key, conditional
  on the version just kept. The reconciler's ``keep-both`` makes the same
  file the same way (:func:`keep_both`).

Expectations come from the catalog (:func:`expected`): a key
no replica row points at should hold nothing; else the etag the row recorded.
:func:`refusal_steps` is that rule as steps, driven by the mount (store calls
in worker threads, catalog writes on its event loop) and by the replicator
in one thread (:func:`settle_refusal`).
"""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omnifs.providers import NotFound, ObjectInfo, OmnifsError, PreconditionFailed, Provider

from .catalog import Catalog, Replica
from .fallbacks import WriteCheck, write_check
from .layout import attrs_of

log = logging.getLogger("omnifs.conflicts")


def conflict_name(name: str, provider: str, when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{name}.conflict-{provider}-{stamp}"


def expected(cat: Catalog, provider: str, key: str, ino: int,
             rows: list[Replica] | None = None) -> tuple[bool, str | None]:
    """(no object expected at ``key``, the etag the catalog recorded for it) before ``ino``
    writes there: its own row's, else the row of the file whose object sits there (moved
    away by ``omnifs.replication.free_key_steps`` as a copy: the object stays until the write).
    ``rows``: the key's holders when the caller has just read them."""
    if rows is None:
        rows = cat.replicas.holders(provider, key)
    if not rows:
        return True, None
    mine = [r for r in rows if r.inode == ino]
    return False, (mine or rows)[0].etag


def ours(cat: Catalog, info: ObjectInfo) -> bool:
    """Does the object say it belongs to a file of this catalog (``omnifs_origin``)?"""
    origin = attrs_of(info).origin
    return origin is not None and origin[0] == cat.catalog_id()


def head_or_none(p: Provider, key: str) -> ObjectInfo | None:
    try:
        return p.head(key)
    except NotFound:
        return None


@dataclass(frozen=True)
class Aside:
    """Where someone else's version of a file is kept: a new name in the same directory."""

    parent: int
    name: str
    key: str


def aside_for(cat: Catalog, ino: int, provider: str, info: ObjectInfo) -> Aside | None:
    """The conflict file for ``info`` (an object found at ``ino``'s key), None if no room."""
    inode = cat.ns.get(ino)
    if inode is None or inode.parent is None or inode.name is None:
        return None
    name = conflict_name(inode.name, provider, info.last_modified or time.time())
    if cat.ns.lookup(inode.parent, name) is not None:
        return None
    parent_path = (cat.ns.path_of(inode.parent) or "").strip("/")
    return Aside(inode.parent, name, f"{parent_path}/{name}" if parent_path else name)


def record_aside(cat: Catalog, ino: int, provider: str, aside: Aside, info: ObjectInfo,
                 etag: str | None, copies: int) -> bool:
    """Give the copied-aside object its catalog entry (one transaction); False: name taken."""
    inode = cat.ns.get(ino)
    if inode is None:
        return False
    mtime_ns = int((info.mtime or info.last_modified or time.time()) * 1e9)
    with cat.transaction():
        if cat.ns.lookup(aside.parent, aside.name) is not None:
            return False
        child = cat.ns.create(aside.parent, aside.name, stat.S_IFREG | (inode.mode & 0o7777),
                              inode.uid, inode.gid, size=info.size, mtime_ns=mtime_ns,
                              sha256=info.sha256, version=1)
        cat.replicas.add_version(child.id, 1, info.sha256, info.size, mtime_ns)
        cat.replicas.set(child.id, provider, aside.key, 1, "synced", etag=etag)
        from .replication import queue_replicate

        others = [r.provider for r in cat.replicas.of(ino) if r.provider != provider]
        for other in others[:max(copies - 1, 0)]:
            queue_replicate(cat, child.id, other, aside.key, 1)
    return True


def copy_aside(p: Provider, key: str, aside: Aside, info: ObjectInfo) -> ObjectInfo:
    """The server-side copy of the changed object to its conflict file's key (store I/O)."""
    return p.copy(key, aside.key, dict(info.metadata))


def keep_aside(cat: Catalog, p: Provider, ino: int, key: str, info: ObjectInfo,
               copies: int) -> Aside | None:
    """Copy the changed object at ``key`` aside and give it its own catalog entry, all in
    this thread; the conflict file, or None when it could not be kept."""
    aside = aside_for(cat, ino, p.name, info)
    if aside is None:
        return None
    try:
        copied = copy_aside(p, key, aside, info)
    except OmnifsError as e:
        log.error("keep-both: cannot keep %s's copy of %s: %s", p.name, key, e)
        return None
    if not record_aside(cat, ino, p.name, aside, info, copied.etag, copies):
        return None
    log.warning("%s: %s was changed outside omnifs; kept as %s", p.name, key, aside.key)
    return aside


def keep_both(cat: Catalog, provider: Provider, ino: int, key: str, info: ObjectInfo,
              copies: int) -> bool:
    """The reconciler's ``keep-both``: :func:`keep_aside`, as a yes or no."""
    return keep_aside(cat, provider, ino, key, info, copies) is not None


#: what :func:`refusal_steps` yields: a store call to run (its driver sends back the result)
#: or None just before a catalog write (the driver sends back None)
RefusalSteps = Generator[Callable[[], Any] | None, Any, WriteCheck]


def refusal_steps(cat: Catalog, p: Provider, ino: int, key: str, path: str,
                  copies: int) -> RefusalSteps:
    """After ``p`` refused a checked write of ``ino``'s object at ``key``: look at the
    object there, keep it aside if it is someone else's, and return the check the write
    is retried with (the module docstring's rule). Raises PreconditionFailed when their
    version cannot be kept."""
    theirs = yield (lambda: head_or_none(p, key))
    if theirs is None:
        return write_check(p, True, None)
    if not ours(cat, theirs):
        aside = aside_for(cat, ino, p.name, theirs)
        if aside is None:
            raise PreconditionFailed("changed outside omnifs, and its conflict file's name is "
                                     "taken; not overwritten", provider=p.name, key=key)
        copied = yield (lambda: copy_aside(p, key, aside, theirs))
        yield None
        if not record_aside(cat, ino, p.name, aside, theirs, copied.etag, copies):
            raise PreconditionFailed("changed outside omnifs while being kept aside; not "
                                     "overwritten", provider=p.name, key=key)
        log.warning("%s: /%s was changed outside omnifs; their version is kept as /%s, ours "
                    "replaces it", p.name, path, aside.key)
    return write_check(p, False, theirs.etag)


def settle_refusal(cat: Catalog, p: Provider, ino: int, key: str, path: str,
                   copies: int) -> WriteCheck:
    """:func:`refusal_steps`, run in this thread."""
    steps = refusal_steps(cat, p, ino, key, path, copies)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value
        answer = None if step is None else step()
