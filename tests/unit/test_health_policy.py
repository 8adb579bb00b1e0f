"""policy.health: the one definition of healthy/degraded/down, with made-up clocks."""

from __future__ import annotations

import pytest

from policy.health import (
    DEGRADED,
    DOWN,
    HEALTHY,
    LOST,
    UNKNOWN,
    Health,
    Sample,
    Thresholds,
    classify,
    is_lost,
    percentile,
)


def ok(at: float, latency: float = 0.01) -> Sample:
    return Sample(at, latency, True)


def fail(at: float, latency: float = 0.5) -> Sample:
    return Sample(at, latency, False)


def test_no_samples_is_unknown():
    h = classify([], now=100)
    assert h.status == UNKNOWN and h.usable and h.samples == 0


def test_only_old_samples_is_unknown():
    assert classify([fail(1), fail(2)], now=1000).status == UNKNOWN


def test_all_ok_is_healthy_with_latencies():
    h = classify([ok(t, 0.01 * (t + 1)) for t in range(10)], now=10)
    assert h.status == HEALTHY
    assert h.p50 == pytest.approx(0.05)
    assert h.p95 == pytest.approx(0.10)
    assert h.error_rate == 0
    assert h.last_ok == 9 and h.last_failure is None and h.failing_since is None


def test_two_consecutive_failures_is_down():
    h = classify([ok(0), ok(2), fail(4), fail(6)], now=6)
    assert h.status == DOWN and not h.usable
    assert h.failing_since == 4


def test_one_failure_then_ok_is_not_down():
    h = classify([ok(t) for t in range(0, 40, 2)] + [fail(40), ok(42)], now=42)
    assert h.status == HEALTHY


def test_single_recent_failure_is_not_yet_down():
    h = classify([ok(t) for t in range(0, 40, 2)] + [fail(40)], now=41)
    assert h.status != DOWN


def test_single_failure_that_lasts_is_down():
    # a prober that stopped reporting after one failure must not keep the store up
    h = classify([ok(t) for t in range(0, 40, 2)] + [fail(40)], now=46)
    assert h.status == DOWN


def test_down_within_ten_seconds_with_two_second_probes():
    died = 100.0
    samples = [ok(t) for t in range(60, 100, 2)]
    # probes at 102, 104 ... each failing after a 1 s timeout
    for n in range(1, 6):
        samples.append(fail(died + 2 * n + 1, latency=1.0))
        h = classify(samples, now=died + 2 * n + 1)
        if h.status == DOWN:
            assert (died + 2 * n + 1) - died <= 10
            break
    else:
        pytest.fail("never marked down")


def test_returns_after_first_success_as_degraded():
    samples = [ok(t) for t in range(0, 20, 2)] + [fail(t) for t in range(20, 30, 2)] + [ok(30)]
    h = classify(samples, now=30)
    assert h.status == DEGRADED
    assert h.usable


def test_error_rate_degrades():
    samples = [ok(t) for t in range(18)] + [fail(18), ok(19)]
    h = classify(samples, now=20)
    assert h.error_rate == pytest.approx(0.05)
    assert h.status == HEALTHY
    h = classify(samples + [fail(20), ok(21)], now=21)
    assert h.error_rate == pytest.approx(2 / 22)
    assert h.status == HEALTHY
    h = classify(samples + [fail(20), ok(21), fail(22), ok(23)], now=23)
    assert h.status == DEGRADED


def test_slow_p95_degrades():
    samples = [ok(t, 0.01) for t in range(15)] + [ok(15 + t, 3.0) for t in range(5)]
    assert classify(samples, now=20).status == DEGRADED


def test_custom_thresholds():
    th = Thresholds(window=10, down_consecutive=3, down_after=100, degraded_error_rate=0.5,
                    degraded_p95=10)
    samples = [ok(0), fail(1), fail(2)]
    assert classify(samples, now=2, thresholds=th).status == DEGRADED
    assert classify(samples + [fail(3)], now=3, thresholds=th).status == DOWN


def test_window_forgets_old_failures():
    samples = [fail(t) for t in range(5)] + [ok(t) for t in range(70, 80)]
    assert classify(samples, now=80).status == HEALTHY


def test_unsorted_input():
    samples = [fail(6), ok(0), fail(4), ok(2)]
    assert classify(samples, now=6).status == DOWN


def test_future_samples_ignored():
    assert classify([fail(200)], now=100).status == UNKNOWN


def test_failures_have_no_latency_in_percentiles():
    h = classify([ok(0, 0.1), fail(1, 30.0), ok(2, 0.1)], now=2)
    assert h.p95 == pytest.approx(0.1)


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([4, 3, 2, 1], 100) == 4
    assert percentile(list(range(1, 101)), 95) == 95


def test_is_lost():
    h = classify([ok(0), fail(10), fail(12)], now=12)
    assert h.status == DOWN
    assert not is_lost(h.failing_since, now=12, lost_after=60)
    assert is_lost(h.failing_since, now=70, lost_after=60)
    assert not is_lost(None, now=1e9, lost_after=1)


def test_lost_status_is_not_usable():
    assert not Health(LOST).usable
