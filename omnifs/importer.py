"""``omnifs import``: build the catalog from what the stores hold.

Why: a bucket filled by another tool, or a catalog lost with its disk, must
show up in the mount as it was. Three steps:

1. **Restore a snapshot.** Into an empty catalog, the newest catalog
   snapshot any store holds that passes its checks (omnifs/snapshot.py):
   the whole tree as it was then, with modes, owners, symlinks, hard links,
   xattrs, empty directories, history and replicas.
2. **Settle the snapshot's files** against the stores' listings. A replica
   whose object is there with the content the snapshot expects is
   ``synced``; one whose object is gone, or holds older content, is
   ``stale`` (a copy is queued when a good replica exists). A file whose
   objects hold newer content (an omnifs upload after the snapshot: its
   ``omnifs_ctime`` is later than the snapshot's ctime) takes that content
   as its next version, and a file whose objects carry newer attributes
   (a chmod, chown or utime after the snapshot) takes those. A file left
   with no copy anywhere is kept, reported and unreadable: never dropped
   in silence.
3. **Add what the snapshot does not know**: every other object becomes a
   file at its key's path, with the mode, owner, group and mtime of its
   metadata (a foreign object: 0644, the importing user, the store's time).
   An object of this catalog's own file (``omnifs_origin``) under another
   key is that file renamed after the snapshot: its name moves. The same key
   in several stores: the newest is the content, the others are ``stale``.
   (A snapshot that records no replicas, as ``omnifs dr restore --to STORE``
   writes, so whatever the store is called, has each file found this way:
   by the ``omnifs_origin`` of the object at its path.)

Without a snapshot (none in the stores, ``--no-snapshot``, or a catalog
that already holds files) only step 3 runs, and files already in the
catalog are left as they are, so an import can be re-run to pick up new
objects. Objects under ``.omnifs/`` and keys ending in ``/`` (directory
markers, which become directories) are not files, except the fallback keys
of paths too long for a store (``.omnifs/long/``, see omnifs/layout.py),
which become files at the path their metadata or sidecar names; objects
named by a pending ``delete`` are files removed before the snapshot.

Writes are committed every ``batch`` files or :data:`MAX_HOLD` seconds,
with a pause between transactions, and store requests (listings, the HEADs
of S3 objects whose metadata a listing lacks) happen outside any
transaction: a mount working on the same catalog waits one short
transaction at most.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from omnifs.providers import ObjectInfo, Provider
from omnifs.providers.errors import Conflict, NotFound, OmnifsError

from .catalog import Catalog, Inode, Replica
from .config import Config
from .layout import (
    SNAPSHOT_PREFIX,
    FileAttrs,
    attrs_of,
    is_long_key,
    long_path,
    mtime_ns_of,
    namespace_key,
    namespace_path,
)
from .snapshot import restore_newest
from .units import plural
from .work import Malformed, Move, Replicate, enqueue, from_item

log = logging.getLogger("omnifs.import")

#: files per committed transaction, at most
BATCH = 1000
#: ... and seconds one transaction may hold the catalog's write lock
MAX_HOLD = 0.2
#: SQLite's default busy handler (sqliteDefaultBusyCallback) sleeps these many ms between
#: tries for the lock, then 100 ms each: a pause one of them long lets a waiter in
_BUSY_SLEEPS_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)


def pause_for(held: float) -> float:
    """How long to let go of the lock after holding it ``held`` s: the interval at which a
    writer that began waiting when we took it tries again."""
    waited = 0
    for ms in _BUSY_SLEEPS_MS:
        waited += ms
        if waited / 1000 > held:
            return ms / 1000 + 0.005
    return 0.105
#: an object changed this long before a snapshot was taken may still be newer than it
#: (the store's clock against ours): its metadata is read
CLOCK_SLACK = 600.0
#: concurrent HEADs for metadata a listing lacks (S3)
HEADS = 8
#: at most this many paths of files left with no copy are named in the result
LOST_SHOWN = 20


@dataclass
class ImportResult:
    #: "provider:key" of the snapshot restored, None when none was
    snapshot: str | None = None
    #: one line per snapshot that was found and refused
    refused: list[str] = field(default_factory=list)
    #: files the snapshot brought
    restored: int = 0
    #: of those, files whose content or attributes came from newer objects
    updated: int = 0
    #: files the snapshot knows under another name whose objects moved
    renamed: int = 0
    #: replicas the snapshot records whose object no store holds
    missing: int = 0
    #: how many files have no copy anywhere, and the first paths
    lost: int = 0
    lost_paths: list[str] = field(default_factory=list)
    #: new files from the stores' listings, and directories from markers
    files: int = 0
    dirs: int = 0
    skipped: int = 0
    stale: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


Listings = dict[str, dict[str, ObjectInfo]]


def import_stores(catalog: Catalog, providers: dict[str, Provider], config: Config,
                  progress: Callable[[str], None] | None = None, *, snapshots: bool = True,
                  batch: int = BATCH, restored_at: float | None = None) -> ImportResult:
    """Restore the newest snapshot (into an empty catalog), then settle with the stores.

    ``restored_at``: the catalog already holds a copy taken then (a backup's,
    omnifs/dr/): no snapshot is restored, that copy is settled instead.
    """
    result = ImportResult()
    snap = None
    since = restored_at
    if snapshots and since is None and catalog.is_empty():
        snap, result.refused = restore_newest(catalog, providers, progress=progress)
        if snap is not None:
            result.snapshot = f"{snap.provider}:{snap.key}"
            since = snap.at
    run = _Import(catalog, providers, config, result, progress, batch)
    run.list_stores()
    if since is not None:
        run.settle_known(since=since - CLOCK_SLACK)
    run.add_unknown()
    catalog.set_meta("imported", str(time.time()))
    return result


class _Import:
    def __init__(self, catalog: Catalog, providers: dict[str, Provider], config: Config,
                 result: ImportResult, progress: Callable[[str], None] | None, batch: int):
        self.cat = catalog
        self.providers = providers
        self.order = list(providers)
        self.copies = min(config.copies, len(self.order)) or 1
        self.result = result
        self.progress = progress
        self.batch = max(1, batch)
        self.cid = catalog.catalog_id()
        self.uid, self.gid = os.getuid(), os.getgid()
        self.listings: Listings = {}
        #: (provider, key) pairs a catalog row accounts for
        self.claimed: set[tuple[str, str]] = set()
        #: inode -> path of files of the snapshot with no copy left (so far)
        self.lost: dict[int, str] = {}

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)

    # -- listings ----------------------------------------------------------------
    def list_stores(self) -> None:
        """List each store once, without a request per object; a store that fails is left
        out (its replicas stay as recorded) and named in the result."""
        for name, p in self.providers.items():
            try:
                self.listings[name] = {
                    info.key: info for info in p.list("", recursive=True, metadata=False)
                    if info.key and not info.is_prefix
                    and not info.key.startswith(SNAPSHOT_PREFIX)}
            except OmnifsError as e:
                line = f"{name}: not listed, its replicas are left as they were: {e}"
                self.result.errors.append(line)
                log.warning("import: %s", line)
                continue
            self.say(f"listed {name}: {plural(len(self.listings[name]), 'object')}")
        self._claim_known()

    def _claim_known(self) -> None:
        """Objects the catalog accounts for: its replicas, and the sources of pending
        deletes and moves (files removed or renamed before the snapshot)."""
        for name, key in self.cat.replicas.all_keys():
            if key in self.listings.get(name, {}):
                self.claimed.add((name, key))
        for item in self.cat.work.work_items("pending"):
            try:
                work = from_item(item)
            except Malformed:
                continue
            listing = self.listings.get(work.provider, {})
            self.claimed.update((work.provider, key) for key in work.objects if key in listing)

    def describe(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Fill in the metadata the listings lack (a HEAD each, in parallel)."""
        todo = [(n, k) for n, k in wanted if not self.listings[n][k].metadata_known]
        if not todo:
            return

        def head(pair: tuple[str, str]) -> tuple[str, str, ObjectInfo | None]:
            name, key = pair
            try:
                return name, key, self.providers[name].head(key)
            except NotFound:
                return name, key, None

        with ThreadPoolExecutor(HEADS) as pool:
            for name, key, info in pool.map(head, todo):
                if info is None:
                    self.listings[name].pop(key, None)  # gone since it was listed
                else:
                    self.listings[name][key] = info

    def _in_slices(self, items: list, apply: Callable) -> None:
        """``apply`` each item in transactions of at most ``batch`` items and MAX_HOLD
        seconds, each followed by a pause (:func:`pause_for`): a writer in another process
        waits for one of them at most, never for the whole import."""
        i = 0
        while i < len(items):
            start = time.monotonic()
            with self.cat.transaction():
                end = min(i + self.batch, len(items))
                while i < end:
                    apply(items[i])
                    i += 1
                    if time.monotonic() - start >= MAX_HOLD:
                        break
            time.sleep(pause_for(time.monotonic() - start))

    # -- step 2: the snapshot's files -------------------------------------------------
    def settle_known(self, since: float) -> None:
        cat = self.cat
        ids = cat.ns.file_ids()
        self.result.restored = len(ids)
        for start in range(0, len(ids), self.batch):
            part = ids[start:start + self.batch]
            # a query per 500 files, not per file (a round trip each on PostgreSQL)
            inodes, reps = cat.ns.get_many(part), cat.replicas.of_many(part)
            chunk = [(inodes.get(i), reps.get(i, [])) for i in part]
            self.describe(self._worth_reading(chunk, since))
            self._in_slices([(inode, reps) for inode, reps in chunk if inode is not None],
                            lambda entry: self._settle(*entry))
        self.say(f"the snapshot's files checked against the stores: {len(ids)}")

    def _worth_reading(self, chunk, since: float) -> list[tuple[str, str]]:
        """Objects whose metadata may say something newer than the snapshot."""
        out = []
        for inode, reps in chunk:
            for name, key in self._candidates(reps):
                info = self.listings[name][key]
                if (info.last_modified is None or info.last_modified >= since
                        or info.size != inode.size):
                    out.append((name, key))
        return out

    def _candidates(self, reps: list[Replica]) -> list[tuple[str, str]]:
        """(provider, key) of the objects that may hold this file: its rows' keys in each
        listed store, and in a store with no row, an unclaimed object at one of those keys."""
        keys = {r.key for r in reps}
        rows = {r.provider: r.key for r in reps}
        out = []
        for name, listing in self.listings.items():
            if name in rows:
                if rows[name] in listing:
                    out.append((name, rows[name]))
                continue
            for key in keys:
                if key in listing and (name, key) not in self.claimed:
                    out.append((name, key))
                    break
        return out

    def _settle(self, inode: Inode, reps: list[Replica]) -> None:
        cat, res = self.cat, self.result
        found: dict[str, ObjectInfo] = {}
        for name, key in self._candidates(reps):
            info = self.listings[name].get(key)
            if info is None:
                continue
            origin = attrs_of(info).origin
            if origin is not None and origin[0] == self.cid and origin[1] != inode.id:
                self.claimed.discard((name, key))  # another file's bytes now: step 3's
                continue
            found[name] = info
            self.claimed.add((name, key))
        newer = [i for i in found.values() if not _same(i, inode.sha256, inode.size)
                 and _changed_at(i) > inode.ctime_ns]
        version, sha, size = inode.version, inode.sha256, inode.size
        changes: dict = {}
        if newer:
            top = max(newer, key=_changed_at)
            version, sha, size = inode.version + 1, top.sha256, top.size
            mtime = mtime_ns_of(top) or inode.mtime_ns
            changes.update(version=version, sha256=sha, size=size, mtime_ns=mtime)
            cat.replicas.add_version(inode.id, version, sha, size, mtime)
        good = {n: i for n, i in found.items() if _same(i, sha, size)}
        attrs = max((attrs_of(i) for i in good.values()),
                    key=lambda a: a.ctime_ns or 0, default=None)
        if attrs is not None and (attrs.ctime_ns or 0) > inode.ctime_ns:
            changes.update(_attr_changes(inode.mode, attrs))
            top_mtime = [mtime_ns_of(i) for i in good.values()
                         if attrs_of(i).ctime_ns == attrs.ctime_ns]
            if top_mtime and top_mtime[0] is not None:
                changes["mtime_ns"] = top_mtime[0]
        if changes:
            cat.ns.update(inode.id, **changes)
            res.updated += 1
        rows = {r.provider: r for r in reps}
        now = dict(rows)  # the rows as they are once this file is settled
        for name in self.listings:
            row = rows.get(name)
            info = found.get(name)
            if info is None:
                if row is not None and row.state != "stale":
                    now[name] = self._set(row, row.key, row.version, "stale", row.etag)
                    res.missing += 1
                continue
            state = "synced" if name in good else "stale"
            now[name] = self._set(row or Replica(inode.id, name, "", 0, "", None, None, None),
                                  info.key, version if state == "synced" else
                                  (row.version if row else 0), state, info.etag)
            if state == "stale":
                res.stale += 1
        if good:
            self._queue_copies(inode.id, good, now)
        elif not any(r.state == "synced" for n, r in rows.items() if n not in self.listings):
            self.lost[inode.id] = cat.ns.path_of(inode.id) or ""

    def _set(self, row: Replica, key: str, version: int, state: str,
             etag: str | None) -> Replica:
        """Record a replica's settled state unless its row says so already (most rows of
        a fresh snapshot do: no write for them); the row as it is now."""
        if (row.key, row.version, row.state, row.etag) != (key, version, state, etag):
            self.cat.replicas.set(row.inode, row.provider, key, version, state, etag)
            row = replace(row, key=key, version=version, state=state, etag=etag)
        return row

    def _queue_copies(self, ino: int, good: dict[str, ObjectInfo],
                      have: dict[str, Replica] | None = None) -> None:
        """Copies for the stale replicas and for missing ones among the first ``copies``;
        ``have``: the file's replica rows, when the caller holds them."""
        if have is None:
            have = {r.provider: r for r in self.cat.replicas.of(ino)}
        homes = [n for n in self.order if n in good][:self.copies]
        homes += [n for n in self.order if n not in homes][:self.copies - len(homes)]
        for name in self.order:
            r = have.get(name)
            if name in good or (r is None and name not in homes):
                continue
            if r is not None and r.state == "pending":
                continue  # its queued work (restored with the snapshot) makes it
            enqueue(self.cat.work, Replicate(inode=ino, provider=name))
            self.result.queued += 1

    # -- step 3: what the snapshot does not know ------------------------------------------
    def add_unknown(self) -> None:
        groups: dict[str, dict[str, str]] = {}
        for name, listing in self.listings.items():
            for key, info in listing.items():
                path = namespace_path(info)
                if path is None and is_long_key(key):  # a path too long for the store's keys
                    path = long_path(self.providers[name], info)
                if path is not None and (name, key) not in self.claimed:
                    groups.setdefault(path, {})[name] = key
        paths = sorted(groups)
        for start in range(0, len(paths), self.batch):
            chunk = paths[start:start + self.batch]
            self.describe((n, k) for p in chunk if not p.endswith("/")
                          for n, k in groups[p].items())

            def add(path: str) -> None:
                by_provider = {n: self.listings[n][k] for n, k in groups[path].items()
                               if k in self.listings[n]}
                if by_provider:
                    self._add(path, by_provider)

            self._in_slices(chunk, add)
        self.result.lost = len(self.lost)
        self.result.lost_paths = sorted(self.lost.values())[:LOST_SHOWN]
        for path in self.result.lost_paths:
            log.warning("import: %s has no copy in any store", path)

    def _add(self, path: str, by_provider: dict[str, ObjectInfo]) -> None:
        cat, res = self.cat, self.result
        if path.endswith("/"):
            try:
                cat.ns.ensure_dirs(path, self.uid, self.gid)
                res.dirs += 1
            except Conflict:
                res.skipped += 1
            return
        current = _current(by_provider)
        cur = by_provider[current]
        attrs = attrs_of(cur)
        origin = attrs.origin
        if origin is not None and origin[0] == self.cid:
            mine = cat.ns.get(origin[1])
            if mine is not None and mine.kind == "file" and mine.parent is not None:
                self._relocate(mine, path, by_provider)
                return
        parent_path, _, name = path.rpartition("/")
        try:
            parent = cat.ns.ensure_dirs(parent_path, self.uid, self.gid)
        except Conflict as e:
            res.skipped += 1
            res.errors.append(str(e))
            log.warning("import: %s", e)
            return
        there = cat.ns.lookup(parent, name)
        if there is not None and there.kind == "file" and _same(cur, there.sha256, there.size):
            self._relocate(there, path, by_provider)  # its bytes, under a key no row names
            return
        if not self._make_room(parent, name, path):
            return
        mtime = mtime_ns_of(cur) or time.time_ns()
        mode = stat.S_IFREG | (attrs.mode if attrs.mode is not None else 0o644)
        try:
            inode = cat.ns.create(parent, name, mode,
                                  self.uid if attrs.uid is None else attrs.uid,
                                  self.gid if attrs.gid is None else attrs.gid,
                                  size=cur.size, mtime_ns=mtime, sha256=cur.sha256, version=1,
                                  birth_ns=attrs.ctime_ns)
        except Conflict:
            res.skipped += 1
            return
        if attrs.ctime_ns is not None:
            cat.ns.update(inode.id, ctime_ns=attrs.ctime_ns)
        cat.replicas.add_version(inode.id, 1, cur.sha256, cur.size, mtime)
        good = {}
        for pname, info in by_provider.items():
            same = _same(info, cur.sha256, cur.size)
            cat.replicas.set(inode.id, pname, info.key, 1 if same else 0,
                             "synced" if same else "stale", info.etag)
            if same:
                good[pname] = info
            else:
                res.stale += 1
        self._queue_copies(inode.id, good)
        res.files += 1

    def _make_room(self, parent: int, name: str, path: str) -> bool:
        """Whether ``name`` is free; a file of the snapshot with no copy left there was
        replaced after the snapshot (its key holds another file's bytes) and goes."""
        cat = self.cat
        there = cat.ns.lookup(parent, name)
        if there is None:
            return True
        if there.id not in self.lost:
            self.result.skipped += 1
            return False
        removed = cat.ns.remove_name(parent, name)
        if removed is not None and removed[0].nlink == 0:
            cat.ns.delete(there.id)
            self.lost.pop(there.id, None)
        return True

    def _relocate(self, inode: Inode, path: str, by_provider: dict[str, ObjectInfo]) -> None:
        """Objects of a file of this catalog at a key no row names.

        When none of its recorded objects is left, the file was renamed after
        the snapshot (its objects moved) and its name follows them; otherwise
        they are its replicas at a key that lags its path (moved back).
        """
        cat, res = self.cat, self.result
        old = cat.ns.path_of(inode.id)
        rows = {r.provider: r for r in cat.replicas.of(inode.id)}
        if old != path and inode.id in self.lost:
            parent_path, _, name = path.rpartition("/")
            try:
                parent = cat.ns.ensure_dirs(parent_path, self.uid, self.gid)
            except Conflict:
                res.skipped += 1
                return
            there = cat.ns.lookup(parent, name)
            if there is not None and there.id == inode.id:
                cat.ns.remove_name(parent, name)  # a hard link became the primary name
            elif not self._make_room(parent, name, path):
                return
            cat.ns.move_entry(inode.id, parent, name)
            res.renamed += 1
        good = {}
        for pname, info in by_provider.items():
            row = rows.get(pname)
            if row is not None and (pname, row.key) in self.claimed and row.state == "synced":
                continue  # both keys hold it: the row's object stays the replica
            self.claimed.add((pname, info.key))
            same = _same(info, inode.sha256, inode.size)
            cat.replicas.set(inode.id, pname, info.key, inode.version if same else 0,
                             "synced" if same else "stale", info.etag)
            if same:
                good[pname] = info
        now = cat.ns.path_of(inode.id)
        for row in cat.replicas.of(inode.id):
            # keys under .omnifs/ (an open orphan's, a path too long for the store) stay
            if row.key != now and row.state == "synced" and namespace_key(row.key):
                enqueue(cat.work, Move(inode=inode.id, provider=row.provider, src=row.key))
        if good:
            self.lost.pop(inode.id, None)
            self._queue_copies(inode.id, good)


