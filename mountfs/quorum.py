"""Uploading one file to ``write_quorum`` stores without waiting on a hung one.

:func:`race` starts the first ``quorum`` candidates at once; when one fails,
the next candidate starts; when one is *overdue* (it has not finished within
its hedge delay: well past what that store's uploads of that size took
lately, see :class:`Speed`), the next candidate starts beside it. It returns
as soon as ``quorum`` uploads succeeded or no candidate is left. So a store
that stopped answering costs a close one hedge delay (0.2 to 1 s), not the
store's ``timeout``, while another store can take the copy.

An upload still running when the race returns cannot be stopped (it is a
blocking SDK call in a thread). It goes on in the publisher's background
nursery and reports to ``Attempts.late`` once the publish has recorded
its outcome, so the catalog hears of a late success or failure in order
(mountfs/publish.py decides what such a result means). Only uploads of bytes
the publisher copied into memory may outlive the race (publish.py's
``SNAPSHOT_MAX``): the staging file itself may be rewritten the moment close
returns, so the uploads of a bigger file run in a nursery of the publish's own.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from omnifs.providers.errors import OmnifsError, Unavailable

log = logging.getLogger("omnifs.mount")

#: never sooner than this (scheduling noise on a busy host is not a hung store)...
HEDGE_MIN = 0.2
#: ... and the per-request part never later than this: a hung store costs a close at most
#: about this long while another store can take the copy (a spurious hedge costs one copy)
HEDGE_MAX = 1.0
#: what an unmeasured store is assumed to need: per request, its spread, and per byte
DEFAULT_LATENCY = 0.1
DEFAULT_SPREAD = 0.05
DEFAULT_THROUGHPUT = 16 * 1024 * 1024
#: uploads up to this size measure latency, bigger ones throughput
SMALL = 256 * 1024


@dataclass
class Speed:
    """What uploads to one store took lately: a smoothed latency and its mean deviation
    (like TCP's retransmission timer), and a smoothed throughput."""

    latency: float = DEFAULT_LATENCY
    spread: float = DEFAULT_SPREAD
    throughput: float = DEFAULT_THROUGHPUT

    def expect(self, size: int) -> float:
        return self.latency + size / self.throughput

    def overdue_after(self, size: int) -> float:
        """An upload of ``size`` still running this long is late beyond this store's habit:
        twice its expected time plus four deviations (a busy store varies, and is not hung)."""
        per_request = min(HEDGE_MAX, 2 * self.latency + 4 * self.spread)
        return max(HEDGE_MIN, per_request + 2 * size / self.throughput)

    def note(self, size: int, seconds: float) -> None:
        if size <= SMALL:
            self.spread += 0.25 * (abs(seconds - self.latency) - self.spread)
            self.latency += 0.125 * (seconds - self.latency)
        else:
            rate = size / max(seconds - self.latency, self.latency, 1e-3)
            self.throughput += 0.125 * (rate - self.throughput)


class Speeds:
    """Per-store upload speeds and the hedge delays derived from them."""

    def __init__(self) -> None:
        self._by_name: dict[str, Speed] = {}

    def of(self, name: str) -> Speed:
        return self._by_name.setdefault(name, Speed())

    def note(self, name: str, size: int, seconds: float) -> None:
        self.of(name).note(size, seconds)

    def hedge_delay(self, name: str, size: int) -> float:
        return self.of(name).overdue_after(size)


#: ``attempt(name)`` uploads to store ``name``: its result, or the OmnifsError it raised
Attempt = Callable[[str], Awaitable[Any]]


@dataclass
class Attempts:
    """One file's uploads: who finished in time (:func:`race`), who finishes late.

    ``late`` (set by the publisher) hears of every upload that finishes
    after the race returned, but only once the publisher has settled the
    outcome (:meth:`settled`); until then such results wait in ``_held``.
    """

    late: Callable[[str, Any], None]
    #: what finished while the race ran: name -> the upload's result, or its error
    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, OmnifsError] = field(default_factory=dict)
    #: uploads still running when the race returned
    running: set[str] = field(default_factory=set)
    _returned: bool = False
    _settled: bool = False
    _held: list[tuple[str, Any]] = field(default_factory=list)

    def settled(self) -> None:
        """The publisher recorded the race's outcome: late results may now be handled."""
        self._settled = True
        held, self._held = self._held, []
        for name, result in held:
            self.running.discard(name)
            self.late(name, result)

    def _finished_late(self, name: str, result: Any) -> None:
        if self._settled:
            self.running.discard(name)
            self.late(name, result)
        else:
            self._held.append((name, result))


async def race(nursery: trio.Nursery, attempts: Attempts, order: list[str], quorum: int,
               attempt: Attempt, hedge_delay: Callable[[str], float],
               note: Callable[[str, str], None] | None = None) -> Attempts:
    """Upload to ``quorum`` of ``order`` (best first); see the module docstring.

    Uploads run in ``nursery``: the publisher's background one lets the late
    ones outlive this call, a local one makes the caller wait for them.
    ``note(event, store)`` hears of ``hedges`` (``store`` was overdue and
    another started beside it), ``hedge_wins`` (a store started that way
    finished within the race) and ``failovers`` (``store`` failed and the
    next one started), for the mount's metrics.
    """
    hedged: set[str] = set()
    send, recv = trio.open_memory_channel[tuple[str, Any]](math.inf)
    waiting = list(order)
    #: running uploads -> when they become overdue (None once a hedge replaced them)
    running: dict[str, float | None] = {}

    async def run(name: str) -> None:
        try:
            result = await attempt(name)
        except OmnifsError as e:
            result = e
        except Exception as e:  # a bug or a staging disk error: this store failed
            log.error("upload to %s failed unexpectedly", name, exc_info=e)
            result = Unavailable(f"unexpected {type(e).__name__}: {e}".splitlines()[0],
                                 provider=name)
        if attempts._returned:
            attempts._finished_late(name, result)
        else:
            send.send_nowait((name, result))

    def start_next() -> None:
        name = waiting.pop(0)
        running[name] = trio.current_time() + hedge_delay(name)
        nursery.start_soon(run, name)

    def counted() -> int:
        return len(attempts.done) + sum(1 for t in running.values() if t is not None)

    while waiting and counted() < quorum:
        start_next()
    try:
        while len(attempts.done) < quorum and running:
            due = [t for t in running.values() if t is not None]
            hedge_at = min(due) if waiting and due else math.inf
            with trio.move_on_at(hedge_at):
                name, result = await recv.receive()
                running.pop(name, None)
                if isinstance(result, OmnifsError):
                    attempts.failed[name] = result
                    if note is not None and waiting:
                        note("failovers", name)
                else:
                    attempts.done[name] = result
                    if note is not None and name in hedged:
                        note("hedge_wins", name)
                while waiting and len(attempts.done) < quorum and counted() < quorum:
                    start_next()
                continue
            # the earliest overdue upload goes on, but another store starts beside it
            overdue = min((t, n) for n, t in running.items() if t is not None)[1]
            running[overdue] = None
            if note is not None:
                note("hedges", overdue)
            hedged.add(waiting[0])
            start_next()
    finally:
        attempts._returned = True
        attempts.running = set(running)
        while True:
            try:
                name, result = recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            attempts._finished_late(name, result)
    return attempts


@contextlib.asynccontextmanager
async def nursery_for(background: trio.Nursery | None) -> AsyncIterator[trio.Nursery]:
    """``background`` when given (uploads may outlive the race), else a local nursery."""
    if background is not None:
        yield background
        return
    async with trio.open_nursery() as local:
        yield local
