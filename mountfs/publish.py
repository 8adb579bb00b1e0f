"""Publishing a staging file: upload to write_quorum stores, record, queue the rest.

Where the bytes go is :func:`policy.placement.place`: ``copies`` distinct
providers allowed for the path by the governance rules, healthy before
degraded before down (health from :class:`mountfs.stores.MountHealth`: the
daemon's verdicts plus this mount's own failures), then less loaded (queued
replicate work), cheaper and heavier-weighted; equal ones share new files by
path hash when ``write_quorum < copies``. A file that already has replicas
keeps its usable, allowed homes (a rewrite does not scatter stale copies).

close/fsync returns success only once ``write_quorum`` stores hold the bytes.
Stores known to be down (this mount's recent failures, the daemon's verdict)
are skipped, never waited on; the others are raced (mountfs/quorum.py): the
first ``write_quorum`` start at once, a failed one is replaced by the next
allowed store in rank order, and one that has not finished within its hedge
delay gets the next store started beside it. So a hung store costs a close
one hedge delay while another store can take the copy, and at most about
``timeout`` (plus a quick retry) when none can. When the quorum is not
reached, publish raises Unavailable (EIO): the bytes stay staged
(``inodes.staged = 1``) and the mount's uploader publishes them again until a
store answers (mountfs/uploads.py). The stores that should hold the file
but were not written get queued ``replicate`` work for the daemon. No
allowed provider at all is EACCES (governance refuses).

An upload still running when close returns (to a store that hung after it
started) goes on in the background; :meth:`Publisher._late` records its end
without ever claiming synced bytes that are not there, and no newer upload of
the same file goes to that store before it ended.

Object keys are plain paths, except where a store cannot take the path as
a key (too long with its prefix): then the fallback key of
:func:`omnifs.layout.object_key`. A key can still be held by another inode
whose queued move has not run yet (``mv a b; echo new > a``):
:meth:`Publisher.free_key` moves that object out of the way first (the steps
of :func:`omnifs.replication.free_key_steps`), so an upload never destroys
another file's only bytes.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omnifs.catalog import Catalog, Inode, Replica
from omnifs.layout import file_attrs, object_key, object_meta
from omnifs.policy.governance import StoreView
from omnifs.policy.health import DOWN, LOST
from omnifs.policy.placement import (
    PlacementError,
    ProviderView,
    allowed,
    place,
    rank,
    rules_from_config,
    views_from_config,
)
from omnifs.providers.errors import NoSpace, OmnifsError, PermissionDenied, Unavailable
from omnifs.replication import free_key_steps, queue_attrs
from omnifs.work import Delete, Replicate, enqueue

from .catalog_wait import catalog_writable
from .overwrite import Upload, expectation, keep_replaced, upload, version_to_keep
from .quorum import Attempts, Speeds, nursery_for, race
from .staging import OpenFile, StagingArea, hash_file
from .stores import Stores

if TYPE_CHECKING:
    from omnifs.config import Config

import trio

log = logging.getLogger("omnifs.mount")


#: queued-work counts (placement's load) and the draining providers are re-read at most
#: this often
LOAD_TTL = 1.0
#: files up to this size are uploaded from a copy in memory, so their uploads may outlive
#: the close (mountfs/quorum.py); bigger ones are read from the staging file by every upload
SNAPSHOT_MAX = 8 * 1024 * 1024


@dataclass
class Plan:
    """Where one publish uploads: ``attempts`` in order until quorum, ``targets`` overall."""

    #: providers to try, best first: placement's write_now, then every other allowed one
    attempts: list[str]
    #: how many uploads make close succeed
    quorum: int


def _store(v: ProviderView) -> StoreView:
    return StoreView(v.name, v.region, v.encrypted)


class Placer:
    """The mount's side of placement: config and live state in, policy.placement decides."""

    def __init__(self, catalog: Catalog, stores: Stores, config: Config):
        self.cat = catalog
        self.stores = stores
        self.tables = {n: dict(config.provider_tables.get(n, {})) for n in stores.order}
        self.rules = rules_from_config(config.governance_rules)
        self.gov = config.governance.engine
        self.copies = max(1, config.copies)
        self.quorum = max(1, min(config.write_quorum, self.copies))
        self.balance = self.quorum < self.copies
        #: [dr] keep_versions_for: versions overwritten in place are kept (mountfs/overwrite.py)
        self.keep_versions = config.dr.keep_versions_for is not None and bool(config.dr.backups)
        self._load: dict[str, int] = {}
        #: providers `omnifs migrate provider` is swapping out: they take no new replica
        self._draining: set[str] = set()
        self._load_at = float("-inf")

    def load(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._load_at >= LOAD_TTL:
            self._load, self._load_at = self.cat.work.queued_by_provider(), now
            self._draining = set(self.cat.draining())
        return self._load

    def views(self, down: Collection[str] = frozenset()) -> list[ProviderView]:
        status = self.stores.statuses()
        for name in down:
            status[name] = DOWN
        load = self.load()
        return views_from_config(self.tables, status, load, draining=self._draining)

    def allowed(self, path: str) -> list[str]:
        """Providers ``path`` may live on (governance rules), config order."""
        return [v.name for v in allowed(path, self.views(), self.rules)]

    def check(self, path: str) -> None:
        """Refuse, before any byte is written, a path no configured provider may hold."""
        if self.rules and not self.allowed(path):
            raise PermissionDenied(f"{path}: no configured provider is allowed for this path by "
                                   "the governance rules", key=path)

    def plan(self, path: str, holders: list[str]) -> Plan:
        """The upload order for ``path``; ``holders`` already have a replica of the file."""
        views = self.views()
        candidates = allowed(path, views, self.rules)
        if not candidates:
            raise PermissionDenied(f"{path}: no configured provider is allowed for this path by "
                                   "the governance rules", key=path)
        ranked = [v.name for v in rank(path, candidates, balance=self.balance)]
        try:
            first = place(path, views, self.rules, copies=self.copies,
                          write_quorum=self.quorum).write_now
        except PlacementError:
            first = []  # every allowed provider looks down: try them all anyway
        usable = {v.name for v in candidates if v.status != DOWN}
        sticky = [n for n in ranked if n in holders and n in usable]
        order = sticky + [n for n in first if n not in sticky]
        order += [n for n in ranked if n not in order]
        return Plan(order, self.quorum)

    def homes(self, path: str, done: list[str], failed: set[str],
              holders: Sequence[str] = ()) -> list[str]:
        """All the providers that should hold ``path`` after ``done`` took it: done first.

        Then the file's other usable, allowed holders (caught up rather than
        replaced), then placement's choice with the providers that just
        failed counted as down.
        """
        views = self.views(failed)
        try:
            targets = place(path, views, self.rules, copies=self.copies,
                            write_quorum=self.quorum).targets
        except PlacementError:
            targets = []
        keep = {v.name for v in allowed(path, views, self.rules) if v.status != DOWN}
        out = list(done) + [h for h in holders if h in keep and h not in done]
        out += [t for t in targets if t not in out]
        out = out[:max(self.copies, len(done))]
        if self.gov.rules:  # min_copies and distinct_regions may want more homes
            ranked = rank(path, [v for v in views if v.name in keep], balance=self.balance)
            out += self.gov.extra_homes(path, [_store(v) for v in views if v.name in out],
                                        [_store(v) for v in ranked])
        return out


@dataclass
class Job:
    """One publish of one file: what is uploaded where, and what the catalog said before."""

    ino: int
    path: str
    version: int
    size: int
    meta: dict[str, str]
    #: the bytes (a private snapshot: uploads may outlive the publish), or None: the staging file
    data: bytes | None
    spath: Path
    #: each attempted provider's replica row before this publish marked it pending
    old: dict[str, Replica | None] = field(default_factory=dict)
    #: the publish recorded this version as the file's current one
    committed: bool = False
    #: where the file should live, as that publish decided
    homes: list[str] = field(default_factory=list)
    #: the key each attempted store gets: the path, or its fallback key (omnifs/layout.py)
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return self.keys.get(name, self.path)


class Publisher:
    def __init__(self, catalog: Catalog, stores: Stores, staging: StagingArea, config: Config, *,
                 exclusive: Callable[[int], AbstractAsyncContextManager[None]] | None = None):
        self.cat = catalog
        self.stores = stores
        self.staging = staging
        #: held around a publish: no other mount publishes the file meanwhile (coherence.py)
        self.exclusive = exclusive or _alone
        self.placer = Placer(catalog, stores, config)
        self.speeds = Speeds()
        #: (hedges | hedge_wins | failovers, store) -> uploads, for the mount's metrics
        self.upload_events: collections.Counter[tuple[str, str]] = collections.Counter()
        #: (inode, provider) with an upload still running after its publish returned
        self.late_uploads: set[tuple[int, str]] = set()
        #: where uploads that outlive their publish run (:meth:`run`); None: not running
        self._background: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Host the uploads that outlive their publish (run in the mount's nursery)."""
        async with trio.open_nursery() as nursery:
            self._background = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._background = None

    async def free_key(self, provider: str, key: str, owner: int) -> None:
        """Make ``provider``/``key`` free for ``owner``: move other inodes' objects away.

        The catalog is read here and written once no other process holds its
        lock; each store copy runs in a worker thread.
        """
        store = self.stores[provider]
        steps = free_key_steps(self.cat, store, provider, key, owner)
        answer: bool | None = None
        while True:
            try:
                step = steps.send(answer)
            except StopIteration:
                return
            if step is None:
                await catalog_writable(self.cat)
                answer = None
            else:
                answer = await self.stores.call(provider, step.run, store)

    def candidates(self, ino: int, path: str, holders: list[str]) -> tuple[list[str], int]:
        """Who may take this upload now, best first, and the quorum.

        Known down (this mount's recent failures or the daemon's verdict) or
        lost: skipped, never waited on. Still busy with an earlier upload of
        this file: skipped (a late upload must not land over a newer one).
        Silent for longer than a hedge delay (a call waits, nothing came
        back since): tried last, only when the others are not enough. Being
        sent an older version by a replicator right now (its object could land
        after ours and replace it): tried after the others that answer.
        """
        plan = self.placer.plan(path, holders)
        order = [n for n in plan.attempts if (ino, n) not in self.late_uploads
                 and self.stores.status(n) not in (DOWN, LOST)]
        stalled = {n for n in order
                   if self.stores.silent_for(n) > self.speeds.hedge_delay(n, 0)}
        copying = {r.provider for r in self.cat.replicas.of(ino) if r.state == "pending"}
        return sorted(order, key=lambda n: (n in stalled, n in copying)), plan.quorum

    async def publish(self, st: OpenFile) -> None:
        """Upload ``st``'s staging file; return only once quorum holds it. Caller holds st.lock.

        Under :attr:`exclusive`: another mount's publish of the file waits, and the
        version number is read once it is this one's turn (the later close wins).
        """
        if not st.dirty:
            return
        async with self.exclusive(st.ino):
            await self._publish_now(st)

    async def _publish_now(self, st: OpenFile) -> None:
        """:meth:`publish` once the file is this mount's to publish.

        Raises Unavailable when ``write_quorum`` stores could not take it: the
        bytes stay staged (``inodes.staged = 1``) for a later publish.
        """
        if not st.dirty:
            return
        ino = st.ino
        inode = self.cat.ns.get(ino)
        path = self.cat.ns.path_of(ino)
        if inode is None or path is None:
            st.dirty = False  # unlinked: nobody can see these bytes any more
            return
        holders = [r.provider for r in self.cat.replicas.of(ino) if r.state != "failed"]
        order, quorum = self.candidates(ino, path, holders)
        if len(order) < quorum:
            raise Unavailable(f"no store can take the upload now ({self._why_not(ino)}); "
                              "it stays staged and is uploaded when a store answers", key=path)
        sha = st.sha256_if_known()
        spath = self.staging.path(ino)
        snapshot = st.size <= SNAPSHOT_MAX
        data = await trio.to_thread.run_sync(spath.read_bytes) if snapshot else None
        if sha is None:
            sha = (hashlib.sha256(data).hexdigest() if data is not None
                   else await trio.to_thread.run_sync(hash_file, spath))
        ctime_ns = max(st.ctime_ns, inode.ctime_ns)
        meta = object_meta(sha, st.mtime_ns,
                           file_attrs(inode, self.cat.catalog_id(), ctime_ns=ctime_ns))
        job = Job(ino, path, inode.version + 1, st.size if data is None else len(data),
                  meta, data, spath)
        attempts = Attempts(late=lambda name, result: self._late(job, name, result))
        async with nursery_for(self._background if snapshot else None) as nursery:
            await race(nursery, attempts, order, quorum, lambda name: self._attempt(job, name),
                       lambda name: self.speeds.hedge_delay(name, job.size),
                       lambda event, name: self.upload_events.update([(event, name)]))
            ok = len(attempts.done) >= quorum
            for name in attempts.running:
                self.late_uploads.add((ino, name))
            await catalog_writable(self.cat)
            try:
                if ok:
                    self._commit(job, st, inode, sha, attempts, holders)
                for name, err in attempts.failed.items():
                    self._late(job, name, err)
                if not ok:
                    for name, info in attempts.done.items():
                        self._late(job, name, info)
            finally:
                attempts.settled()
        if not ok:
            errors = "; ".join(str(e) for e in attempts.failed.values()) or "no answer"
            # worth retrying only if a store may take it later (not one refusing the key)
            later = not attempts.failed or any(e.transient for e in attempts.failed.values())
            # every store full (file:// stores on a full disk): ENOSPC, not EIO
            full = attempts.failed and all(isinstance(e, NoSpace)
                                           for e in attempts.failed.values())
            err = (NoSpace if full else Unavailable)(
                f"{len(attempts.done)} of the {quorum} uploads needed succeeded ({errors})"
                + ("; it stays staged and is uploaded when a store answers" if later else ""),
                key=path)
            err.transient = later
            raise err

    def _why_not(self, ino: int) -> str:
        return ", ".join(f"{n} {'busy' if (ino, n) in self.late_uploads else self.stores.status(n)}"
                         for n in self.stores.order)

    async def _attempt(self, job: Job, name: str):
        """Upload ``job`` to ``name``; the replica row says pending while it runs."""
        job.old[name] = self.cat.replicas.get(job.ino, name)
        store = self.stores[name]
        key = job.keys[name] = object_key(store, job.path)
        check = expectation(self.cat, store, name, key, job.ino)
        keep = (version_to_keep(self.cat, job.ino, name, key, job.old[name], job.old)
                if self.placer.keep_versions else None)
        await self.free_key(name, key, job.ino)
        await catalog_writable(self.cat)
        self.cat.replicas.set(job.ino, name, key, job.version, "pending")
        start = time.monotonic()
        source = job.data if job.data is not None else job.spath
        up = Upload(job.ino, job.path, key, source, job.size, job.meta)
        try:
            if keep is not None:
                await keep_replaced(self.cat, self.stores, name, up, keep)
            info = await upload(self.cat, self.stores, name, up, check, self.placer.copies)
        except OmnifsError:
            await catalog_writable(self.cat)  # a late failure is recorded once this raises
            raise
        self.speeds.note(name, job.size, time.monotonic() - start)
        await catalog_writable(self.cat)  # a late result is recorded as soon as this returns
        return info

    def _commit(self, job: Job, st: OpenFile, inode: Inode, sha: str, attempts: Attempts,
                holders: list[str]) -> None:
        """Record the new version: the stores that took it are synced, the rest is queued."""
        ino, path = job.ino, job.path
        done = list(attempts.done)
        old_keys = {n: r.key for n in done
                    if (r := job.old.get(n)) is not None and r.key != job.key(n)}
        # still uploading (this publish's or an earlier one's): they settle when it ends
        busy = attempts.running | {n for i, n in self.late_uploads if i == ino}
        elsewhere = set(attempts.failed) | busy
        homes = job.homes = self.placer.homes(path, done, elsewhere, holders)
        with self.cat.transaction():
            self.cat.ns.update(ino, version=job.version, sha256=sha, size=job.size,
                               mtime_ns=st.mtime_ns, ctime_ns=max(st.ctime_ns, inode.ctime_ns),
                               staged=0)
            for name, info in attempts.done.items():
                self.cat.replicas.set(ino, name, job.key(name), job.version, "synced",
                                      info.etag)
            self.cat.replicas.mark_others_stale(ino, job.version)
            for name in homes[len(done):]:
                if name not in busy:
                    enqueue(self.cat.work, Replicate(inode=ino, provider=name))
            for name, key in old_keys.items():
                enqueue(self.cat.work, Delete(provider=name, key=key))
            self.cat.replicas.add_version(ino, job.version, sha, job.size, st.mtime_ns)
            now = self.cat.ns.get(ino)
            if now is not None and (now.mode, now.uid, now.gid) != (inode.mode, inode.uid,
                                                                    inode.gid):
                # changed during the upload: the objects just written say the old ones
                queue_attrs(self.cat, ino, done)
        job.committed = True
        st.dirty = False
        st.marked = False
        st.published = sha

    def _late(self, job: Job, name: str, result) -> None:
        """Record an upload that did not count for its publish: it failed, it succeeded after
        the publish returned, or the publish failed as a whole.

        Never says synced for bytes that may not be there: only an upload of
        the version its own publish recorded as current, which the catalog
        still calls current and whose pending row nobody changed since,
        becomes synced. A success that came too late (the file moved on, its
        publish failed, or another writer took the row meanwhile) leaves that
        store holding other bytes than the current ones: stale, and queued for
        a fresh copy once the file is published. A failure restores the row
        the upload found (stale if the file moved on) and queues the copy if
        the store is one of the file's homes.
        """
        self.late_uploads.discard((job.ino, name))
        ino, key = job.ino, job.key(name)
        inode = self.cat.ns.get(ino)
        row = self.cat.replicas.get(ino, name)
        ours = (row is not None and row.state == "pending" and row.version == job.version
                and row.key == key)
        ok = not isinstance(result, BaseException)
        with self.cat.transaction():
            if inode is None or self.cat.ns.path_of(ino) is None:
                if ours:
                    self.cat.replicas.drop(ino, name)
                if ok and not self.cat.replicas.holders(name, key):
                    enqueue(self.cat.work, Delete(provider=name, key=key))
                return
            if ok and ours and job.committed and inode.version == job.version:
                self.cat.replicas.set(ino, name, key, job.version, "synced", result.etag)
                return
            if ok:
                if not (ours or (row is not None and row.key == key)):
                    return  # the row moved to another key: these bytes are no replica of it
                self.cat.replicas.set(ino, name, key, job.version, "stale", result.etag)
                wanted = True
            else:
                if ours:
                    _restore(self.cat, ino, name, job.old.get(name))
                    self.cat.replicas.mark_others_stale(ino, inode.version)
                wanted = job.committed and name in job.homes
            if wanted and not inode.staged:
                enqueue(self.cat.work, Replicate(inode=ino, provider=name))


def _restore(cat: Catalog, ino: int, provider: str, old) -> None:
    """Undo the 'pending' mark of an upload that failed: the old row, or none."""
    if old is None:
        cat.replicas.drop(ino, provider)
    else:
        cat.replicas.set(ino, provider, old.key, old.version, old.state, old.etag,
                         old.verified_at)


@contextlib.asynccontextmanager
async def _alone(ino: int) -> AsyncIterator[None]:
    """:attr:`Publisher.exclusive` of a publisher no other mount competes with."""
    yield
