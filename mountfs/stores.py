"""The configured providers, as seen from the trio event loop.

Every provider call is blocking (SDKs are); it runs in a worker thread behind
a per-provider ``CapacityLimiter`` so one slow store cannot take every thread
and the event loop never blocks on the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from providers import Provider

T = TypeVar("T")

#: concurrent blocking calls per provider
PER_PROVIDER = 8


class Stores:
    """Providers in config order (the default placement order)."""

    def __init__(self, providers: dict[str, Provider], per_provider: int = PER_PROVIDER):
        self.by_name = dict(providers)
        self.order = list(providers)
        self._limits = {n: trio.CapacityLimiter(per_provider) for n in providers}

    def __getitem__(self, name: str) -> Provider:
        return self.by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    async def call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` (a blocking call on provider ``name``) in a worker thread."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limits[name])

    def close(self) -> None:
        for p in self.by_name.values():
            try:
                p.close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort at unmount
                pass
