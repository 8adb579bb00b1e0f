"""Classify a provider as healthy, degraded or down from timed samples.

Pure: the daemon's probes and the mount's failed requests both feed samples
(time, latency, ok) in; this module only decides. Kept apart from the probing
so the thresholds can be unit-tested with made-up clocks, and so the mount,
the daemon and ``omnifs status`` agree on one definition of "down".

The rules, in order:

* no sample in the window -> ``unknown`` (placement treats it like healthy:
  a fresh daemon must not refuse every write before its first probe);
* the newest samples failed and either one of them waited ``silent_after``
  seconds (the request's whole timeout: the store said nothing), or there
  are ``down_consecutive`` of them, or the first of them is ``down_after``
  seconds old (a slow or rare prober must not keep a dead store "up") ->
  ``down``. The daemon sets ``silent_after`` to its probe's timeout and
  confirms a quick failure with a second probe at once, so a hung or dead
  store is down one probe timeout after the first probe that meets it:
  within ``probe_timeout`` + ``probe_interval`` of the fault;
* error rate over the window >= ``degraded_error_rate`` or p95 latency >=
  ``degraded_p95`` -> ``degraded`` (still used, ranked after healthy ones);
* otherwise ``healthy``.

A provider comes back from ``down`` with its first successful sample, and
the samples of the outage it came back from (the failed ones and those
before them) no longer count in its error rate and latency: a store that
answers well again is ``healthy`` at once, not ``degraded`` until the
window forgets a minute of failures. Errors after its return count as usual.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

HEALTHY = "healthy"
DEGRADED = "degraded"
DOWN = "down"
UNKNOWN = "unknown"
#: declared lost by the daemon after ``lost_after`` seconds down; never chosen
LOST = "lost"

STATUSES = (HEALTHY, DEGRADED, DOWN, UNKNOWN, LOST)

#: how usable a status is, lower is better; placement and read ranking sort by it
RANK = {HEALTHY: 0, UNKNOWN: 0, DEGRADED: 1, DOWN: 2, LOST: 3}


@dataclass(frozen=True)
class Sample:
    """One timed request against a store."""

    at: float
    latency: float
    ok: bool


@dataclass(frozen=True)
class Thresholds:
    #: only samples newer than this many seconds count
    window: float = 60.0
    #: this many failures in a row mean down
    down_consecutive: int = 2
    #: a failing store with no success for this long is down even after one failure
    down_after: float = 5.0
    #: a failed sample that took this long waited out its whole timeout with no answer:
    #: the store is silent, down at once (None: no sample is decisive alone)
    silent_after: float | None = None
    degraded_error_rate: float = 0.1
    degraded_p95: float = 2.0


@dataclass(frozen=True)
class Health:
    status: str
    samples: int = 0
    p50: float | None = None
    p95: float | None = None
    error_rate: float = 0.0
    last_ok: float | None = None
    last_failure: float | None = None
    #: since when the newest run of failures has lasted (None when the newest sample is ok)
    failing_since: float | None = None

    @property
    def usable(self) -> bool:
        """May receive reads and new writes."""
        return self.status not in (DOWN, LOST)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def classify(samples: Iterable[Sample], now: float,
             thresholds: Thresholds = Thresholds()) -> Health:
    """The provider's health at ``now`` from its samples (any order)."""
    recent = sorted((s for s in samples if now - thresholds.window <= s.at <= now + 1e-9),
                    key=lambda s: s.at)
    if not recent:
        return Health(UNKNOWN)
    counted_from = float("-inf")  # the end of the newest outage the store came back from
    run: list[Sample] = []  # the failures since the newest success
    for s in recent:
        if not s.ok:
            run.append(s)
            continue
        if run and _outage(run, s.at, thresholds):
            counted_from = s.at
        run = []
    counted = [s for s in recent if s.at >= counted_from]
    latencies = [s.latency for s in counted if s.ok]
    failures = sum(1 for s in counted if not s.ok)
    last_ok = max((s.at for s in recent if s.ok), default=None)
    last_failure = max((s.at for s in recent if not s.ok), default=None)
    failing_since = run[0].at if run else None
    error_rate = failures / len(counted)
    p50 = percentile(latencies, 50)
    p95 = percentile(latencies, 95)

    status = HEALTHY
    if run and _outage(run, now, thresholds):
        status = DOWN
    elif error_rate >= thresholds.degraded_error_rate or (
            p95 is not None and p95 >= thresholds.degraded_p95):
        status = DEGRADED
    return Health(status, len(counted), p50, p95, error_rate, last_ok, last_failure,
                  failing_since)


def _outage(run: list[Sample], until: float, thresholds: Thresholds) -> bool:
    """Whether the failures ``run`` (oldest first, unbroken by a success until ``until``)
    make the store down."""
    silent = thresholds.silent_after is not None and any(
        s.latency >= thresholds.silent_after for s in run)
    return (silent or len(run) >= thresholds.down_consecutive
            or until - run[0].at >= thresholds.down_after)


def is_lost(down_since: float | None, now: float, lost_after: float) -> bool:
    """Down without a break since ``down_since`` for ``lost_after`` seconds.

    The caller keeps ``down_since`` (the daemon persists it) because the
    sample window is usually shorter than ``lost_after``.
    """
    return down_since is not None and now - down_since >= lost_after
