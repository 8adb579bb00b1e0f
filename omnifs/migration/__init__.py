"""Moving a tree of objects between stores: ``omnifs migrate``.

Modules: :mod:`.plan` (both sides listed and diffed into copy / overwrite /
skip / delete, and the per-tier summary), :mod:`.planfile` (the JSON plan
file, checksummed and bound to its catalog), :mod:`.costing` (the
summary priced with omnifs.prices and omnifs.cost), :mod:`.timing` (the
time model) and :mod:`.speed` (the throughput figures it reads from the
catalog, or measures with a bounded probe).
"""