def _attr_changes(mode: int, attrs: FileAttrs) -> dict:
    out: dict = {}
    if attrs.mode is not None:
        out["mode"] = stat.S_IFMT(mode) | attrs.mode
    if attrs.uid is not None:
        out["uid"] = attrs.uid
    if attrs.gid is not None:
        out["gid"] = attrs.gid
    if attrs.ctime_ns is not None:
        out["ctime_ns"] = attrs.ctime_ns
    return out


def _changed_at(info: ObjectInfo) -> int:
    """When the object's file last changed, as far as its metadata says (ns)."""
    a = attrs_of(info).ctime_ns
    return a if a is not None else (mtime_ns_of(info) or 0)


def _current(by_provider: dict[str, ObjectInfo]) -> str:
    """The provider whose copy is the current content: latest change, config order on ties."""
    best, best_t = None, 0
    for name, info in by_provider.items():
        t = _changed_at(info)
        if best is None or t > best_t:
            best, best_t = name, t
    assert best is not None
    return best


def _same(info: ObjectInfo, sha256: str | None, size: int) -> bool:
    """Whether the object holds that content (unread metadata: as far as its size says)."""
    if not info.metadata_known:
        return info.size == size
    if info.sha256 and sha256:
        return info.sha256 == sha256
    return info.size == size and info.sha256 is None and sha256 is None
