"""omnifs: one POSIX directory tree over several object stores.

This package is the core the mount, the daemon and the CLI share; it imports
``omnifs.providers`` and ``omnifs.policy`` only (docs/architecture.md).

Subpackages: :mod:`.catalog` (the one catalog API), :mod:`.cli` (the
``omnifs`` command), :mod:`.dr` (disaster recovery: backups, restores, drills),
:mod:`.costing` (``omnifs cost``: the bill, recommendations, moves),
:mod:`.metrics` (what the mount and the daemon share of their metrics: one
endpoint over several registries, cost counters, alert rules and the daemon's
alerts, the local sample store, ``metrics compare``), :mod:`.bench`
(``omnifs bench``: scenarios, runs, reports, comparisons), :mod:`.audit`
(the hash-chained audit log). The modules:

* configuration and layout: ``config`` (omnifs.toml, checked), with
  ``metrics_config`` (its ``[metrics]`` and ``[alerts]``), ``layout``
  (object keys and metadata in every store), ``targets`` (what a user typed
  into provider and key), ``errors`` (the core's error names);
* queued work: ``work`` (typed work items), ``replication`` (the executor:
  replicate, move, delete, attrs), ``drop_copy`` (a copy leaves a store once its
  replacements are verified: cost re-placement, governance remediation);
* governance: ``governance_config`` (``[governance]``), ``governance_scan``
  (violations in the catalog, their remediation, transfer refusals),
  ``governance_stores`` (the stores' objects against the rules: unknown ones,
  encryption and locks read back), ``governance_report`` (the compliance report),
  ``governance_apply`` (store-side retention locks), ``governance_templates`` (ready rule sets);
* copying: ``transfer`` (the copy engine's one import) over ``copy_options``
  (options, retries), ``same_store`` (server-side copy or not),
  ``object_copy`` (one object, streamed and verified) and ``tree_copy`` (a
  prefix, copied by a pool of workers); ``streams`` (prefetching and
  verifying readers of a copy), ``sync_plan`` (what a copy or sync must do),
  ``progress`` (counting and showing a transfer);
* the local cache: ``blockcache`` (the disk cache of blocks) over
  ``blockfiles`` (one cached block on disk: its value file, its tag, reading
  it back checked) and ``blockstats`` (its persisted counters);
  ``cached_content`` (whole files in it), ``crc32c`` (block checksums);
* money: ``prices`` (the dated price tables in ``price_tables/`` and the
  ``[prices]`` overrides), ``cost`` (the itemised cost of a transfer),
  ``access_log`` (the mount's per-file read and write counters, flushed to
  the catalog);
* stores: ``compat`` (the compatibility matrix: declared cells, probe findings, rendered),
  ``fallbacks`` (what each feature does given a store's capabilities: the one place),
  ``conflicts`` (an object changed behind omnifs's back: kept as a conflict file);
* rebuilding and checking: ``importer`` (``omnifs import``), ``snapshot``
  (catalog snapshots in the stores), ``scrub`` (the catalog against store
  listings);
* processes and the host: ``mounts`` (what is mounted where), ``processes``
  (which omnifs processes run), ``sd_notify`` (systemd readiness), ``private``
  (local files private to their user), ``printable`` (names safe in one
  line), ``units`` (sizes and counts as the CLI writes them);
* ``__main__``: ``python -m omnifs``.
"""

__version__ = "0.1.0"
