"""Restores of archived files asked for by the mount's read path.

A read that finds every copy of a file archived (S3 GLACIER/DEEP_ARCHIVE, Azure
Archive) fails at once with ``Archived`` (ENODATA, one log line naming the file,
mountfs/fuse_errors.py); before it does, :meth:`Restores.request` asks each store
holding a copy to restore it (``Provider.restore``: S3 RestoreObject for
:data:`RESTORE_DAYS` day(s), standard retrieval; Azure rehydration to Hot,
standard priority), once per file version per mount, from a thread of its own so
the read never waits on it. Reading again once the store has restored the object
(hours, on the clouds) succeeds. Nothing ever waits for a restore.

An Azure rehydration changes the copy's tier (Archive -> Hot), so the catalog's
tier column follows it: right after asking, the request reads the tier back (one
HEAD) and records it when the rehydration is already done (Azurite does it at once);
otherwise it queues the ``tier`` item that follows a rehydration to its end
(omnifs/costing/moves.py ``rehydrate``: the daemon looks again every 15 minutes and
records the tier the store then says). An S3 restore leaves the object in its storage
class (a temporary readable copy), so its catalog tier stays as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from omnifs.providers import OmnifsError, Provider

from ..catalog import Catalog
from ..work import TierChange, enqueue
from .moves import REHYDRATE_POLL, restores

log = logging.getLogger("omnifs.cost")

#: days a restored S3 copy stays readable
RESTORE_DAYS = 1
#: the tier a restore moves a copy to, by the store's scheme (the others keep their tier)
REHYDRATES_TO = {"az": "Hot"}
#: (inode, version) remembered as asked; beyond this many the memory starts over
_MEMORY = 10_000


class Restores:
    """The restore requests one process made; see the module docstring."""

    def __init__(self, days: int = RESTORE_DAYS):
        self.days = days
        self._asked: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        #: requests running (tests join them)
        self.threads: list[threading.Thread] = []

    def request(self, cat: Catalog, providers: dict[str, Provider], inode) -> str:
        """Ask every store holding ``inode``'s current version to restore it (once per
        version); the words a log line gives for it."""
        copies = [(providers[r.provider], r.key) for r in cat.replicas.of(inode.id)
                  if r.state == "synced" and r.version == inode.version
                  and r.provider in providers]
        names = ", ".join(p.name for p, _ in copies)
        with self._lock:
            if (inode.id, inode.version) in self._asked:
                return f"a restore was asked of {names}: read again once it is restored"
            if len(self._asked) >= _MEMORY:
                self._asked.clear()
            self._asked.add((inode.id, inode.version))
        thread = threading.Thread(target=self._run, args=(cat.target, inode.id, copies),
                                  daemon=True, name="omnifs-restore")
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return f"a restore is asked of {names}: read again once it is restored"

    def _run(self, catalog: str | Path, ino: int, copies: list[tuple[Provider, str]]) -> None:
        rehydrating = []
        for p, key in copies:
            try:
                if p.restore(key, self.days):
                    log.info("restore of %s asked of %s", key, p.name)
                    if p.location.scheme in REHYDRATES_TO:
                        rehydrating.append((p, key, p.head(key).tier))
            except OmnifsError as e:  # a copy that is not archived says so: nothing to do
                log.info("restore of %s on %s not asked: %s", key, p.name, e)
        if rehydrating:  # on a catalog connection of this thread's own
            cat = Catalog(catalog)
            try:
                follow(cat, ino, rehydrating)
            finally:
                cat.close()


def follow(cat: Catalog, ino: int, rehydrating: list[tuple[Provider, str, str | None]],
           now: float | None = None) -> None:
    """Record the tier each store says its copy of ``ino`` is in after a rehydration was
    asked, and queue the ``tier`` item that follows one still under way."""
    now = time.time() if now is None else now
    with cat.transaction():
        for p, key, tier in rehydrating:
            rep = cat.replicas.get(ino, p.name)
            if rep is None or rep.key != key:
                continue  # moved or dropped meanwhile
            if (rep.tier or "") != (tier or ""):
                cat.replicas.set_tier(ino, p.name, tier)
            if restores(p, tier):
                enqueue(cat.work, TierChange(inode=ino, provider=p.name,
                                             tier=REHYDRATES_TO[p.location.scheme],
                                             archive_only=1, asked=int(now)),
                        not_before=now + REHYDRATE_POLL)
