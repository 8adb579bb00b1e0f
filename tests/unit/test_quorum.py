"""mountfs.quorum: racing uploads to a quorum of stores, with trio's mock clock (no servers)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from omnifs.mountfs.quorum import HEDGE_MAX, HEDGE_MIN, Attempts, Speed, race
from omnifs.providers import TimedOut, Unavailable


def run_race(behaviour: dict[str, tuple[float, bool]], order: list[str], quorum: int,
             delay: float = 0.2, after: float = 30.0):
    """Race fake uploads: store -> (seconds it takes, succeeds?). Returns (attempts, the
    race's duration, late results as (name, ok, at), starts as (name, at))."""
    late: list[tuple[str, bool, float]] = []
    starts: list[tuple[str, float]] = []
    out = {}

    async def attempt(name: str):
        starts.append((name, trio.current_time()))
        seconds, ok = behaviour[name]
        await trio.sleep(seconds)
        if not ok:
            raise (TimedOut if seconds >= 5 else Unavailable)("no", provider=name)
        return f"etag-{name}"

    async def main():
        attempts = Attempts(late=lambda n, r: late.append(
            (n, not isinstance(r, Exception), trio.current_time())))
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            await race(nursery, attempts, order, quorum, attempt, lambda name: delay)
            out["took"] = trio.current_time() - t0
            attempts.settled()
            out["attempts"] = attempts
            await trio.sleep(after)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return out["attempts"], out["took"], late, starts


def test_quorum_of_healthy_stores_starts_them_at_once():
    attempts, took, late, starts = run_race({"a": (0.05, True), "b": (0.06, True),
                                             "c": (0.01, True)}, ["a", "b", "c"], 2)
    assert set(attempts.done) == {"a", "b"} and took == pytest.approx(0.06)
    assert sorted(starts) == [("a", 0.0), ("b", 0.0)] and late == []


def test_a_hung_store_costs_one_hedge_delay_and_finishes_late():
    attempts, took, late, starts = run_race({"a": (10.0, False), "b": (0.05, True),
                                             "c": (0.05, True)}, ["a", "b", "c"], 1)
    assert list(attempts.done) == ["b"] and took == pytest.approx(0.25)
    assert starts == [("a", 0.0), ("b", pytest.approx(0.2))]
    assert attempts.running == set()  # the late failure was handed over
    assert late == [("a", False, pytest.approx(10.0))]


def test_a_quick_failure_starts_the_next_store_at_once():
    attempts, took, _, starts = run_race({"a": (0.01, False), "b": (0.05, True)},
                                         ["a", "b"], 1)
    assert list(attempts.done) == ["b"] and list(attempts.failed) == ["a"]
    assert starts[1] == ("b", pytest.approx(0.01)) and took == pytest.approx(0.06)


def test_every_store_hung_fails_within_their_timeout_plus_the_hedges():
    attempts, took, late, _ = run_race({n: (5.0, False) for n in "abc"},
                                       ["a", "b", "c"], 1)
    assert attempts.done == {} and set(attempts.failed) == {"a", "b", "c"}
    assert took == pytest.approx(5.0 + 2 * 0.2)
    assert late == []


def test_late_results_wait_until_the_publish_settled():
    late: list[str] = []

    async def attempt(name):
        await trio.sleep(1.0 if name == "slow" else 0.01)
        return name

    async def main():
        attempts = Attempts(late=lambda n, r: late.append(n))
        async with trio.open_nursery() as nursery:
            await race(nursery, attempts, ["slow", "fast"], 1, attempt, lambda n: 0.2)
            await trio.sleep(2)  # the publish is still recording: nothing handed over yet
            assert late == [] and attempts.running == {"slow"}
            attempts.settled()
            assert late == ["slow"] and attempts.running == set()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_hedge_delay_follows_the_store_and_its_spread():
    s = Speed()
    for _ in range(50):
        s.note(4096, 0.01)
    assert s.overdue_after(4096) == HEDGE_MIN
    for seconds in [0.05, 0.6] * 25:  # a busy store: slow and uneven, not hung
        s.note(4096, seconds)
    assert s.overdue_after(4096) == pytest.approx(HEDGE_MAX, abs=0.01)  # capped: ~1 s
    for _ in range(20):
        s.note(64 << 20, 4.0)  # big uploads measure throughput: ~17 MiB/s past the latency
    assert 25 < s.overdue_after(256 << 20) < 40  # twice the ~15 s 256 MiB takes


def _events(behaviour: dict[str, tuple[float, bool]]) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []

    async def attempt(name: str):
        seconds, ok = behaviour[name]
        await trio.sleep(seconds)
        if not ok:
            raise Unavailable("no", provider=name)
        return name

    async def main():
        attempts = Attempts(late=lambda n, r: None)
        async with trio.open_nursery() as nursery:
            await race(nursery, attempts, list(behaviour), 1, attempt, lambda name: 0.2,
                       lambda event, name: events.append((event, name)))
            attempts.settled()
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return events


def test_hedges_wins_and_failovers_are_reported():
    # a hangs: hedged to b, which answers first
    assert _events({"a": (10.0, True), "b": (0.05, True)}) == [("hedges", "a"),
                                                                ("hedge_wins", "b")]
    # a fails at once: b takes over (a failover, not a hedge)
    assert _events({"a": (0.01, False), "b": (0.05, True)}) == [("failovers", "a")]
