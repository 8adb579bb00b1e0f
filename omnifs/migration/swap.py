"""Swapping a store under a live mount: every file's replicas leave OLD for NEW.

``omnifs migrate provider OLD NEW`` first marks OLD *draining* in the
catalog (:meth:`omnifs.catalog.Catalog.draining`): from then on the mount,
the daemon and this command place no new replica there (placement's views
leave it out), while reads may still use its replicas. Then, per file with
a replica row on OLD:

1. a synced replica of the current version on NEW, made with the replicate
   steps of :func:`omnifs.replication.replicate_now` (verified copy, catalog
   record) unless one is there already; a file whose version moved during
   the copy (its NEW row ends ``stale``) is copied again;
2. with ``--delete-old``, NEW's replica read back and hashed unless the
   copy that made it already verified it (one that fails is marked stale:
   the next pass copies it again);
3. when the file has fewer than ``copies`` synced replicas off OLD, more
   copies on stores placement chooses (never OLD);
4. in one transaction: OLD's row dropped only while the file still has
   ``copies`` synced replicas of its current version off OLD, NEW among
   them; else it is left for a later pass. With ``--delete-old``, OLD's
   object is deleted after that commit.

Passes repeat until no replica row names OLD. Everything is decided from
the catalog, so a run killed at any point (kill -9) is resumed by running
the command again. A finished swap keeps OLD marked (state ``done``) so a
mount still running with OLD in its config does not place files there again
before OLD leaves the config; ``--abort`` removes the mark.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.policy.placement import PlacementError, Rule, allowed, place, views_from_config
from omnifs.providers import Provider
from omnifs.providers.errors import IntegrityError, NotFound, OmnifsError

from ..catalog import Catalog
from ..layout import delete_object
from ..replication import Retry, replicate_now
from ..scrub import rehash

#: tries per file and pass to get a NEW replica of a version that keeps moving
REDO = 3
#: passes in a row without any replica leaving OLD before the run gives up (rerun resumes)
MAX_STALLS = 6
#: seconds between such passes (times the stall count): writers and uploads settle meanwhile
PAUSE = 0.5
#: how long after OLD was marked draining every process has seen the mark (the mount
#: re-reads it every second): OLD is looked at again after that before the swap is done
SETTLE = 2.5


def draining_record(new: str, state: str) -> str:
    """What ``draining:OLD`` holds in the catalog: where OLD's files go, and how far."""
    return json.dumps({"to": new, "state": state, "since": time.time()})


def begin(cat: Catalog, old: str, new: str) -> None:
    """OLD takes no new replica from now on (every process reads the mark)."""
    cat.set_draining(old, draining_record(new, "running"))


def abort(cat: Catalog, old: str) -> int:
    """OLD takes new replicas again; how many files still have a replica there."""
    cat.clear_draining(old)
    return len(cat.replicas.inodes_on(old))


@dataclass
class SwapStats:
    """What a swap did; ``failures`` holds the last error per file of the last pass."""

    files: int = 0
    copies: int = 0
    bytes: int = 0
    dropped: int = 0
    deleted: int = 0
    passes: int = 0
    left: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    dropped: bool = False
    copies: int = 0
    bytes: int = 0
    deleted: bool = False
    error: str | None = None
    path: str = ""


