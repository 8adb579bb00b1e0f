"""A/B figures of the bench scripts: the same build with a feature on and off, interleaved.

On a shared machine (2 CPUs, other engineers' work) two separate runs move by
more than the few percent a feature costs. So the scripts' ``--ab`` modes run
the two sides in pairs, in alternating order (on, off / off, on / ...), and
report here:

* the median of the per-pair ratios on / off of wall time, with their
  interquartile range and extremes: drift and load fall on both halves of a
  pair alike, and the median ignores the pairs a burst of load hit;
* the process CPU seconds per operation on each side (the process doing the
  work: the mount, or the bench's own client process) and the median of their
  per-pair ratios, which depends far less on what else the machine runs;
* the load average when the figure was printed (``uptime``'s three numbers).

Imported by bench/readpath.py and bench/providers.py (not run on its own).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


def sides(i: int, on: object, off: object) -> tuple[object, object]:
    """Pair ``i``'s order: on first in even pairs, off first in odd ones."""
    return (on, off) if i % 2 == 0 else (off, on)


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(xs: Sequence[float]) -> tuple[float, float, float, float, float]:
    """(median, first quartile, third quartile, least, most) of ``xs``."""
    if len(xs) < 2:
        x = xs[0]
        return x, x, x, x, x
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return statistics.median(xs), q1, q3, min(xs), max(xs)


@dataclass
class AB:
    """The measurements of one row: per pair, wall seconds and CPU seconds of each side."""

    title: str
    #: operations per measurement (reads, requests, MiB ...), for the per-operation CPU
    ops: float
    unit: str = "op"
    wall: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})

    def add(self, side: str, wall: float, cpu: float) -> None:
        self.wall[side].append(wall)
        self.cpu[side].append(cpu)

    def ratios(self, what: dict[str, list[float]]) -> list[float]:
        return [a / b for a, b in zip(what["on"], what["off"], strict=False) if b > 0]

    def report(self, goal: float = 1.03) -> str:
        """The row's figures, each beside its baseline, in a few lines."""
        w = spread(self.ratios(self.wall))
        c = spread(self.ratios(self.cpu))
        n = min(len(self.wall["on"]), len(self.wall["off"]))
        per = {s: statistics.median(self.cpu[s]) / self.ops for s in ("on", "off")}
        scale, unit = (1e6, "us") if per["off"] < 1e-2 else (1e3, "ms")
        verdict = (f"wall {'ok' if w[0] <= goal else 'OVER'}, "
                   f"CPU {'ok' if c[0] <= goal else 'OVER'}")
        return (
            f"{self.title}\n"
            f"  wall on/off: median of {n} pair ratios {w[0]:.3f} (IQR {w[1]:.3f}-{w[2]:.3f}, "
            f"range {w[3]:.3f}-{w[4]:.3f}); medians on {statistics.median(self.wall['on']):.3f} s,"
            f" off {statistics.median(self.wall['off']):.3f} s\n"
            f"  CPU per {self.unit}: on {per['on'] * scale:.1f} {unit}, off "
            f"{per['off'] * scale:.1f} {unit}; on/off median of pair ratios {c[0]:.3f} "
            f"(IQR {c[1]:.3f}-{c[2]:.3f})\n"
            f"  goal <= {goal:.2f}: {verdict}; load average {load()}")
