"""Waiting in a trio run for state that changes where no trio.Event can signal it.

A daemon's workers write the catalog from threads, another process writes it, and a
health board's verdict moves with the clock: the test reads that state again until
it says what it waits for. The caller bounds the wait (``trio.fail_after``).
"""

from __future__ import annotations

from collections.abc import Callable

import trio


async def wait_until(condition: Callable[[], object], every: float) -> None:
    """Return once ``condition()`` is true, reading it again every ``every`` seconds."""
    while not condition():  # noqa: ASYNC110 - the state is read, nothing signals it
        await trio.sleep(every)
