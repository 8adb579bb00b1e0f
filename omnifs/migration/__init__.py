"""Moving a tree of objects between stores: ``omnifs migrate``.

Modules: :mod:`.plan` (both sides listed and diffed into copy / overwrite /
skip / delete, and the per-tier summary), :mod:`.planfile` (the JSON plan
file, checksummed and bound to its catalog), :mod:`.costing` (the
summary, and a run's usage counters, priced with omnifs.prices and policy.costs),
:mod:`.timing` (the time model) and :mod:`.speed` (the throughput figures it reads
from the catalog, or measures with a bounded probe),
:mod:`.run` (``migrate run``: the plan carried out in parallel, resumable, with
:mod:`.throttle`, :mod:`.budget`, :mod:`.outage`, :mod:`.saved`, :mod:`.compare`
and :mod:`.outcome`) and :mod:`.report` (a migration's report, built on omnifs.report).
"""
