"""Prometheus metrics of the daemon, on ``[metrics] port`` (0 turns it off).

With ``[metrics] enabled`` (the default) the endpoint also carries the store
metrics of the daemon's requests and the cost counters (:meth:`Metrics.include`).

A private registry (not the process-global one) so tests can run several
daemons in one process and so only omnifs's series are exported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from omnifs.metrics.serve import Endpoint
from omnifs.policy.health import STATUSES

if TYPE_CHECKING:
    from omnifs.config import Config

log = logging.getLogger("omnifs.daemon")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("omnifs_queue_depth", "Work items pending or claimed",
                                 registry=r)
        self.failed_items = Gauge("omnifs_queue_failed", "Work items parked as failed",
                                  registry=r)
        self.lag = Gauge("omnifs_replication_lag_seconds",
                         "Age of the oldest pending work item (0 when the queue is empty)",
                         registry=r)
        self.under_replicated = Gauge("omnifs_under_replicated_files",
                                      "Files with fewer synced current copies than configured",
                                      registry=r)
        self.health = Gauge("omnifs_provider_health",
                            "1 for the provider's current status, 0 for the others",
                            ["provider", "status"], registry=r)
        self.up = Gauge("omnifs_provider_up", "1 when reads and writes may use the provider",
                        ["provider"], registry=r)
        self.latency = Gauge("omnifs_provider_latency_seconds", "Probe latency",
                             ["provider", "quantile"], registry=r)
        self.error_rate = Gauge("omnifs_provider_error_rate", "Failed share of recent requests",
                                ["provider"], registry=r)
        self.bytes_replicated = Counter("omnifs_replicated_bytes",
                                        "Bytes copied to replicas by this daemon",
                                        ["provider"], registry=r)
        self.copies = Counter("omnifs_replica_copies",
                              "Replicas made by this daemon, by where their bytes came from "
                              "(cache: the local block cache; store: another replica; "
                              "server-side: a copy within one store)",
                              ["source"], registry=r)
        self.items = Counter("omnifs_work_items", "Work items finished",
                             ["kind", "result"], registry=r)
        self.conflicts = Counter("omnifs_conflicts", "Out-of-band changes resolved",
                                 ["provider", "action"], registry=r)
        self.scrub_problems = Gauge("omnifs_scrub_problems",
                                    "What the last scrub of the store found, by kind",
                                    ["provider", "kind"], registry=r)
        self.scrub_last = Gauge("omnifs_scrub_last_run_timestamp_seconds",
                                "When the last scrub of the store finished", ["provider"],
                                registry=r)
        self.scrub_verified_bytes = Counter("omnifs_scrub_verified_bytes",
                                            "Bytes the scrub read back and hashed",
                                            ["provider"], registry=r)
        self._endpoint = Endpoint(r)

    def include(self, config: Config) -> None:
        """Export the store metrics (providers/metered.py) and the cost counters beside ours."""
        from omnifs.metrics.cost import cost_collector
        from omnifs.metrics.serve import Included
        from omnifs.providers.metered import REGISTRY

        self.registry.register(Included(REGISTRY))
        self.registry.register(cost_collector(config))

    def set_health(self, provider: str, status: str, p50: float | None, p95: float | None,
                   error_rate: float) -> None:
        for s in STATUSES:
            self.health.labels(provider, s).set(1.0 if s == status else 0.0)
        self.up.labels(provider).set(0.0 if status in ("down", "lost") else 1.0)
        self.latency.labels(provider, "0.5").set(p50 if p50 is not None else float("nan"))
        self.latency.labels(provider, "0.95").set(p95 if p95 is not None else float("nan"))
        self.error_rate.labels(provider).set(error_rate)

    def set_scrub(self, provider: str, counts: dict[str, int], finished: float) -> None:
        for kind, n in counts.items():
            self.scrub_problems.labels(provider, kind).set(n)
        self.scrub_last.labels(provider).set(finished)

    def serve(self, port: int, addr: str = "127.0.0.1") -> int | None:
        """Start the /metrics HTTP server in a thread; returns the bound port."""
        return self._endpoint.serve(port, addr)

    def close(self) -> None:
        self._endpoint.close()
