"""Baseline against current: a change counts only beyond the threshold AND the noise.

Rows are matched by scenario (name and digest: a quick run is never compared
with a full one), network profile, provider, size and concurrency. Each side
may hold several samples of a row: the repeats of one run (``--repeat``) and
every run of a history directory. The noise of a row is the larger relative
spread ((max - min) / baseline median) of its two sides. A metric regresses when
its median got worse by more than both the threshold and that noise, and the
two sides' ranges do not overlap (every current sample is worse than every
baseline sample). With one
sample a side the spread is unknown (0) and the threshold alone decides: run
with ``--repeat`` to let noise be told from change.

Metrics: ops/s (higher is better) and p50 latency (lower is better). A row
that had no errors and now has some is a regression too.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from omnifs.errors import InvalidInput
from omnifs.units import human_bytes

#: (name in a row, label, higher is better)
METRICS = (("ops_per_s", "ops/s", True), ("latency.p50", "p50 latency", False))

Key = tuple[str, str, str, str, int, int]


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10."""
    raw = text.strip().removesuffix("%")
    try:
        value = float(raw) / 100
    except ValueError:
        raise InvalidInput(f"--threshold: {text!r} is not a percentage such as 10%") from None
    if not 0 < value < 10:
        raise InvalidInput(f"--threshold: {text!r} must be above 0 %")
    return value


def _metric(row: dict[str, Any], name: str) -> float:
    value: Any = row
    for part in name.split("."):
        value = value[part]
    return float(value)


def _samples(runs: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    out: dict[Key, list[dict[str, Any]]] = {}
    for run in runs:
        sc = run["scenario"]
        profile = (run.get("profile") or {}).get("name", "none")
        for row in run["results"]:
            key = (sc["name"], sc["digest"], profile, row["provider"], row["size"],
                   row["concurrency"])
            out.setdefault(key, []).append(row)
    return out


def spread(values: list[float]) -> float:
    """max - min; 0 for one value."""
    return max(values) - min(values)


@dataclass
class Finding:
    scenario: str
    profile: str
    provider: str
    size: int
    concurrency: int
    metric: str
    baseline: float
    current: float
    #: relative change, signed so that negative is worse
    change: float
    noise: float
    samples: tuple[int, int]
    #: "regression", "improvement", "noise" (beyond threshold, within spread), "same"
    verdict: str

    def line(self, threshold: float) -> str:
        where = (f"{self.scenario} [{self.profile}] {self.provider} "
                 f"{human_bytes(self.size)} c={self.concurrency}")
        return (f"{self.verdict.upper():<11} {where} {self.metric}: {self.baseline:.4g} -> "
                f"{self.current:.4g} ({self.change * 100:+.1f} %, spread "
                f"{self.noise * 100:.1f} %, threshold {threshold * 100:g} %, "
                f"samples {self.samples[0]}/{self.samples[1]})")


@dataclass
class Outcome:
    threshold: float
    findings: list[Finding] = field(default_factory=list)
    #: rows only one side has
    unmatched: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regression"]

    def lines(self) -> list[str]:
        out = [f.line(self.threshold) for f in self.findings if f.verdict != "same"]
        out += [f"UNMATCHED   {u}" for u in self.unmatched]
        n = len(self.regressions)
        out.append(f"{n} regression{'s' if n != 1 else ''} in {len(self.findings)} comparisons"
                   f" (threshold {self.threshold * 100:g} %, beyond run-to-run spread)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "regressions": len(self.regressions),
                "findings": [asdict(f) for f in self.findings], "unmatched": self.unmatched}


def judge(base: list[float], cur: list[float], higher_better: bool,
          threshold: float) -> tuple[float, float, str]:
    """(signed change, noise, verdict) of one metric's samples."""
    b, c = statistics.median(base), statistics.median(cur)
    if b == 0:
        return 0.0, 0.0, "same"
    change = (c - b) / b if higher_better else (b - c) / b
    noise = max(spread(base), spread(cur)) / b
    if abs(change) <= threshold:
        return change, noise, "same"
    apart = min(cur) > max(base) or max(cur) < min(base)
    if abs(change) <= noise or not apart:
        return change, noise, "noise"
    return change, noise, "regression" if change < 0 else "improvement"


def compare(baseline: list[dict[str, Any]], current: list[dict[str, Any]],
            threshold: float) -> Outcome:
    base, cur = _samples(baseline), _samples(current)
    outcome = Outcome(threshold)
    for key in sorted(set(base) | set(cur)):
        name, _, profile, provider, size, concurrency = key
        if key not in base or key not in cur:
            side = "baseline" if key in base else "current"
            outcome.unmatched.append(f"{name} [{profile}] {provider} {human_bytes(size)} "
                                     f"c={concurrency}: only in the {side}")
            continue
        b_rows, c_rows = base[key], cur[key]
        for metric, label, higher in METRICS:
            bv = [_metric(r, metric) for r in b_rows]
            cv = [_metric(r, metric) for r in c_rows]
            change, noise, verdict = judge(bv, cv, higher, threshold)
            outcome.findings.append(Finding(name, profile, provider, size, concurrency, label,
                                            statistics.median(bv), statistics.median(cv),
                                            change, noise, (len(bv), len(cv)), verdict))
        if not any(r["errors"] for r in b_rows) and any(r["errors"] for r in c_rows):
            errors = sum(r["errors"] for r in c_rows)
            outcome.findings.append(Finding(name, profile, provider, size, concurrency,
                                            "errors", 0, errors, -1.0, 0.0,
                                            (len(b_rows), len(c_rows)), "regression"))
    return outcome
