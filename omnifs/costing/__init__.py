"""The cost engine's I/O side: what the stores cost this month, what to move, moving it.

The arithmetic is pure and lives in ``omnifs.policy`` (costs, tiering, recommend,
costpolicy); this package feeds it from the config and the catalog and acts on
its answers:

* ``inputs``: each configured store's prices, the placement rules as a predicate,
  every file of the catalog as the engine's ``FileRecord`` (paths resolved once per
  directory), the current UTC month;
* ``bill``: this month's estimated cost per store, tier and prefix (storage,
  requests, egress, retrieval) with the inputs behind each figure;
* ``reports``: ``cost report``, ``cost recommend`` and ``cost history`` as
  :class:`omnifs.report.Report` documents;
* ``apply``: recommendations chosen (best saving first, ``--max-moves``), queued as
  work items and recorded in ``cat.cost``;
* ``moves``: the executors of those work items (a copy's tier change, dropping a
  re-placed copy once its replacement is synced), called by omnifs/replication.py;
* ``restore``: a read that finds only archived copies asks the stores to restore them.
"""
