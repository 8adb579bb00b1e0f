"""The pure parts of ``migrate run``: rates, the shared bandwidth limit, the max-cost budget
(what a run spent priced with what it is about to spend), the outage pause and the summary
lines."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from omnifs.migration.budget import Budget, check_estimate, expected_usage, merged
from omnifs.migration.outage import Outage
from omnifs.migration.outcome import RunResult, failure_lines, summary_lines
from omnifs.migration.sides import saved_key
from omnifs.migration.throttle import TokenBucket, parse_rate
from omnifs.prices import PriceOverride
from omnifs.providers import InvalidInput, NotFound, ProviderSettings, Unavailable

MiB = 1024 * 1024


@pytest.mark.parametrize(("text", "rate"), [
    ("100MiB/s", 100 * MiB), ("1.5GB/s", 1.5e9), ("800k", 800_000), ("20 MB / s", 20e6),
    ("512KiB", 512 * 1024), ("7", 7)])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "10 MiB/h", "-1MiB/s", "0", "MiB/s", "1e3"])
def test_parse_rate_refuses_in_one_line(text):
    with pytest.raises(InvalidInput) as e:
        parse_rate(text)
    assert "--bandwidth" in str(e.value) and "\n" not in str(e.value)


def test_token_bucket_is_shared_by_threads():
    bucket = TokenBucket(400_000, burst=0)
    t0 = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.consume(20_000) for _ in range(10)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 800,000 bytes at 400,000 B/s between four threads: 2 s, not 0.5 s
    assert 1.8 <= time.monotonic() - t0 <= 6


def test_expected_usage_per_action():
    assert expected_usage("copy", 10, server_side=False, move=False) == {
        "src": {"get_requests": 1, "bytes_out": 10},
        "dst": {"put_requests": 1, "bytes_in": 10}}
    assert expected_usage("overwrite", 10, server_side=True, move=False) == {
        "src": {}, "dst": {"copy_requests": 2}}
    assert expected_usage("delete", 10, server_side=False, move=True) == {
        "src": {}, "dst": {"copy_requests": 1, "delete_requests": 1}}
    assert expected_usage("skip", 10, server_side=False, move=True) == {
        "src": {"head_requests": 1, "delete_requests": 1}, "dst": {"head_requests": 1}}
    assert merged({"src": {"a": 1}}, {"src": {"a": 2, "b": 1}, "dst": {"c": 3}}) == {
        "src": {"a": 3, "b": 1}, "dst": {"c": 3}}


def test_budget_reserves_in_flight_objects_and_stops_before_the_limit():
    src = ProviderSettings(name="src", uri="file:///a")
    dst = ProviderSettings(name="dst", uri="file:///b")
    over = {"src": PriceOverride(prices={"egress_internet_per_gb": Decimal(1024)})}
    b = Budget(Decimal("2.5"), src, dst, over)  # 1 per MiB read
    one = expected_usage("copy", MiB, server_side=False, move=False)
    assert b.cost(one) == 1
    assert b.reserve({}, one) is None
    assert b.reserve({}, one) is None  # 2 in flight
    why = b.reserve({}, one)
    assert why == ("stopped before exceeding --max-cost 2.5: spent 2.0000, the next object "
                   "would bring it to 3.0000; the objects left stay pending")
    b.release(one)
    b.release(one)
    spent = {"src": {"bytes_out": 2 * MiB}}  # the two finished: now counted as spent
    assert b.reserve(spent, one) is not None
    assert b.reserve({"src": {"bytes_out": MiB}}, one) is None


def test_budget_adds_objects_too_cheap_to_show_one_by_one():
    b = Budget(Decimal("0.0001"), ProviderSettings(name="s", uri="s3://a"),
               ProviderSettings(name="d", uri="gs://b"), {})
    tiny = expected_usage("copy", 10, server_side=False, move=False)
    assert b.cost(tiny) == 0  # rounded away alone
    n = 0
    while b.reserve({}, tiny) is None:
        n += 1
        assert n < 1000
    assert n > 1


def test_check_estimate():
    check_estimate({"total": "1.5000", "currency": "USD"}, Decimal("1.5"))
    with pytest.raises(InvalidInput, match=r"estimated 1.5001 USD exceeds --max-cost 1.5"):
        check_estimate({"total": "1.5001", "currency": "USD"}, Decimal("1.5"))
    with pytest.raises(InvalidInput, match="no cost estimate"):
        check_estimate(None, Decimal(100))


def test_outage_pauses_until_the_probe_answers():
    answers = [Unavailable("down"), Unavailable("down"), NotFound("up")]

    def probe():
        raise answers.pop(0)

    o = Outage(probe, wait_down=10, first_delay=0.01)
    assert o.was_down(Unavailable("x", provider="dst"), o.epoch) is True
    assert o.epoch == 1 and o.gave_up is None and o.wait_up()
    # an error from an attempt begun before that outage ended: no probe needed
    assert o.was_down(Unavailable("x"), 0) is True
    # a store that answers at once: the error was the object's own
    calm = Outage(lambda: None, wait_down=10)
    assert calm.was_down(Unavailable("x"), calm.epoch) is False and calm.epoch == 0


def test_outage_gives_up_after_wait_down():
    def probe():
        raise Unavailable("still down")

    o = Outage(probe, wait_down=0.1, first_delay=0.02)
    assert o.was_down(Unavailable("x", provider="dst"), o.epoch) is True
    assert o.gave_up is not None and o.gave_up.startswith("dst has been unreachable for 0.1s")
    assert not o.wait_up()


def test_summary_and_failure_lines():
    r = RunResult(migration="abc", state="incomplete", copied=3, copied_bytes=3 * MiB,
                  resumed=1, skipped=2, deleted=1, sources_deleted=4,
                  failed=[(f"k{i}", "gone") for i in range(23)], pending=5, elapsed=2.0,
                  bytes=4 * MiB)
    lines = summary_lines(r, "move")
    assert lines == [
        "copied 3 objects, 3.0 MiB (1 found complete from an interrupted run); 2 skipped, "
        "1 deleted, 23 failed, 5 pending",
        "moved: 4 source objects deleted after verification",
        "migration abc incomplete in 2.0s (2.0 MiB/s)"]
    fl = failure_lines(r.failed)
    assert len(fl) == 21 and fl[0] == "failed: k0: gone" and fl[-1] == "and 3 more"
    assert not r.ok
    assert saved_key("into/", "abc", "x y.txt") == "into/.omnifs/migrations/abc/x y.txt"
