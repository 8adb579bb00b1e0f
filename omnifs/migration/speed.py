"""The figures behind a plan's time estimate: recorded in the catalog, else measured now.

The catalog's health samples (omnifs/catalog/health.py) hold request round
trips (the daemon's probes, the mount) and timed transfers (the daemon's
replication worker, earlier plans). When a store has no recent transfer the
right way, :func:`probe_source` / :func:`probe_destination` measure one with
a few bounded requests:

* source: ranged reads of up to :data:`READ_BUDGET` bytes of objects the plan
  will copy (largest first), after one 1-byte read for the round trip;
* destination: one probe object of 1-4 MiB written under the destination
  tree's reserved ``.omnifs/probe/`` (never at the store's root: a bare
  file:// destination is rooted at /), headed and deleted again.

What a probe measured is recorded in the catalog (source ``migrate``) so the
next plan reuses it. :func:`time_estimate` puts it together with
:mod:`omnifs.migration.timing`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omnifs.providers import RESERVED_PREFIX, OmnifsError, Provider

from . import timing
from .plan import Entry

if TYPE_CHECKING:
    from omnifs.catalog import Catalog

#: bytes a source probe reads at most, over at most READ_OBJECTS objects
READ_BUDGET = 8 * 1024 * 1024
READ_OBJECTS = 16
#: the destination probe object's size bounds
WRITE_MIN = 1024 * 1024
WRITE_MAX = 4 * 1024 * 1024
PROBE_PREFIX = RESERVED_PREFIX + "probe/"


@dataclass
class Measured:
    """One store one way: request round trips and (nbytes, seconds) transfers."""

    latencies: list[float] = field(default_factory=list)
    transfers: list[tuple[int, float]] = field(default_factory=list)
    #: epoch seconds of the newest figure
    at: float | None = None

    @property
    def latency(self) -> float | None:
        """The p50 round trip; without request samples, the fastest transfer (a bound)."""
        if self.latencies:
            return timing.p50(self.latencies)
        return min((s for _, s in self.transfers), default=None)

    @property
    def rate(self) -> float | None:
        return timing.throughput(self.transfers, self.latency)


def recorded(cat: Catalog, provider: str, direction: str, *, now: float | None = None,
             recent: float = timing.RECENT) -> Measured:
    """What the catalog holds on ``provider`` from the last ``recent`` seconds."""
    since = (time.time() if now is None else now) - recent
    requests = [s for s in cat.health.samples(provider, since, requests_only=True) if s.ok]
    moved = cat.health.transfers(provider, direction, since)
    ats = [s.at for s in requests] + [t.at for t in moved]
    return Measured([s.latency for s in requests], [(t.nbytes, t.seconds) for t in moved],
                    max(ats) if ats else None)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def probe_source(src: Provider, objects: Sequence[tuple[str, int]]) -> Measured:
    """Ranged reads of ``objects`` ((key, size), largest first) within the budget."""
    out = Measured()
    picked = sorted((o for o in objects if o[1] > 0), key=lambda o: -o[1])[:READ_OBJECTS]
    if not picked:
        return out
    out.latencies.append(_timed(lambda: src.read_bytes(picked[0][0], 0, 1)))
    left = READ_BUDGET
    for key, size in picked:
        n = min(size, left)
        if n <= 0:
            break
        seconds = _timed(functools.partial(src.read_bytes, key, 0, n))
        out.transfers.append((n, seconds))
        left -= n
    out.at = time.time()
    return out


def probe_destination(dst: Provider, size: int, prefix: str = "") -> Measured:
    """Write, head and delete one probe object of ``size`` (clamped to 1-4 MiB) under
    ``prefix`` (the destination tree, ending in "/")."""
    size = max(WRITE_MIN, min(WRITE_MAX, size))
    key = prefix + PROBE_PREFIX + uuid.uuid4().hex
    data = os.urandom(size)
    out = Measured()
    try:
        out.transfers.append((size, _timed(lambda: dst.write_bytes(key, data))))
        out.latencies.append(_timed(lambda: dst.head(key)))
    finally:
        with contextlib.suppress(OmnifsError):
            out.latencies.append(_timed(lambda: dst.delete(key)))
    out.at = time.time()
    return out


def _record(cat: Catalog | None, provider: str, direction: str, m: Measured) -> None:
    if cat is None or m.at is None:
        return
    from omnifs.catalog.health import Transfer
    from omnifs.policy.health import Sample

    with cat.transaction():
        cat.health.record_samples(provider, [Sample(m.at, s, True) for s in m.latencies],
                                  source="migrate")
        cat.health.record_transfers(provider, direction,
                                    [Transfer(m.at, n, s) for n, s in m.transfers],
                                    source="migrate")


@dataclass
class Outcome:
    estimate: timing.TimeEstimate | None
    #: why there is no estimate (one line for stderr), or None
    missing: str | None = None
    #: a line for stdout instead of an estimate (nothing to move)
    note: str | None = None
    #: "recorded" or "probed" per side
    how: dict[str, str] = field(default_factory=dict)


def time_estimate(entries: Sequence[Entry], summary: dict, src: Provider, src_prefix: str,
                  dst: Provider, dst_prefix: str, *, cat: Catalog | None, probe: bool = True,
                  parallel: int = timing.DEFAULT_PARALLEL) -> Outcome:
    """The plan's time estimate from recorded figures, probing the stores lacking one.

    A probe that fails (a store down, no write permission) leaves that side
    without a figure: no estimate, one line saying why, and the plan is still
    written.
    """
    objects, nbytes = timing.work(summary)
    out = Outcome(None)
    if objects == 0:
        out.note = "estimated time: none (nothing to copy or delete)"
        return out
    sides: dict[str, Measured] = {}
    for side, p, direction in (("source", src, "read"), ("destination", dst, "write")):
        m = recorded(cat, p.name, direction) if cat is not None else Measured()
        if m.rate is not None and m.latency is not None:
            sides[side] = m
            out.how[side] = "recorded"
            continue
        if not probe:
            out.missing = (f"no time estimate: no throughput recorded for {p.name} (the {side}) "
                           "and --no-probe was given")
            return out
        try:
            if side == "source":
                moving = [(src_prefix + e.key, e.size) for e in entries
                          if e.action in ("copy", "overwrite")]
                m = probe_source(p, moving) if moving else m
            else:
                moved = summary["copy"]["objects"] + summary["overwrite"]["objects"]
                m = probe_destination(p, nbytes // max(1, moved), dst_prefix)
        except OmnifsError as e:
            out.missing = f"no time estimate: probing {p.name} (the {side}) failed: {e}"
            return out
        _record(cat, p.name, direction, m)
        sides[side] = m
        out.how[side] = "probed"
    s, d = sides["source"], sides["destination"]
    if nbytes == 0 and s.rate is None:
        s = d  # only deletes: nothing is read, the source's throughput does not matter
    if s.rate is None or d.rate is None:
        out.missing = "no time estimate: no throughput figure could be measured"
        return out
    at = max(x for x in (s.at, d.at) if x is not None)
    out.estimate = timing.estimate(objects, nbytes,
                                   overhead=(s.latency or 0.0) + (d.latency or 0.0),
                                   read=s.rate, write=d.rate, parallel=parallel,
                                   measured_at=at)
    return out