class Swap:
    """One run of ``omnifs migrate provider``: passes over OLD's replicas until none is left.

    ``providers`` are opened by the caller and shared by the workers (the
    providers are thread-safe); each worker thread has its own catalog
    connection (a :class:`Catalog` belongs to one thread).
    """

    def __init__(self, catalog_path: str | Path, providers: Mapping[str, Provider], old: str,
                 new: str, *, copies: int, tables: Mapping[str, Mapping[str, object]],
                 rules: Sequence[Rule] = (), delete_old: bool = False, parallel: int = 4,
                 progress: Callable[[SwapStats, int, int], None] | None = None,
                 pause: float = PAUSE, max_stalls: int = MAX_STALLS, settle: float = SETTLE):
        self.catalog_path = catalog_path
        self.providers = dict(providers)
        self.old, self.new = old, new
        self.copies = copies
        self.tables = {n: dict(t) for n, t in tables.items() if n in self.providers}
        self.rules = list(rules)
        self.delete_old = delete_old
        self.parallel = max(1, parallel)
        self.progress = progress
        self.pause, self.max_stalls, self.settle = pause, max_stalls, settle
        self.stats = SwapStats()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._catalogs: list[Catalog] = []

    # -- the run -------------------------------------------------------------
    def run(self) -> SwapStats:
        cat = self._catalog()
        try:
            begin(cat, self.old, self.new)
            begun = time.monotonic()
            stalls = 0
            seen: set[int] = set()
            with ThreadPoolExecutor(self.parallel, thread_name_prefix="swap") as pool:
                while inos := self._left(cat, begun):
                    self.stats.passes += 1
                    seen.update(inos)
                    self.stats.files = len(seen)
                    self.stats.failures = {}
                    before = self.stats.dropped
                    for done, outcome in enumerate(pool.map(self._one, inos), 1):
                        self._count(outcome)
                        if self.progress is not None:
                            self.progress(self.stats, done, len(inos))
                    if self.stats.dropped > before:
                        stalls = 0
                        continue
                    stalls += 1
                    if stalls >= self.max_stalls:
                        break
                    time.sleep(self.pause * stalls)
            self.stats.left = len(cat.replicas.inodes_on(self.old))
            if not self.stats.left:
                cat.set_draining(self.old, draining_record(self.new, "done"))
            return self.stats
        finally:
            for c in self._catalogs:
                c.close()

    def _left(self, cat: Catalog, begun: float) -> list[int]:
        """Inodes with a replica row on OLD; when none, again once every process saw the mark
        (a publish that chose OLD just before may still record a replica there)."""
        inos = cat.replicas.inodes_on(self.old)
        if inos:
            return inos
        time.sleep(max(self.pause, begun + self.settle - time.monotonic()))
        return cat.replicas.inodes_on(self.old)

    def _catalog(self) -> Catalog:
        cat = getattr(self._local, "cat", None)
        if cat is None:
            cat = self._local.cat = Catalog(self.catalog_path, create=False)
            with self._lock:
                self._catalogs.append(cat)
        return cat

    def _count(self, o: Outcome) -> None:
        s = self.stats
        s.copies += o.copies
        s.bytes += o.bytes
        s.dropped += o.dropped
        s.deleted += o.deleted
        if o.error is not None:
            s.failures[o.path] = o.error

    # -- one file ------------------------------------------------------------
    def _one(self, ino: int) -> Outcome:
        cat = self._catalog()
        out = Outcome(path=f"inode {ino}")
        try:
            self._file(cat, ino, out)
        except (Retry, OmnifsError, PlacementError) as e:
            out.error = str(e).splitlines()[0] if str(e) else type(e).__name__
        return out

    def _file(self, cat: Catalog, ino: int, out: Outcome) -> None:
        path = cat.ns.path_of(ino)
        if path is not None:
            out.path = "/" + path.lstrip("/")
            self._to_new(cat, ino, out)
            if self.delete_old:
                self._verify_new(cat, ino)
            self._top_up(cat, ino, out.path, out)
        self._drop(cat, ino, out, need_new=path is not None)

    def _current(self, cat: Catalog, ino: int) -> tuple[int, set[str]] | None:
        """(current version, stores with a synced replica of it off OLD), None: gone."""
        inode = cat.ns.get(ino)
        if inode is None:
            return None
        return inode.version, {r.provider for r in cat.replicas.of(ino)
                               if r.state == "synced" and r.version == inode.version
                               and r.provider != self.old}

    def _to_new(self, cat: Catalog, ino: int, out: Outcome) -> None:
        """A synced replica of the current version on NEW; redone when the version moved."""
        if not self._new_allowed(out.path):
            raise OmnifsError(f"the governance rules do not allow {self.new} to hold this file")
        for _ in range(REDO):
            now = self._current(cat, ino)
            if now is None or self.new in now[1]:
                return
            out.bytes += replicate_now(cat, self.providers, ino, self.new)
            out.copies += 1
        now = self._current(cat, ino)
        if now is not None and self.new not in now[1]:
            raise Retry("the file changed during every copy; copied again in the next pass")

    def _new_allowed(self, path: str) -> bool:
        views = views_from_config({self.new: self.tables.get(self.new, {})})
        return bool(allowed(path, views, self.rules))

    def _top_up(self, cat: Catalog, ino: int, path: str, out: Outcome) -> None:
        """More copies off OLD when the file has fewer than ``copies`` there."""
        now = self._current(cat, ino)
        if now is None or len(now[1]) >= self.copies:
            return
        views = views_from_config(self.tables, draining=set(cat.draining()) | {self.old})
        targets = place(path, views, self.rules, copies=self.copies - len(now[1]),
                        exclude=now[1], balance=True).targets
        for target in targets:
            out.bytes += replicate_now(cat, self.providers, ino, target)
            out.copies += 1

    def _verify_new(self, cat: Catalog, ino: int) -> None:
        """NEW's replica read back and hashed, unless its copy already checked the bytes."""
        inode = cat.ns.get(ino)
        rep = cat.replicas.get(ino, self.new)
        if inode is None or rep is None or rep.version != inode.version:
            return
        if rep.state != "synced" or rep.verified_at is not None:
            return
        size, sha = rehash(self.providers[self.new], rep.key)
        if size != inode.size or (inode.sha256 and sha != inode.sha256):
            with cat.transaction():
                now = cat.replicas.get(ino, self.new)
                if now is not None and now.version == rep.version and now.key == rep.key:
                    cat.replicas.set_state(ino, self.new, "stale")
            raise IntegrityError(f"{self.new}:{rep.key} does not hold the file's bytes; "
                                 "copied again in the next pass")
        cat.replicas.mark_verified(ino, self.new, rep.version, time.time())

    def _drop(self, cat: Catalog, ino: int, out: Outcome, *, need_new: bool) -> None:
        """Drop OLD's row while ``copies`` synced replicas stay off OLD; delete its object."""
        with cat.transaction():
            rep = cat.replicas.get(ino, self.old)
            if rep is None:
                return
            now = self._current(cat, ino)
            if now is not None and rep.state == "pending" and rep.version > now[0]:
                # a mount's upload of a version not yet published: its end records the row
                out.error = f"an upload to {self.old} is still running; retried in the next pass"
                return
            if now is not None:
                holders = now[1]
                if len(holders) < self.copies or (need_new and self.new not in holders):
                    out.error = (f"{len(holders)} of {self.copies} copies off {self.old} "
                                 "yet; retried in the next pass")
                    return
            cat.replicas.drop(ino, self.old)
            shared = bool(cat.replicas.holders(self.old, rep.key))
        out.dropped = True
        if self.delete_old and not shared:
            with contextlib.suppress(NotFound):
                delete_object(self.providers[self.old], rep.key)
            out.deleted = True
