"""Publishing a staging file: upload to write_quorum stores, record, queue the rest.

Where the bytes go is :func:`policy.placement.place`: ``copies`` distinct
providers allowed for the path by the governance rules, healthy before
degraded before down (health from :class:`mountfs.stores.MountHealth`: the
daemon's verdicts plus this mount's own failures), then less loaded (queued
replicate work), cheaper and heavier-weighted; equal ones share new files by
path hash when ``write_quorum < copies``. A file that already has replicas
keeps its usable, allowed homes (a rewrite does not scatter stale copies).

close/fsync returns once ``write_quorum`` targets hold the bytes. A target
that fails is replaced by the next allowed provider in rank order (down ones
last), so close succeeds while any allowed provider is up; if fewer than
``write_quorum`` accepted because no more allowed providers answer, the
close still succeeds and the missing copies are queued. Targets not written
now get queued ``replicate`` work for the daemon. No allowed provider at all
is EACCES (governance refuses); every allowed provider failing is EIO.

Object keys are plain paths, except where a store cannot take the path as
a key (too long with its prefix): then the fallback key of
:func:`omnifs.layout.object_key`. A key can still be held by another inode
whose queued move has not run yet (``mv a b; echo new > a``): :func:`free_key`
moves that object out of the way first, so an upload never destroys another
file's only bytes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omnifs.catalog import Catalog
from omnifs.layout import (
    copy_object_to,
    object_key,
    object_meta,
    orphan_key,
    placed_meta,
    write_sidecar,
)
from policy.health import DOWN
from policy.placement import (
    PlacementError,
    ProviderView,
    allowed,
    place,
    rank,
    rules_from_config,
    views_from_config,
)
from providers.errors import NoSpace, NotFound, OmnifsError, PermissionDenied, Unavailable

from .staging import OpenFile, StagingArea, hash_file
from .stores import Stores

if TYPE_CHECKING:
    from omnifs.config import Config

import trio

log = logging.getLogger("omnifs.mount")


#: queued-work counts (placement's load) are re-read at most this often
LOAD_TTL = 1.0


@dataclass
class Plan:
    """Where one publish uploads: ``attempts`` in order until quorum, ``targets`` overall."""

    #: providers to try, best first: placement's write_now, then every other allowed one
    attempts: list[str]
    #: how many uploads make close succeed
    quorum: int


class Placer:
    """The mount's side of placement: config and live state in, policy.placement decides."""

    def __init__(self, catalog: Catalog, stores: Stores, config: Config):
        self.cat = catalog
        self.stores = stores
        self.tables = {n: dict(config.provider_tables.get(n, {})) for n in stores.order}
        self.rules = rules_from_config(config.governance_rules)
        self.copies = max(1, config.copies)
        self.quorum = max(1, min(config.write_quorum, self.copies))
        self.balance = self.quorum < self.copies
        self._load: dict[str, int] = {}
        self._load_at = float("-inf")

    def load(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._load_at >= LOAD_TTL:
            self._load, self._load_at = self.cat.queued_by_provider(), now
        return self._load

    def views(self, down: set[str] = frozenset()) -> list[ProviderView]:  # type: ignore[assignment]
        status = self.stores.statuses()
        for name in down:
            status[name] = DOWN
        return views_from_config(self.tables, status, self.load())

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
              holders: list[str] = ()) -> list[str]:  # type: ignore[assignment]
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
        return out[:max(self.copies, len(done))]


