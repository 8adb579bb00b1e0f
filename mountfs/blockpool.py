"""Reused, page-aligned buffers for the blocks a store stream fills.

Why: a fresh 4 MiB buffer costs the reading thread 1,024 page faults, the
kernel zeroing every page and Python zeroing them again (``bytearray``). On
the 2-core test machine that is a third of the stream thread's CPU during a
cold 256 MiB read, time the stream then falls behind the reader by. A buffer
used before has its pages already: the stream only writes into it.

When is a buffer free again? Every view of it — the block the handle keeps,
the copy waiting for the cache writer, a slice pyfuse3 is replying with —
descends from the one ``memoryview`` made of it at :meth:`BlockPool.take`,
and that view's buffer keeps one reference to the underlying anonymous
``mmap`` for as long as any of them lives. So the pool hands a buffer out again only
when nothing but the pool refers to it: no bookkeeping by its users, no way
to reuse bytes someone still reads.

Bounds: at most ``count`` buffers are pooled; when all are in use a plain
buffer is made (and freed as usual). Buffers unused for ``IDLE`` seconds go
back to the system, so an idle mount shrinks to nothing.
"""

from __future__ import annotations

import logging
import mmap
import sys
import threading
import time

from omnifs.blockcache import aligned_buffer

log = logging.getLogger("omnifs.read")

#: seconds a pooled buffer may sit unused before it is released
IDLE = 60.0


#: pages mapped and zeroed by the kernel in the mmap call itself, without the GIL
#: (one call instead of a fault per page, and no Python memset)
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


class _Slot:
    __slots__ = ("mem", "used_at")

    def __init__(self, size: int):
        # anonymous maps are page-aligned, as O_DIRECT wants
        self.mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _POPULATE)
        self.used_at = time.monotonic()

    def free(self) -> bool:
        # the slot's attribute and getrefcount's argument: no view of it is alive
        return sys.getrefcount(self.mem) <= 2

    def view(self) -> memoryview:
        self.used_at = time.monotonic()
        return memoryview(self.mem)


class BlockPool:
    def __init__(self, size: int, count: int):
        self.size = size
        self.count = count
        self._slots: list[_Slot] = []
        self._next = 0
        self._lock = threading.Lock()
        self._closed = False
        self._timer: threading.Timer | None = None
        #: buffers made outside the pool (all pooled ones were in use)
        self.overflow = 0

    def take(self) -> memoryview:
        """A writable, page-aligned buffer of ``size`` bytes (contents undefined)."""
        with self._lock:
            n = len(self._slots)
            for i in range(n):
                slot = self._slots[(self._next + i) % n]
                if slot.free():
                    self._next = (self._next + i + 1) % n
                    return slot.view()
        added = self._add(self.count)
        if added is None:
            self.overflow += 1
            return aligned_buffer(self.size)
        return added.view()

    def warm(self, limit: int | None = None) -> None:
        """Make pooled buffers now, pages and all (a mount's first cold read pays no faults).

        ``limit``: at most this many bytes of them (the rest are made on demand).

        At normal priority: the kernel populates each map holding the
        process's memory-map lock, so a thread starved by SCHED_IDLE there
        could hold up every other thread's mmap and munmap (the warm read
        path maps cache files). Measured either way, cold reads right after
        mount were alike (row 2 ratios, normal vs idle: 0.52 vs 0.57, 0.56 vs 0.60).
        """
        want = self.count if limit is None else min(self.count, max(1, limit // self.size))
        while len(self._slots) < want and self._add(want) is not None:
            pass

    def _add(self, limit: int) -> _Slot | None:
        """A new pooled buffer while the pool holds fewer than ``limit``; None otherwise."""
        with self._lock:
            if self._closed or len(self._slots) >= limit:
                return None
        try:
            slot = _Slot(self.size)  # outside the lock: made while others take theirs
        except OSError as e:  # no map to be had (memory limits)
            log.info("block pool stops at %d of %d buffers: %s", len(self._slots), self.count, e)
            return None
        with self._lock:
            if self._closed or len(self._slots) >= limit:
                return None  # others filled it meanwhile: this one is dropped
            self._slots.append(slot)
        self._schedule_sweep()
        return slot

    def __len__(self) -> int:
        return len(self._slots)

    def _schedule_sweep(self) -> None:
        with self._lock:
            if self._timer is not None or self._closed:
                return
            self._timer = threading.Timer(IDLE / 2, self._sweep)
            self._timer.daemon = True
            self._timer.start()

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._timer = None
            self._slots = [s for s in self._slots if not (s.free() and now - s.used_at > IDLE)]
            self._next = 0
            left = bool(self._slots)
        if left:
            self._schedule_sweep()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
            self._slots = []
        if timer is not None:
            timer.cancel()
