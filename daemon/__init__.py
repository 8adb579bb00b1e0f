"""The daemon (``omnifs daemon``): one trio process doing the background work.

Imports the core, ``omnifs.providers`` and ``omnifs.policy``, never the mount:
the two meet in the catalog. The modules:

* ``main``: the process (its tasks, their order, reload and shutdown);
* ``settings``: the ``[daemon]`` table, checked;
* ``workers``: replication workers claiming queued work and running the
  executor (omnifs/replication.py);
* ``health``: health probes and the board the workers and failover read;
* ``state``: health samples, verdicts and counters in the catalog;
* ``failover``: catch-up when a provider returns, new homes for a lost one's
  copies;
* ``reconcile``: the scrub of every store and what is done about it;
* ``dr``: scheduled backups, pruning and drills, and the recovery point (omnifs/dr/);
* ``metrics``: the Prometheus ``/metrics`` endpoint;
* ``alerting``: ``[alerts]`` thresholds evaluated by the daemon itself.
"""