class Publisher:
    def __init__(self, catalog: Catalog, stores: Stores, staging: StagingArea, config: Config):
        self.cat = catalog
        self.stores = stores
        self.staging = staging
        self.placer = Placer(catalog, stores, config)

    async def free_key(self, provider: str, key: str, owner: int, depth: int = 0) -> None:
        """Make ``provider``/``key`` free for ``owner``: move other inodes' bytes away."""
        p = self.stores[provider]
        for holder in self.cat.holders(provider, key):
            if holder.inode == owner:
                continue
            other = self.cat.get(holder.inode)
            if other is None:
                self.cat.drop_replica(holder.inode, provider)
                continue
            dest_path = self.cat.path_of(holder.inode)
            dest = orphan_key(holder.inode) if dest_path is None else object_key(p, dest_path)
            if dest == key:
                dest = orphan_key(holder.inode)
            if depth < 8:
                await self.free_key(provider, dest, holder.inode, depth + 1)
            try:
                await self.stores.call(provider, copy_object_to, p, key, dest, dest_path or dest)
            except NotFound:
                # its upload never happened: nothing to keep
                self.cat.drop_replica(holder.inode, provider)
                continue
            self.cat.set_replica(holder.inode, provider, dest, holder.version, holder.state,
                                 holder.etag)

    async def publish(self, st: OpenFile) -> None:
        """Upload ``st``'s staging file; return only once quorum holds it. Caller holds st.lock."""
        if not st.dirty:
            return
        ino = st.ino
        inode = self.cat.get(ino)
        path = self.cat.path_of(ino)
        if inode is None or path is None:
            st.dirty = False  # unlinked: nobody can see these bytes any more
            return
        sha = st.sha256_if_known()
        spath = self.staging.path(ino)
        if sha is None:
            sha = await trio.to_thread.run_sync(hash_file, spath)
        version = inode.version + 1
        meta = object_meta(sha, st.mtime_ns)
        size = st.size
        done: dict[str, str | None] = {}
        old_keys: dict[str, str] = {}
        errors: list[OmnifsError] = []
        failed: set[str] = set()
        replicas = self.cat.replicas(ino)
        holders = [r.provider for r in replicas if r.state != "failed"]
        plan = self.placer.plan(path, holders)
        # a replicator is copying an older version to these right now: its object could
        # land after ours and replace it, so they are tried last
        busy = {r.provider for r in replicas if r.state == "pending" and r.version < version}
        plan.attempts.sort(key=lambda name: name in busy)
        keys: dict[str, str] = {}
        for name in plan.attempts:
            if len(done) >= plan.quorum:
                break
            old = self.cat.replica(ino, name)
            # a path too long for this store's keys has a fallback key (omnifs/layout.py)
            key = keys[name] = object_key(self.stores[name], path)
            try:
                await self.free_key(name, key, ino)
                self.cat.set_replica(ino, name, key, version, "pending")
                info = await self.stores.call(name, _upload, self.stores[name], key, path, spath,
                                              size, meta)
            except OmnifsError as e:
                errors.append(e)
                failed.add(name)
                _restore(self.cat, ino, name, old)
                continue
            if old is not None and old.key != key:
                old_keys[name] = old.key
            done[name] = info.etag
        if not done:
            last = errors[-1] if errors else None
            # every store full (file:// stores on a full disk): ENOSPC, not EIO
            cls = NoSpace if errors and all(isinstance(e, NoSpace) for e in errors) else Unavailable
            raise cls(f"{path}: no allowed provider accepted the upload "
                      f"({len(plan.attempts)} tried; last: {last})", key=path)
        homes = self.placer.homes(path, list(done), failed, holders)
        with self.cat.transaction():
            self.cat.update(ino, version=version, sha256=sha, size=size, mtime_ns=st.mtime_ns,
                            ctime_ns=max(st.ctime_ns, inode.ctime_ns), staged=0)
            for name, etag in done.items():
                self.cat.set_replica(ino, name, keys[name], version, "synced", etag)
            self.cat.mark_others_stale(ino, version)
            for name in homes[len(done):]:
                self.cat.enqueue("replicate", {"inode": ino, "provider": name},
                                 dedup=f"replicate:{ino}:{name}")
            for name, key in old_keys.items():
                self.cat.enqueue("delete", {"provider": name, "key": key})
            self.cat.add_version(ino, version, sha, size, st.mtime_ns)
        st.dirty = False
        st.marked = False


def _restore(cat: Catalog, ino: int, provider: str, old) -> None:
    """Undo the 'pending' mark of an upload that failed: the old row, or none."""
    if old is None:
        cat.drop_replica(ino, provider)
    else:
        cat.set_replica(ino, provider, old.key, old.version, old.state, old.etag,
                        old.verified_at)


def _upload(provider, key: str, path: str, spath, size: int, meta: dict[str, str]):
    meta, sidecar = placed_meta(provider, key, path, meta)
    with open(spath, "rb") as f:
        info = provider.write(key, f, size, meta)
    write_sidecar(provider, key, sidecar)
    return info
