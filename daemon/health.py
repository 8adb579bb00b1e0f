"""Health probes: time a cheap request per provider, classify, publish, detect loss.

A probe is ``head(".omnifs/health-probe")``: one round trip that needs no
object to exist (NotFound is a *successful* probe, unless the bucket itself
is missing) and no write permission.
Probes run in their own threads, never behind the transfer limiter, so a
busy provider is not mistaken for a dead one; a probe still hanging from the
previous round counts as a failure instead of stacking another thread.

How fast the board follows a fault (the bounds docs/systemd.md states): a
probe gives up after its deadline, ``probe_timeout`` or the provider's own
``timeout`` if shorter, and one that got no answer at all is decisive
(policy.health's ``silent_after``); one that failed quickly (refused, an
error answer) is confirmed by a second probe at once, and one the SDK had
already retried for a second or more counts as confirmed. So a store that
hangs or dies is down within one deadline plus one ``probe_interval``, and
one that answers again is healthy at the next round (its outage no longer
counts).

Published to ``provider_health`` (read by the mount and ``omnifs status``)
and to the metrics; the failover decisions (defer work of a down provider,
recreate the replicas of a lost one) read :class:`HealthBoard`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from omnifs.policy.health import DOWN, LOST, Health, Sample, Thresholds, classify, is_lost
from omnifs.providers import RESERVED_PREFIX, OmnifsError, Provider, RootMissing, TimedOut
from omnifs.providers.base import probe

log = logging.getLogger("omnifs.daemon")

PROBE_KEY = RESERVED_PREFIX + "health-probe"
#: a failed probe that took this long was retried by the SDK already: no second probe
CONFIRMED_AFTER = 1.0


def probe_once(provider: Provider) -> None:
    """Raise when the store does not answer properly (see :func:`providers.base.probe`)."""
    probe(provider, PROBE_KEY)


@dataclass
class HealthBoard:
    """The daemon's live view of every provider, updated each probe round."""

    health: dict[str, Health] = field(default_factory=dict)
    down_since: dict[str, float] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    #: when a worker's request to each provider last succeeded (see ``Prober._probe``)
    answered: dict[str, float] = field(default_factory=dict)
    #: stores whose last probe found their bucket, container or directory missing: down,
    #: yet scrubbed (the scrub tells which replicas were lost with it)
    roots_missing: set[str] = field(default_factory=set)

    def note_answer(self, name: str, at: float) -> None:
        """A transfer to/from ``name`` just succeeded: it is busy, not dead."""
        if at > self.answered.get(name, 0.0):
            self.answered[name] = at

    def status(self, name: str) -> str:
        if name in self.lost:
            return LOST
        h = self.health.get(name)
        return h.status if h else "unknown"

    def usable(self, name: str) -> bool:
        return self.status(name) not in (DOWN, LOST)

    def statuses(self) -> dict[str, str]:
        return {name: self.status(name) for name in self.health}

    def latencies(self) -> dict[str, float | None]:
        return {name: h.p50 for name, h in self.health.items()}


