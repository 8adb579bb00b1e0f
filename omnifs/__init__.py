"""omnifs: one POSIX directory tree over several object stores.

The block cache: ``blockcache`` (the bounded disk cache of file blocks,
keyed by content) over ``blockfiles`` (one cached block on disk: its value
file, its tag, reading it back checked) and ``blockstats`` (its persisted
counters).

The copy engine: ``transfer`` (its one import) over ``copy_options``
(options, retries), ``same_store`` (server-side copy or not),
``object_copy`` (one object, streamed and verified) and ``tree_copy`` (a
prefix, planned by ``sync_plan``, copied by a pool of workers).
"""

__version__ = "0.1.0"
