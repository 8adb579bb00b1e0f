"""policy.health: the one definition of healthy/degraded/down, with made-up clocks."""

from __future__ import annotations

import pytest

from omnifs.policy.health import (
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


def test_returns_healthy_once_answering_after_an_outage():
    """The outage's failures do not keep a store that answers well again degraded."""
    samples = [ok(t) for t in range(0, 20, 2)] + [fail(t) for t in range(20, 30, 2)] + [ok(30)]
    h = classify(samples, now=30)
    assert h.status == HEALTHY and h.usable
    assert h.error_rate == 0 and h.samples == 1
    assert h.last_failure == 28


def test_failures_after_the_return_still_count():
    samples = [fail(t) for t in range(0, 10, 2)] + [ok(10), fail(11), ok(12), ok(13), fail(14)]
    h = classify(samples + [ok(15)], now=15)
    assert h.status == DEGRADED and h.error_rate == pytest.approx(2 / 6)


def test_a_blip_is_not_an_outage_and_counts_in_the_error_rate():
    samples = [ok(t) for t in range(8)] + [fail(8), ok(9)]
    h = classify(samples, now=9)
    assert h.status == DEGRADED and h.error_rate == pytest.approx(0.1)


def test_a_silent_failure_is_down_at_once():
    th = Thresholds(silent_after=3.0)
    samples = [ok(t) for t in range(0, 20, 2)] + [fail(20, latency=3.0)]
    assert classify(samples, now=23, thresholds=th).status == DOWN
    # a quick error is not decisive alone, and no sample is without silent_after
    assert classify(samples[:-1] + [fail(20, latency=0.01)], now=20.5,
                    thresholds=th).status != DOWN
    assert classify(samples, now=21).status != DOWN


@pytest.mark.parametrize("fault", ["hang", "refuse"])
@pytest.mark.parametrize("interval,timeout", [(2.0, 3.0), (0.3, 1.0), (10.0, 3.0)])
def test_down_within_timeout_plus_interval_and_healthy_within_30s(fault, interval, timeout):
    """The daemon's probe rounds, simulated: a probe every ``interval`` after the previous
    round; a hung store answers nothing for ``timeout``, a dead one refuses at once and the
    prober confirms the failure with a second probe at once (see daemon/health.py)."""
    th = Thresholds(silent_after=timeout)
    samples: list[Sample] = []
    t, broke, back = 0.0, 200.0, 400.0
    went_down = came_back = None
    while t < 600:
        if broke <= t < back:
            if fault == "hang":
                samples.append(fail(t, latency=timeout))
                t += timeout
            else:
                samples += [fail(t, 0.001), fail(t + 0.1, 0.001)]
                t += 0.1
        else:
            samples.append(ok(t, 0.005))
        status = classify(samples, now=t, thresholds=th).status
        if went_down is None and t >= broke and status == DOWN:
            went_down = t - broke
        if t >= back and status == HEALTHY and came_back is None:
            came_back = t - back
        t += interval
    assert went_down is not None and went_down <= timeout + interval + 0.2
    assert came_back is not None and came_back <= 30


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
