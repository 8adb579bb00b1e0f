"""Publishing a staging file: upload to write_quorum stores, record, queue the rest.

Placement is config order for now (the daemon issue brings policy-driven
placement): the first ``copies`` providers are the file's home; the first
``write_quorum`` of them that accept the upload make close/fsync succeed, a
failing one is replaced by the next provider in order. The other homes get
queued ``replicate`` work.

Object keys are plain paths. A key can still be held by another inode whose
queued move has not run yet (``mv a b; echo new > a``): :func:`free_key` moves
that object out of the way first, so an upload never destroys another file's
only bytes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from omnifs.catalog import Catalog
from providers import META_MTIME, META_SHA256, RESERVED_PREFIX
from providers.errors import NotFound, OmnifsError

from .staging import OpenFile, StagingArea, hash_file
from .stores import Stores

if TYPE_CHECKING:
    from omnifs.config import Config

import trio

log = logging.getLogger("omnifs.mount")


def orphan_key(ino: int) -> str:
    """Where the bytes of an unlinked-but-open file wait when their key is reused."""
    return f"{RESERVED_PREFIX}orphans/{ino}"


def object_meta(sha256: str | None, mtime_ns: int) -> dict[str, str]:
    meta = {META_MTIME: f"{mtime_ns / 1e9:.9f}"}
    if sha256:
        meta[META_SHA256] = sha256
    return meta


class Publisher:
    def __init__(self, catalog: Catalog, stores: Stores, staging: StagingArea, config: Config):
        self.cat = catalog
        self.stores = stores
        self.staging = staging
        self.copies = min(config.copies, len(stores.order)) or 1
        self.quorum = min(config.write_quorum, self.copies)

    async def free_key(self, provider: str, key: str, owner: int, depth: int = 0) -> None:
        """Make ``provider``/``key`` free for ``owner``: move other inodes' bytes away."""
        for holder in self.cat.holders(provider, key):
            if holder.inode == owner:
                continue
            other = self.cat.get(holder.inode)
            if other is None:
                self.cat.drop_replica(holder.inode, provider)
                continue
            dest = self.cat.path_of(holder.inode)
            if dest is None or dest == key:
                dest = orphan_key(holder.inode)
            if depth < 8:
                await self.free_key(provider, dest, holder.inode, depth + 1)
            p = self.stores[provider]
            try:
                await self.stores.call(provider, p.copy, key, dest, None)
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
        for name in self.stores.order:
            if len(done) >= self.quorum:
                break
            old = self.cat.replica(ino, name)
            try:
                await self.free_key(name, path, ino)
                self.cat.set_replica(ino, name, path, version, "pending")
                info = await self.stores.call(name, _upload, self.stores[name], path, spath,
                                              size, meta)
            except OmnifsError as e:
                errors.append(e)
                self.cat.set_replica(ino, name, path, version, "failed")
                continue
            if old is not None and old.key != path:
                old_keys[name] = old.key
            done[name] = info.etag
        if len(done) < self.quorum:
            raise errors[0] if errors else OSError(5, "no provider accepted the upload")
        homes = list(done) + [n for n in self.stores.order if n not in done]
        with self.cat.transaction():
            self.cat.update(ino, version=version, sha256=sha, size=size, mtime_ns=st.mtime_ns,
                            ctime_ns=max(st.ctime_ns, inode.ctime_ns), staged=0)
            for name, etag in done.items():
                self.cat.set_replica(ino, name, path, version, "synced", etag)
            self.cat.mark_others_stale(ino, version)
            for name in homes[len(done):self.copies]:
                self.cat.enqueue("replicate", {"inode": ino, "provider": name},
                                 dedup=f"replicate:{ino}:{name}")
            for name, key in old_keys.items():
                self.cat.enqueue("delete", {"provider": name, "key": key})
            self.cat.add_version(ino, version, sha, size, st.mtime_ns)
        st.dirty = False
        st.marked = False


def _upload(provider, key: str, spath, size: int, meta: dict[str, str]):
    with open(spath, "rb") as f:
        return provider.write(key, f, size, meta)
