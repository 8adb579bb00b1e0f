"""The mount's room on local disk.

``[cache] size`` with staging counted, and the free-space reserve.

Why: staging files are never evicted (they hold bytes not yet uploaded), so
a mount that let them grow beside a full block cache could fill the cache
directory far past its limit, and then the host's disk. Here, before a
write may take more room on local disk:

* the cache directory stays within ``[cache] size``: staging files and the
  written files waiting for the block cache (mountfs/written.py) count
  first, and the block cache gets what is left (its ``budget``; it evicts
  least recently used blocks to fit);
* the disk keeps ``free_space_ratio`` of itself free (providers/diskspace.py):
  blocks are evicted for the write, or it is refused.

A write that still has no room waits while uploads are under way that will
free some (write-back closes, publishes, written files on their way into the
block cache, which are dropped at once since they are only a cache), for at
most ``SPACE_WAIT`` seconds, and then gets ENOSPC. Nothing acknowledged is
ever dropped to make room.

Deletes must work on a full disk (the user's way out): SQLite needs a little
room to record one. A spare file beside the catalog (and in the cache
directory when that is on another disk) is given back just before a delete
when the disk has less than it free, and taken again once there is room.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from omnifs.providers.diskspace import SpareFile, no_space, room, spare_files

if TYPE_CHECKING:
    from omnifs.blockcache import BlockCache

    from .staging import StagingArea
    from .written import Kept

log = logging.getLogger("omnifs.mount")

#: seconds a write may wait for uploads to free room before it gets ENOSPC
SPACE_WAIT = 20.0
#: how often a waiting write looks again
_POLL = 0.05
#: seconds between "no room" log lines
_LOG_EVERY = 30.0


class DiskBudget:
    """One per mount: asked before staging grows, told nothing (it reads what staging holds)."""

    def __init__(self, *, limit: int, free_space_ratio: float, staging: StagingArea,
                 written: Kept, cache: BlockCache | None, catalog_path: Path,
                 in_flight: Callable[[], int]):
        self.limit = limit
        self.ratio = free_space_ratio
        self.staging = staging
        self.written = written
        self.cache = cache
        #: uploads under way that will free staging room when done (write-back, publishes)
        self.in_flight = in_flight
        self._logged_at = float("-inf")
        self.spares = spare_files(catalog_path, staging.dir.parent)
        #: spare files given back to the disk for deletes: their room is not for data
        self._released: list[SpareFile] = []
        for spare in self.spares:
            spare.ensure()
        if cache is not None:
            cache.budget = self.room_for_blocks

    def held(self) -> int:
        """Bytes the cache directory holds that eviction cannot touch."""
        return self.staging.held + self.written.held

    def room_for_blocks(self) -> int:
        """What the block cache may hold now: the limit less what staging holds."""
        return self.limit - self.held()

    async def admit(self, nbytes: int) -> None:
        """Return once ``nbytes`` more may be written to staging; raise ENOSPC if they may not."""
        if nbytes <= 0:
            return
        deadline = None
        while True:
            refused = await self._make_room(nbytes)
            if refused is None:
                return
            # what is waiting for the block cache is only a cache: its room goes first
            if self.written.drop_queued():
                continue
            now = trio.current_time()
            deadline = deadline if deadline is not None else now + SPACE_WAIT
            if not self.in_flight() or now >= deadline:
                self._log(refused)
                raise refused
            await trio.sleep(_POLL)

    async def _make_room(self, nbytes: int) -> OSError | None:
        target = self._blocks_target(nbytes)
        if target is not None and self.cache is not None:
            await trio.to_thread.run_sync(self.cache.shrink, target)
        return self._refusal(nbytes)

    def copy_guard(self) -> Callable[[int], None]:
        """A check for copying a file into staging, called before each chunk in the copying
        thread: the copy takes room like writes do, and gets ENOSPC where they would."""
        copied = 0

        def guard(nbytes: int) -> None:
            nonlocal copied
            target = self._blocks_target(nbytes, copied)
            if target is not None and self.cache is not None:
                self.cache.shrink(target)
            refused = self._refusal(nbytes, copied)
            if refused is not None:
                self._log(refused)
                raise refused
            copied += nbytes

        return guard

    def _blocks_target(self, nbytes: int, extra: int = 0) -> int | None:
        """The volume the block cache must shrink to for ``nbytes`` more, or None: it fits."""
        cache = self.cache
        if cache is None:
            return None
        targets = []
        allowed = self.limit - self.held() - extra - nbytes
        if cache.last_volume > allowed:
            targets.append(allowed - cache.block_size)
        short = self._short(nbytes)
        if short > 0:
            targets.append(cache.last_volume - short - cache.block_size)
        return min(targets) if targets else None

    def _short(self, nbytes: int) -> int:
        """Bytes the disk lacks for ``nbytes`` more, its reserve and the spare room owed kept."""
        owed = sum(s.size for s in self._released)
        return nbytes + owed - room(self.staging.dir, self.ratio)

    def _refusal(self, nbytes: int, extra: int = 0) -> OSError | None:
        """Why ``nbytes`` more may not be written now (after any eviction), or None."""
        held = self.held() + extra
        if held + nbytes > self.limit:
            return OSError(errno.ENOSPC, f"files being written hold {held >> 20} MiB of the "
                                         f"cache's {self.limit >> 20} MiB ([cache] size)")
        if self._short(nbytes) > 0:
            return no_space(self.staging.dir, self.ratio)
        if self._released:
            self.after_delete()
        return None

    def _log(self, err: OSError) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            self._logged_at = now
            log.warning("a write got ENOSPC: %s", err.strerror)

    # -- deletes on a full disk ------------------------------------------------
    def before_delete(self) -> None:
        """Give the spare room back if the disk is too full to record a delete."""
        for spare in self.spares:
            if spare not in self._released and spare.release_if_low():
                self._released.append(spare)

    def after_delete(self) -> None:
        """Take the spare room again once there is some."""
        if self._released:
            self._released = [s for s in self._released if not s.ensure()]
