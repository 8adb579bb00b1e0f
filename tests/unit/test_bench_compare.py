"""bench compare on synthetic histories: a true regression is flagged, run-to-run noise is not."""

from __future__ import annotations

import json
import random

import pytest

from omnifs.bench import compare as cmp
from omnifs.bench.results import FORMAT, VERSION
from omnifs.cli import main
from omnifs.errors import InvalidInput


def _run(ops_per_s: list[float], p50: float = 0.002, errors: int = 0, provider: str = "s3",
         started: int = 0) -> dict:
    rows = [{"provider": provider, "scheme": "s3", "size": 4096, "concurrency": 16,
             "repeat": i, "ops": 1000, "errors": errors, "seconds": 1.0, "bytes": 0,
             "ops_per_s": v, "mb_per_s": v * 4096 / 1e6,
             "latency": {"count": 1000, "errors": errors, "p50": p50, "p95": p50 * 2,
                         "p99": p50 * 3, "max": p50 * 4},
             "per_op": {}, "cdf": [p50] * 41, "cpu_seconds": 0.5, "peak_rss": 1 << 26,
             "error_samples": []} for i, v in enumerate(ops_per_s)]
    return {"format": FORMAT, "version": VERSION, "run_id": f"{started:032x}",
            "started": started, "finished": started + 1, "started_utc": f"2026{started:010d}",
            "quick": True, "repeats": len(rows), "profile": None,
            "scenario": {"name": "small-object", "digest": "d1"},
            "providers": [{"name": provider, "scheme": "s3"}], "environment": {},
            "results": rows}


def _noisy(rng: random.Random, centre: float, spread: float, n: int) -> list[float]:
    return [centre * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_noise_within_the_spread_is_not_a_regression():
    rng = random.Random(7)
    for _ in range(50):
        # +-15 % run-to-run noise, 10 % threshold: medians may differ by more than 10 %
        base = _run(_noisy(rng, 1000, 0.15, 5))
        cur = _run(_noisy(rng, 1000, 0.15, 5))
        outcome = cmp.compare([base], [cur], 0.10)
        assert not outcome.regressions, outcome.lines()


def test_a_true_regression_beyond_the_spread_is_flagged():
    rng = random.Random(8)
    base = _run(_noisy(rng, 1000, 0.05, 5))
    cur = _run(_noisy(rng, 600, 0.05, 5), p50=0.004)
    outcome = cmp.compare([base], [cur], 0.10)
    metrics = {f.metric for f in outcome.regressions}
    assert metrics == {"ops/s", "p50 latency"}
    assert "REGRESSION" in "\n".join(outcome.lines())


def test_a_drop_below_the_threshold_or_an_improvement_is_not_a_regression():
    assert not cmp.compare([_run([1000, 1001])], [_run([950, 951])], 0.10).regressions
    better = cmp.compare([_run([1000, 1001])], [_run([2000, 2001], p50=0.001)], 0.10)
    assert not better.regressions
    assert {f.verdict for f in better.findings} == {"improvement"}


def test_runs_of_a_history_directory_pool_as_samples(tmp_path):
    base_dir, cur_dir = tmp_path / "base", tmp_path / "cur"
    base_dir.mkdir()
    cur_dir.mkdir()
    for i, v in enumerate((900, 1000, 1100)):
        (base_dir / f"{i}.json").write_text(json.dumps(_run([v], started=i)))
    # 20 % down, but the baseline's own runs spread by 20 %: noise
    (cur_dir / "0.json").write_text(json.dumps(_run([820])))
    assert main(["bench", "compare", str(base_dir), str(cur_dir), "--threshold", "10%"]) == 0
    # 40 % down: beyond both the threshold and the spread
    (cur_dir / "0.json").write_text(json.dumps(_run([600])))
    assert main(["bench", "compare", str(base_dir), str(cur_dir)]) == 1


def test_new_errors_and_unmatched_rows():
    outcome = cmp.compare([_run([1000])], [_run([1000], errors=3)], 0.10)
    assert [f.metric for f in outcome.regressions] == ["errors"]
    other = cmp.compare([_run([1000])], [_run([1000], provider="gs")], 0.10)
    assert not other.regressions and len(other.unmatched) == 2


def test_bad_input(tmp_path, capsys):
    with pytest.raises(InvalidInput):
        cmp.parse_threshold("ten")
    assert cmp.parse_threshold("15%") == pytest.approx(0.15)
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["bench", "compare", str(bad), str(bad)]) == 2
    assert "not an omnifs bench result" in capsys.readouterr().err
