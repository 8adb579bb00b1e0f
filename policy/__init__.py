"""Pure decisions: no I/O, no SDK, no other part of omnifs imported.

* ``placement``: which providers hold a file (governance rules, health,
  load, cost);
* ``health``: a provider's verdict (healthy, degraded, down, lost) from
  timed samples;
* ``tiers``: storage tiers across stores, one vocabulary of access classes.
"""
