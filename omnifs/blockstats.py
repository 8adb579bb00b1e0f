"""The block cache's counters: hits, misses, evictions, corrupt entries, stores.

They are counted in memory and written to a small diskcache of their own
(no eviction) at most once a second, by a timer thread, and on
``close``/``stats``, so ``omnifs cache stats`` in another process sees them
and they survive remounts. Counting never waits for SQLite: the mount
counts hits on its event-loop thread (reads served from memory).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import diskcache

log = logging.getLogger("omnifs.cache")

COUNTERS = ("hits", "misses", "evictions", "corrupt", "stores")
_FLUSH_EVERY = 1.0


@dataclass
class CacheStats:
    directory: str
    limit: int
    size: int
    entries: int
    block_size: int
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    corrupt: int = 0
    stores: int = 0

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hit_ratio"] = self.hit_ratio
        return d


class Counters:
    """The counters of one cache directory (its ``stats`` subdirectory); thread-safe.

    ``before_flush`` runs first at every flush, the timed one included: the
    block cache writes its deferred LRU access times there.
    """

    def __init__(self, directory: Path, before_flush: Callable[[], None]):
        self._store = diskcache.Cache(str(directory / "stats"), eviction_policy="none")
        self._before_flush = before_flush
        self._pending = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None

    def count(self, name: str, n: int = 1) -> None:
        # never written here: the mount counts hits on its event-loop thread
        # (reads served from memory), which must not wait for SQLite; a timer
        # thread writes them within a second
        with self._lock:
            self._pending[name] += n
            timer = None
            if self._timer is None:
                timer = self._timer = threading.Timer(_FLUSH_EVERY, self._timed_flush)
                timer.daemon = True
        if timer is not None:
            timer.start()

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception as e:  # noqa: BLE001 - a closed cache at unmount; counters are best effort
            log.debug("counter flush failed: %s", e)

    def flush(self) -> None:
        """Persist what was counted since the last flush (after ``before_flush``)."""
        self._before_flush()
        with self._lock:
            pending, self._pending = self._pending, dict.fromkeys(COUNTERS, 0)
            self._last_flush = time.monotonic()
        for name, n in pending.items():
            if n:
                self._store.incr(name, n, retry=True)

    def totals(self) -> dict[str, int]:
        """Every counter as persisted (call :meth:`flush` first for what is pending)."""
        return {name: int(self._store.get(name, 0, retry=True)) for name in COUNTERS}

    def reset(self) -> None:
        """Zero every counter, pending and persisted."""
        with self._lock:
            self._pending = dict.fromkeys(COUNTERS, 0)
        self._store.clear(retry=True)

    def stop(self) -> None:
        """Cancel the timed flush (the caller flushes once more itself)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        self._store.close()
