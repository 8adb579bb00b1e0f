"""Metrics shared by the mount and the daemon (docs/metrics.md).

* ``serve``: one /metrics endpoint over several registries (the process's
  own, the store metrics of ``providers.metered``, the cost counters);
* ``cost``: ``omnifs_cost_usd_total`` and the storage gauges, priced from the
  shared price tables (``omnifs.prices``, ``policy.costs``);
* ``rules``: Prometheus alerting rules from ``[alerts]``; ``alerts``: the
  daemon's own evaluation of the same thresholds, with the webhook;
* ``samples``: the small local sample store ``omnifs metrics compare`` reads
  when no Prometheus is configured; ``compare``: the side-by-side table and
  the export snapshot.
"""
