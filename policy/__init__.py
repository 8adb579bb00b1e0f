"""Pure decisions: no I/O, no SDK, no other part of omnifs imported.

* ``governance``: the governance rule engine (residency, WORM retention, legal hold,
  copies, encryption) and its validation;
* ``placement``: which providers hold a file (governance rules, health,
  load, cost);
* ``health``: a provider's verdict (healthy, degraded, down, lost) from
  timed samples;
* ``tiers``: storage tiers across stores, one vocabulary of access classes;
* ``costs``: the price records and the cost of storage, requests, egress,
  retrieval and early deletion (a migration's estimate);
* ``tiering``: what a file costs where it is, a tier move's or a re-placement's
  saving, one-time cost and break-even;
* ``costpolicy``: the ``[cost]`` policies; ``recommend``: the engine that turns a
  stream of files into tier and placement recommendations; ``unread``: its plans
  for files unread in the window (the same decisions, worked out once per kind of
  file as thresholds on the size).
"""
