"""The configured providers, as seen from the trio event loop, and their health.

Every provider call is blocking (SDKs are); it runs in a worker thread behind
a per-provider ``CapacityLimiter`` so one slow store cannot take every thread
and the event loop never blocks on the network.

Health: :class:`MountHealth` merges the daemon's verdicts (``provider_health``
in the catalog) with what this mount saw itself, so a store that just failed
an upload is avoided at once, before the daemon's next probe round. The
mount's failures go to ``health_samples`` (source ``mount``) so the daemon
counts them too ("a provider with failing requests from the mount counts").
Successes are not written on the hot path: only the first success after a
failure, and then at most one per :data:`SUCCESS_EVERY` seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from omnifs.catalog import Catalog, ProviderHealth
from omnifs.policy.health import DEGRADED, DOWN, LOST, RANK, UNKNOWN
from omnifs.providers import Provider
from omnifs.providers.diskspace import is_disk_full
from omnifs.providers.errors import (
    Archived,
    Conflict,
    IntegrityError,
    InvalidInput,
    NoSpace,
    NotFound,
    OmnifsError,
    RootMissing,
    TimedOut,
)

T = TypeVar("T")

log = logging.getLogger("omnifs.mount")

#: concurrent blocking calls per provider
PER_PROVIDER = 8
#: a failure seen by this mount keeps the provider "down" for placement this long,
#: unless a success or a newer daemon verdict says otherwise
LOCAL_DOWN_FOR = 10.0
#: the daemon's verdicts are re-read at most this often
VERDICT_TTL = 1.0
#: a verdict older than this means no daemon runs: it is ignored
VERDICT_MAX_AGE = 60.0
#: persist at most one success sample per provider this often
SUCCESS_EVERY = 30.0
#: persist at most one failure sample per provider this often (a dead store under load)
FAILURE_EVERY = 0.5

#: errors that say nothing about a store's availability (a missing key, a lost race, bad bytes,
#: a local disk out of room: the store answered)
_NOT_HEALTH = (NotFound, Conflict, InvalidInput, IntegrityError, NoSpace, Archived)


def counts_against(exc: BaseException) -> bool:
    """Whether ``exc`` from a provider call is a health failure of that provider."""
    if isinstance(exc, RootMissing):  # the store can hold nothing: not a missing key
        return True
    if isinstance(exc, _NOT_HEALTH):
        return False
    if isinstance(exc, OSError) and is_disk_full(exc):  # this host's disk, not the store
        return False
    return isinstance(exc, (OmnifsError, OSError))


class MountHealth:
    """This mount's view of provider health; thread-safe (the read path calls from threads).

    Status of a provider, in order:

    * the daemon declared it ``lost`` -> lost (never chosen);
    * this mount saw it fail within :data:`LOCAL_DOWN_FOR` seconds, with no
      success and no daemon verdict since -> down;
    * the daemon says down, but this mount succeeded since -> degraded;
    * else the daemon's verdict (fresh rows only), else ``unknown``.
    """

    def __init__(self, catalog_path: str | Path | None, *, clock: Callable[[], float] = time.time):
        self._path = catalog_path
        self._clock = clock
        self._lock = threading.Lock()
        self._db: Catalog | None = None
        self._last_ok: dict[str, float] = {}
        self._last_fail: dict[str, float] = {}
        self._saved_ok: dict[str, float] = {}
        self._saved_fail: dict[str, float] = {}
        self._verdicts: dict[str, ProviderHealth] = {}
        self._verdicts_at = float("-inf")

    def _catalog(self) -> Catalog | None:
        """A private connection: health writes never join the mount's catalog transactions."""
        if self._db is None and self._path is not None:
            self._db = Catalog(self._path)
        return self._db

    def record(self, provider: str, ok: bool, latency: float, error: str | None = None) -> None:
        """One request's outcome; failures (and sparse successes) reach the catalog."""
        now = self._clock()
        if ok:
            previous_fail = self._last_fail.get(provider, float("-inf"))
            self._last_ok[provider] = now
            saved = self._saved_ok.get(provider, float("-inf"))
            if saved >= previous_fail and now - saved < SUCCESS_EVERY:
                return  # the hot path: nothing new to tell
            self._saved_ok[provider] = now
        else:
            self._last_fail[provider] = now
            if now - self._saved_fail.get(provider, float("-inf")) < FAILURE_EVERY:
                return
            self._saved_fail[provider] = now
        self._persist(provider, ok, latency, error, now)

    def _persist(self, provider: str, ok: bool, latency: float, error: str | None,
                 now: float) -> None:
        with self._lock:
            try:
                cat = self._catalog()
                if cat is not None:
                    cat.health.record_sample(provider, ok, latency, error=error, source="mount",
                                             at=now)
            except Exception as e:  # noqa: BLE001 - health bookkeeping must never fail a request
                log.debug("health sample for %s not recorded: %s", provider, e)

    def verdicts(self) -> dict[str, ProviderHealth]:
        """The daemon's fresh verdicts (cached for :data:`VERDICT_TTL` seconds)."""
        now = self._clock()
        if now - self._verdicts_at < VERDICT_TTL:
            return self._verdicts
        with self._lock:
            try:
                cat = self._catalog()
                rows = cat.health.verdicts(VERDICT_MAX_AGE, now=now) if cat is not None else {}
            except Exception as e:  # noqa: BLE001 - no verdicts is a valid answer
                log.debug("provider health not readable: %s", e)
                rows = {}
        self._verdicts, self._verdicts_at = rows, now
        return rows

    def status(self, provider: str) -> str:
        now = self._clock()
        verdict = self.verdicts().get(provider)
        if verdict is not None and verdict.status == LOST:
            return LOST
        last_fail = self._last_fail.get(provider)
        last_ok = self._last_ok.get(provider, float("-inf"))
        if (last_fail is not None and now - last_fail < LOCAL_DOWN_FOR and last_ok < last_fail
                and (verdict is None or verdict.updated_at < last_fail)):
            return DOWN
        if verdict is None:
            return UNKNOWN
        if verdict.status == DOWN and last_ok > verdict.updated_at:
            return DEGRADED
        return verdict.status

    def statuses(self, names: list[str]) -> dict[str, str]:
        return {n: self.status(n) for n in names}

    def latencies(self) -> dict[str, float | None]:
        """The daemon's p50 per provider (read ranking input)."""
        return {n: v.p50 for n, v in self.verdicts().items()}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class Stores:
    """Providers in config order (the tie-break order of placement).

    Besides health, it knows which calls are in flight: :meth:`silent_for`
    tells how long a store has kept a call waiting without answering
    anything since, which is how the publisher notices a hung store before
    its ``timeout`` (a failure) says so.
    """

    def __init__(self, providers: dict[str, Provider], per_provider: int = PER_PROVIDER):
        self.by_name = dict(providers)
        self.order = list(providers)
        self._limits = {n: trio.CapacityLimiter(per_provider) for n in providers}
        #: set by the mount (:meth:`attach_health`); None in tools that only copy
        self.health: MountHealth | None = None
        #: per provider: call id -> when its thread started (monotonic)
        self._running: dict[str, dict[int, float]] = {n: {} for n in providers}
        #: per provider: when a call last came back (monotonic; a timeout is not an answer)
        self._answered: dict[str, float] = {}
        self._ids = itertools.count()

    def attach_health(self, health: MountHealth) -> None:
        self.health = health

    def __getitem__(self, name: str) -> Provider:
        return self.by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    async def call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` (a blocking call on provider ``name``) in a worker thread.

        Its outcome feeds :attr:`health` (failures always, successes sparsely).
        """
        start = time.monotonic()
        running, call = self._running[name], next(self._ids)

        def timed() -> T:
            running[call] = time.monotonic()  # waiting for the limiter is not the store's fault
            return fn(*args)

        try:
            result = await trio.to_thread.run_sync(timed, limiter=self._limits[name])
        except Exception as e:
            if not isinstance(e, TimedOut):
                self._answered[name] = time.monotonic()
            if self.health is not None and counts_against(e):
                self.health.record(name, False, time.monotonic() - start, str(e))
            raise
        finally:
            running.pop(call, None)
        self._answered[name] = time.monotonic()
        if self.health is not None:
            self.health.record(name, True, time.monotonic() - start)
        return result

    def silent_for(self, name: str) -> float:
        """Seconds the oldest call now running on ``name`` has waited with no call to ``name``
        coming back since it began (0 when none waits): a store that hangs keeps growing it,
        a busy one that still answers does not."""
        answered = self._answered.get(name, float("-inf"))
        waiting = [t for t in list(self._running[name].values()) if t > answered]
        return time.monotonic() - min(waiting) if waiting else 0.0

    def report(self, name: str, ok: bool, latency: float, error: str | None = None) -> None:
        """For callers that use a provider outside :meth:`call` (the read path's threads)."""
        if self.health is not None:
            self.health.record(name, ok, latency, error)

    def status(self, name: str) -> str:
        """``healthy``/``degraded``/``down``/``unknown``/``lost`` (see :class:`MountHealth`)."""
        return self.health.status(name) if self.health is not None else UNKNOWN

    def statuses(self) -> dict[str, str]:
        return {n: self.status(n) for n in self.order}

    def read_order(self, names: list[str]) -> list[str]:
        """``names`` (replicas holding the current version) best first for a read.

        Healthy/unknown, then degraded, then down; lost ones dropped; ties keep
        the caller's order (Python's sort is stable). For the read path, which
        may refine it with its own measured latencies.
        """
        ranked = sorted(((RANK.get(self.status(n), 0), i, n) for i, n in enumerate(names)))
        return [n for r, _, n in ranked if r < RANK[LOST]]

    def close(self) -> None:
        for p in self.by_name.values():
            with contextlib.suppress(Exception):  # closing is best effort at unmount
                p.close()
        if self.health is not None:
            self.health.close()