class Prober:
    """Runs the probe rounds; ``on_lost(name)`` fires once when a provider is declared lost."""

    def __init__(self, providers: dict[str, Provider], state, metrics, board: HealthBoard, *,
                 interval: float, timeout: float, lost_after: float,
                 thresholds: Thresholds | None = None,
                 on_lost: Callable[[str], object] | None = None,
                 on_change: Callable[[str, str, str], object] | None = None,
                 clock: Callable[[], float] = time.time):
        self.providers = providers
        self.state = state
        self.metrics = metrics
        self.board = board
        self.interval = interval
        self.timeout = timeout
        self.lost_after = lost_after
        self.thresholds = thresholds or Thresholds()
        self.on_lost = on_lost
        self.on_change = on_change
        self.clock = clock
        #: providers whose probe thread still runs, and since when
        self._busy: dict[str, float] = {}
        #: when each provider's newest sample was taken (an excuse needs a newer answer)
        self._sampled: dict[str, float] = {}
        self._db = trio.CapacityLimiter(1)

    async def restore(self) -> None:
        """Carry outages across daemon restarts so ``lost_after`` is not reset by a crash."""
        rows = await trio.to_thread.run_sync(self.state.health, limiter=self._db)
        for name, row in rows.items():
            if name in self.providers and row.down_since is not None:
                self.board.down_since[name] = row.down_since
                if row.status == LOST:
                    self.board.lost.add(name)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self.restore()
        await self.round()
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            await self.round()

    def deadline(self, name: str) -> float:
        """How long a probe of ``name`` may wait: the probe timeout, or the store's if shorter."""
        settings = getattr(self.providers[name], "settings", None)
        store = getattr(settings, "timeout", None)
        return min(self.timeout, store) if store else self.timeout

    def thresholds_for(self, name: str) -> Thresholds:
        """The classification rules for ``name``: a probe that waited its whole deadline is
        decisive (the store is silent)."""
        if self.thresholds.silent_after is not None:
            return self.thresholds
        return dataclasses.replace(self.thresholds, silent_after=self.deadline(name))

    async def round(self) -> None:
        samples: dict[str, list[Sample]] = {}
        async with trio.open_nursery() as nursery:
            for name, provider in self.providers.items():
                nursery.start_soon(self._probe_twice, name, provider, samples)
        await trio.to_thread.run_sync(self._record, samples, limiter=self._db)
        for name in self.providers:
            await self._publish(name)

    async def _probe_twice(self, name: str, provider: Provider,
                           out: dict[str, list[Sample]]) -> None:
        """One probe; a quick failure is confirmed by a second one at once (two failures in a
        row are down), so a dead store does not wait a probe interval for its verdict.

        A failure that took :data:`CONFIRMED_AFTER` or longer was already
        retried inside the SDK (refused connections, 5xx): it is recorded as
        decisive (latency = the deadline) rather than waited on twice.
        """
        deadline = self.deadline(name)
        first = await self._probe(name, provider)
        if not first.ok and CONFIRMED_AFTER <= first.latency < deadline:
            first = Sample(first.at, deadline, False)
        out[name] = [first]
        if not first.ok and first.latency < deadline:
            out[name].append(await self._probe(name, provider))

    async def _probe(self, name: str, provider: Provider) -> Sample:
        start = self.clock()
        deadline = self.deadline(name)
        if name in self._busy:
            # the previous probe still hangs: silent, unless our transfers got answers since
            since = max(self._busy[name], self._sampled.get(name, float("-inf")))
            self._sampled[name] = start
            return Sample(start, deadline, self._answered_since(name, since))
        ok = silent = False
        self._busy[name] = start
        with trio.move_on_after(deadline) as waited:
            try:
                await trio.to_thread.run_sync(self._probe_thread, name, provider,
                                              abandon_on_cancel=True)
                ok = True
            except OmnifsError as e:
                silent = isinstance(e, TimedOut)  # the store's own timeout ended it
                log.debug("probe of %s failed: %s", name, e)
            except Exception as e:  # noqa: BLE001 - a probe must never kill the daemon
                log.debug("probe of %s failed: %s: %s", name, type(e).__name__, e)
        end = self._sampled[name] = self.clock()
        if waited.cancelled_caught:
            # no answer within the deadline: silent, unless our own transfers got answers
            return Sample(start, deadline, self._answered_since(name, start))
        latency = end - start
        return Sample(start, max(latency, deadline) if silent else latency, ok)

    def _answered_since(self, name: str, since: float) -> bool:
        """Did a replication transfer with ``name`` succeed after ``since`` (while the probe
        waited)?

        Then a probe that timed out (or still hangs) met a store saturated by
        our own copies (a 1 GiB upload into a one-core emulator): slow, not
        down. The sample still carries the slow latency, so it can read as
        degraded; a store that answers with errors is never excused, and an
        answer from before the probe began excuses nothing (the store may
        have hung right after it).
        """
        return self.board.answered.get(name, float("-inf")) >= since

    def _probe_thread(self, name: str, provider: Provider) -> None:
        try:
            probe_once(provider)
        except RootMissing:
            self.board.roots_missing.add(name)
            raise
        else:
            self.board.roots_missing.discard(name)
        finally:
            self._busy.pop(name, None)

    def _record(self, samples: dict[str, list[Sample]]) -> None:
        for name, taken in samples.items():
            self.state.add_samples(name, taken)
        self.state.prune_samples(self.clock() - self.thresholds.window * 2)

    async def _publish(self, name: str) -> None:
        now = self.clock()
        samples = await trio.to_thread.run_sync(self.state.samples, name,
                                                now - self.thresholds.window, limiter=self._db)
        health = classify(samples, now, self.thresholds_for(name))
        before = self.board.status(name)
        self.board.health[name] = health
        if health.status == DOWN:
            self.board.down_since.setdefault(name, health.failing_since or now)
        else:
            self.board.down_since.pop(name, None)
            self.board.lost.discard(name)
        newly_lost = (name not in self.board.lost and is_lost(self.board.down_since.get(name),
                                                               now, self.lost_after))
        if newly_lost:
            self.board.lost.add(name)
        status = self.board.status(name)
        await trio.to_thread.run_sync(self.state.set_health, name, health,
                                      self.board.down_since.get(name), status, limiter=self._db)
        if self.metrics is not None:
            self.metrics.set_health(name, status, health.p50, health.p95, health.error_rate)
        if status != before:
            level = logging.WARNING if DOWN in (status, before) or status == LOST else logging.INFO
            log.log(level, "provider %s is now %s (was %s)", name, status, before)
            if self.on_change is not None:
                self.on_change(name, before, status)
        if newly_lost and self.on_lost is not None:
            self.on_lost(name)
