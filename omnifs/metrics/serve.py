"""One /metrics endpoint over several registries, on 127.0.0.1 by default."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    import threading
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

log = logging.getLogger("omnifs.metrics")


class Included(Collector):
    """Another registry's metrics, as one collector of this one."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def combined(parts: Iterable[CollectorRegistry | Collector]) -> CollectorRegistry:
    """A registry exporting every part (registries or collectors) together."""
    out = CollectorRegistry(auto_describe=False)
    for part in parts:
        out.register(Included(part) if isinstance(part, CollectorRegistry) else part)
    return out


class Endpoint:
    """The HTTP server of one registry, in a thread; ``close`` stops it."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def serve(self, port: int, addr: str = "127.0.0.1", *, what: str = "metrics") -> int | None:
        """Listen on ``addr:port`` (0: not at all); the bound port, None when not serving."""
        if port <= 0:
            return None
        try:
            self._server, self._thread = start_http_server(port, addr=addr,
                                                           registry=self.registry)
        except OSError as e:
            log.warning("%s: cannot listen on %s:%d: %s; continuing without /metrics",
                        what, addr, port, e.strerror)
            return None
        self.port = port
        return port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
