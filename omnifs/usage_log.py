"""Store requests made by this process, flushed to the catalog's ``cat.usage`` as deltas.

The source is a function returning this process's *cumulative* counts:
``{(provider, op): (requests, errors, bytes_in, bytes_out)}``, ``op`` one of
``get put head list delete copy`` (:data:`omnifs.catalog.usage.OPS`). The
provider layer keeps them (``providers/metered.py``'s ``tally``:
:func:`process_source`). :class:`UsageLog` remembers what it
wrote last and, every ``interval`` seconds, at each UTC midnight and at
:meth:`UsageLog.close`, writes the difference in one transaction
(:meth:`omnifs.catalog.usage.StoreUsage.add`) on a catalog connection of its
own, from a thread of its own: callers' threads and event loops never wait on
SQLite for it.

The first flush writes everything the source counted since the process began
(one process, one log: the mount, the daemon, one command). The counts of a
flush count on the UTC day its interval began (the same rule
as the mount's access statistics, omnifs/access_log.py, whose
:func:`~omnifs.access_log.flush_delay` it shares). A flush that fails (a
locked or full catalog) writes nothing and logs one warning; its counts are
in the next delta, since the last written snapshot did not move. On a crash,
at most the counts of the last interval (and of failed flushes) are lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from omnifs.providers import metered

from .access_log import flush_delay
from .catalog.access import day_of
from .catalog.usage import Counts

if TYPE_CHECKING:
    from .catalog import Catalog

log = logging.getLogger("omnifs.usage")

#: a process's cumulative counts of store requests
Source = Callable[[], dict[tuple[str, str], Counts]]

#: seconds between flushes
FLUSH_INTERVAL = 10.0


def process_source() -> Source:
    """This process's counts of store requests: ``providers/metered.py``'s ``tally``, the one
    place every provider call is counted (nothing with ``[metrics] enabled = false``)."""
    return metered.tally


def delta(now: dict[tuple[str, str], Counts],
          before: dict[tuple[str, str], Counts]) -> dict[tuple[str, str], Counts]:
    """What ``now`` counted since ``before`` (cumulative counts; a key may be new)."""
    out = {}
    for key, counts in now.items():
        was = before.get(key, (0, 0, 0, 0))
        d = tuple(max(0, a - b) for a, b in zip(counts, was, strict=True))
        if any(d):
            out[key] = d
    return out  # type: ignore[return-value]


class UsageLog:
    """Flushes the deltas of ``source`` to ``cat.usage``; see the module docstring.

    ``cat_path_or_cat``: the catalog's path, or a :class:`Catalog` (its path is
    used: the flushing thread opens a connection of its own). Use as a context
    manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(self, cat_path_or_cat: str | Path | Catalog, source: Source,
                 interval: float = FLUSH_INTERVAL, *, clock: Callable[[], float] = time.time):
        path = getattr(cat_path_or_cat, "target", cat_path_or_cat)
        self._path: str | Path = path  # type: ignore[assignment]
        self.source = source
        self.interval = interval
        self._clock = clock
        self._written: dict[tuple[str, str], Counts] = {}
        self._day = day_of(clock())
        self._folded: int | None = None
        self._db: Catalog | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: flushes that wrote to the catalog (tests)
        self.flushes = 0

    def start(self) -> UsageLog:
        """Flush from a background thread every ``interval`` seconds until :meth:`close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="omnifs-usage", daemon=True)
            self._thread.start()
        return self

    def __enter__(self) -> UsageLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.wait(flush_delay(self._clock(), self.interval)):
            self.flush()

    def flush(self) -> bool:
        """Write what was counted since the last write, in one transaction; False when the
        catalog could not take it (it is in the next flush)."""
        with self._lock:
            now = self.source()
            rows = delta(now, self._written)
            day, self._day = self._day, day_of(self._clock())
            if not rows and self._folded == day:
                return True
            try:
                if self._db is None:
                    from .catalog import Catalog

                    self._db = Catalog(self._path)
                if rows:
                    self._db.usage.add(day, rows)
                if self._folded != day:
                    while self._db.usage.fold(day):
                        pass
                    self._folded = day
            except Exception as e:  # noqa: BLE001 - counting never fails the work it counts
                log.warning("store usage not written yet (kept for the next flush): %s", e)
                return False
            self._written = {k: tuple(v) for k, v in now.items()}  # type: ignore[misc]
            self.flushes += 1
            return True

    def close(self) -> None:
        """Stop the thread, write the last counts, close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()


def usage_log(cat_path_or_cat: str | Path | Catalog, source: Source | None = None,
              interval: float = FLUSH_INTERVAL) -> UsageLog:
    """A started :class:`UsageLog` of ``source`` (default: :func:`process_source`)."""
    return UsageLog(cat_path_or_cat, source or process_source(), interval).start()


@contextmanager
def recording(catalog_path: str | Path | None,
              source: Source | None = None) -> Iterator[UsageLog | None]:
    """Record a command's store requests in the catalog at ``catalog_path`` while the block
    runs (``omnifs cp``, ``sync``, ``migrate run``); nothing when there is no catalog there
    (a copy between two URIs creates none)."""
    if catalog_path is None or (not str(catalog_path).startswith("postgres")
                                and not Path(catalog_path).exists()):
        yield None
        return
    log = usage_log(catalog_path, source)
    try:
        yield log
    finally:
        log.close()
