"""Pausing a migration run while a store is down, and resuming when it answers again.

A transient error (Unavailable, a timeout, throttling) that outlived the copy
engine's own retries may be one object's bad luck or the store going away.
The first worker to see one probes both stores (a HEAD of a key that does
not exist: NotFound means the store answers); meanwhile every worker waits
before its next request. A store that was down and came back costs the
objects caught in it no attempt: they are tried again. A store that stays
down longer than ``wait_down`` seconds ends the run, leaving what is left
pending for the next run of the same plan.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from omnifs.providers import OmnifsError

log = logging.getLogger("omnifs.migrate")


class Outage:
    """Shared by a run's workers; ``probe()`` raises while a store is unreachable."""

    def __init__(self, probe: Callable[[], None], wait_down: float, *,
                 first_delay: float = 0.2, max_delay: float = 5.0):
        self._probe = probe
        self.wait_down = wait_down
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._paused = False
        #: how many outages ended so far: an attempt begun before one was caught in it
        self.epoch = 0
        #: why the run gave up waiting (one line), None while it has not
        self.gave_up: str | None = None

    def wait_up(self) -> bool:
        """Block while paused; False once the run gave up on a store."""
        with self._cond:
            while self._paused and self.gave_up is None:
                self._cond.wait(0.5)
            return self.gave_up is None

    def was_down(self, err: OmnifsError, since_epoch: int) -> bool:
        """After a transient error: True when it came from an outage (now over, or given up on).

        False when the stores answer at once: the error was this object's own.
        """
        with self._cond:
            if self.epoch != since_epoch or self.gave_up is not None:
                return True
            if self._paused:
                while self._paused and self.gave_up is None:
                    self._cond.wait(0.5)
                return True
            self._paused = True
        down = False
        try:
            down = self._probe_until_up(err)
        finally:
            with self._cond:
                self._paused = False
                if down:
                    self.epoch += 1
                self._cond.notify_all()
        return down

    def _probe_until_up(self, err: OmnifsError) -> bool:
        deadline = time.monotonic() + self.wait_down
        delay = self.first_delay
        down = False
        while True:
            try:
                self._probe()
                if down:
                    log.warning("the store answers again: resuming")
                return down
            except OmnifsError as e:
                if not e.transient:
                    return down
                last = e
            if not down:
                log.warning("a store is unreachable (%s): pausing the run", last)
            down = True
            left = deadline - time.monotonic()
            if left <= 0:
                self.gave_up = (f"{err.provider or 'a store'} has been unreachable for "
                                f"{self.wait_down:g}s ({last}): stopped, the objects left "
                                "stay pending for the next run of the same plan")
                return True
            time.sleep(min(delay, left))
            delay = min(delay * 2, self.max_delay)
