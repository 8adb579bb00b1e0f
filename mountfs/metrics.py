"""The mount's own Prometheus metrics, on ``[metrics] mount_port`` (docs/metrics.md).

FUSE request latency by op is timed where every handler is wrapped
(``fuse_errors.fuse_handler``); everything else is read from the mount's
state when Prometheus scrapes, so serving reads and writes pays nothing for it:

* the block cache: ``omnifs_cache_{hits,misses,evictions}_total``,
  ``omnifs_cache_bytes`` and ``omnifs_cache_limit_bytes``;
* reads from replicas and uploads: ``omnifs_hedged_requests_total{provider,op}``
  (a hedge started because ``provider`` was slow), ``omnifs_hedge_wins_total``
  (a hedge to ``provider`` answered first), ``omnifs_failovers_total`` (a
  failed request to ``provider`` went to the next store); ``op`` is ``read``
  or ``write``;
* ``omnifs_staging_files`` and ``omnifs_staging_bytes``: written files not yet
  uploaded (the staging backlog);
* access counts (``omnifs/access_log.py``): ``omnifs_file_reads_total``,
  ``omnifs_file_read_bytes_total``, ``omnifs_file_writes_total``.

The endpoint also carries the store metrics (``providers.metered``) and the
cost counters (``omnifs.metrics.cost``) of the mount process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from omnifs.config import Config
    from omnifs.metrics.serve import Endpoint

    from .operations import Operations

#: FUSE requests answered from memory take microseconds, a cold read of a big block seconds
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
           1.0, 2.5, 5.0, 10.0)



class FuseTimes:
    """One handler's FUSE request latencies (``omnifs_fuse_op_seconds{op}``).

    Plain numbers, added to only by the trio thread that runs every handler (so no
    lock: no update is lost) and rendered by :class:`_FuseCollector` when Prometheus
    scrapes. A prometheus-client ``Histogram`` took a lock for its sum and one for a
    bucket: microseconds per request, eight times per MiB of a cold read.
    """

    __slots__ = ("buckets", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        #: requests per bucket (not cumulative); the last is +Inf
        self.buckets = [0] * (len(BUCKETS) + 1)

    def add(self, took: float) -> None:
        self.buckets[bisect_left(BUCKETS, took)] += 1
        self.seconds += took


#: handler name -> its latencies (a handler's series appears with its first request)
FUSE_TIMES: dict[str, FuseTimes] = {}
_BOUNDS = [*map(floatToGoString, BUCKETS), "+Inf"]


def fuse_times(op: str) -> FuseTimes:
    """The latencies of handler ``op``, created on its first request."""
    return FUSE_TIMES.setdefault(op, FuseTimes())


class _FuseCollector(Collector):
    def collect(self) -> Iterator:
        h = HistogramMetricFamily("omnifs_fuse_op_seconds",
                                  "Latency of a FUSE request, by handler", labels=["op"])
        for op, t in list(FUSE_TIMES.items()):
            counts, total = list(t.buckets), t.seconds  # the count is their sum: consistent
            h.add_metric([op], list(zip(_BOUNDS, accumulate(counts), strict=True)), total)
        yield h


FUSE = CollectorRegistry(auto_describe=True)
FUSE.register(_FuseCollector())

#: the series :class:`MountCollector` exports (the dashboards test checks against them)
SERIES = ("omnifs_cache_hits_total", "omnifs_cache_misses_total", "omnifs_cache_evictions_total",
          "omnifs_cache_bytes", "omnifs_cache_limit_bytes", "omnifs_hedged_requests_total",
          "omnifs_hedge_wins_total", "omnifs_failovers_total", "omnifs_staging_files",
          "omnifs_staging_bytes", "omnifs_file_reads_total", "omnifs_file_read_bytes_total",
          "omnifs_file_writes_total")

#: whether handlers are timed (``[metrics] enabled``; the mount sets it at start)
timing = True


class MountCollector(Collector):
    """What the mount ``ops`` holds, read at each scrape."""

    def __init__(self, ops: Operations):
        self.ops = ops

    def collect(self) -> Iterator:
        yield from self._cache()
        yield from self._replicas()
        staging = self.ops.staging
        yield GaugeMetricFamily("omnifs_staging_files", "Written files not yet uploaded",
                                value=staging.files)
        yield GaugeMetricFamily("omnifs_staging_bytes", "Disk the staging files take",
                                value=staging.held)
        log = self.ops.access_log
        for name, help_, attr in (
                ("omnifs_file_reads", "Files opened and read (once per open)", "reads_total"),
                ("omnifs_file_read_bytes", "Bytes read through the mount", "read_bytes_total"),
                ("omnifs_file_writes", "Files closed after a change", "writes_total")):
            yield CounterMetricFamily(name, help_, value=getattr(log, attr, 0))

    def _cache(self) -> Iterator:
        cache = self.ops.reader.path.cache
        if cache is None:
            return
        st = cache.stats()
        for name in ("hits", "misses", "evictions"):
            yield CounterMetricFamily(f"omnifs_cache_{name}", f"Block cache {name}",
                                      value=getattr(st, name))
        yield GaugeMetricFamily("omnifs_cache_bytes", "Bytes in the block cache", value=st.size)
        yield GaugeMetricFamily("omnifs_cache_limit_bytes", "The block cache's size limit",
                                value=st.limit)

    def _replicas(self) -> Iterator:
        """Hedges, hedge wins and failovers of reads (``op="read"``, mountfs/replicas.py)
        and of uploads (``op="write"``, mountfs/quorum.py), by store."""
        labels = ["provider", "op"]
        fams = {
            "hedges": CounterMetricFamily("omnifs_hedged_requests", "Requests hedged because "
                                          "this store was slow", labels=labels),
            "hedge_wins": CounterMetricFamily("omnifs_hedge_wins", "Hedged requests this "
                                              "store answered first", labels=labels),
            "failovers": CounterMetricFamily("omnifs_failovers", "Failed requests to this "
                                             "store sent to another one", labels=labels),
        }
        for row in self.ops.reader.replicas.stats.snapshot():
            for key, fam in fams.items():
                fam.add_metric([row["provider"], "read"], row.get(key, 0))
        uploads = dict(self.ops.publisher.upload_events)
        for name in self.ops.stores.order:
            for key, fam in fams.items():
                fam.add_metric([name, "write"], uploads.get((key, name), 0))
        yield from fams.values()


def serve_metrics(ops: Operations, config: Config) -> Endpoint | None:
    """Start the mount's /metrics on ``[metrics] mount_port`` (None: off, or not possible)."""
    from omnifs.metrics.cost import cost_collector
    from omnifs.metrics.serve import Endpoint, combined
    from omnifs.providers.metered import REGISTRY

    m = config.metrics
    if not m.enabled or m.mount_port <= 0:
        return None
    endpoint = Endpoint(combined([FUSE, REGISTRY, MountCollector(ops), cost_collector(config)]))
    return endpoint if endpoint.serve(m.mount_port, m.addr, what="mount metrics") else None


async def sample_loop(config: Config) -> None:
    """Append the mount's store counters to the local sample store every
    ``[metrics] sample_interval`` seconds, and once more when the mount stops."""
    import trio

    from omnifs.metrics import samples

    if not config.metrics.enabled:
        return
    try:
        while True:
            await trio.sleep(config.metrics.sample_interval)
            await trio.to_thread.run_sync(samples.append, config.cache_dir, "mount")
    finally:
        samples.append(config.cache_dir, "mount")
