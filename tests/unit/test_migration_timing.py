"""The time model of ``omnifs migrate plan`` (omnifs/migration/timing.py) and the figures it
reads from the catalog (transfer samples, omnifs/catalog/health.py; speed.recorded)."""

from __future__ import annotations

import pytest

from omnifs.catalog import Catalog
from omnifs.catalog.health import TRANSFER_KEEP, TRANSFER_ROWS, Transfer
from omnifs.migration import timing
from omnifs.migration.plan import Entry, summarize
from omnifs.migration.speed import Measured, recorded
from omnifs.policy.health import Sample
from omnifs.providers import InvalidInput

MB = 1_000_000


def test_p50_is_the_nearest_rank_median():
    assert timing.p50([]) is None
    assert timing.p50([0.3]) == 0.3
    assert timing.p50([0.4, 0.1, 0.2]) == 0.2
    assert timing.p50([0.4, 0.1, 0.2, 0.3]) == 0.2


def test_throughput_takes_one_round_trip_off_each_transfer():
    # 10 MB in 1.1 s with a 0.1 s round trip: the payload moved at 10 MB/s
    assert timing.throughput([(10 * MB, 1.1)], 0.1) == pytest.approx(10 * MB)
    assert timing.throughput([(10 * MB, 1.1)]) == pytest.approx(10 * MB / 1.1)
    # two transfers pool their bytes and time
    assert timing.throughput([(MB, 0.2), (3 * MB, 0.6)], 0.1) == pytest.approx(4 * MB / 0.6)
    # a round trip as long as the transfer never gives an infinite rate: 10 % of it is kept
    assert timing.throughput([(MB, 0.1)], 0.1) == pytest.approx(MB / 0.01)
    assert timing.throughput([], 0.1) is None
    assert timing.throughput([(0, 0.5)]) is None


def test_estimate_is_overhead_per_object_over_parallel_plus_bytes_over_the_slower_side():
    est = timing.estimate(1000, 300 * MB, overhead=0.08, read=45 * MB, write=30 * MB,
                          parallel=8, measured_at=1_796_558_400.0)
    # 0.08 * 1000 / 8 = 10 s of requests; 300 MB / 30 MB/s = 10 s of bytes
    assert est.seconds == pytest.approx(20.0)
    assert est.measured == "2026-12-06"
    assert timing.line(est) == ("estimated time: 20 s at 8 parallel (source 45 MB/s read, "
                                "destination 30 MB/s write, measured 2026-12-06)")
    # the other way round, the source is the slower side
    slow_read = timing.estimate(0, 300 * MB, overhead=1.0, read=10 * MB, write=30 * MB,
                                parallel=1, measured_at=0.0)
    assert slow_read.seconds == pytest.approx(30.0)
    # more parallelism only shortens the requests' part
    wide = timing.estimate(1000, 300 * MB, overhead=0.08, read=45 * MB, write=30 * MB,
                           parallel=80, measured_at=0.0)
    assert wide.seconds == pytest.approx(11.0)
    with pytest.raises(ValueError):
        timing.estimate(1, 1, overhead=0.1, read=0.0, write=1.0, measured_at=0.0)
    with pytest.raises(ValueError):
        timing.estimate(1, 1, overhead=0.1, read=1.0, write=1.0, parallel=0, measured_at=0.0)


def test_the_estimate_round_trips_through_the_plan_file_form():
    est = timing.estimate(10, 5 * MB, overhead=0.05, read=12.5 * MB, write=7 * MB,
                          parallel=4, measured_at=1_796_558_400.0)
    again = timing.TimeEstimate.from_dict(est.as_dict())
    assert timing.line(again) == timing.line(est)
    assert again.as_dict() == est.as_dict()


@pytest.mark.parametrize(("seconds", "text"), [
    (0.04, "0.0 s"), (4.26, "4.3 s"), (10, "10 s"), (59.6, "1 min"), (250, "4 min 10 s"),
    (3600, "1 h"), (7500, "2 h 5 min"), (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
])
def test_human_duration(seconds, text):
    assert timing.human_duration(seconds) == text


@pytest.mark.parametrize(("bps", "text"), [
    (45 * MB, "45 MB/s"), (1.25e9, "1.2 GB/s"), (800_000, "800 kB/s"), (8_400, "8.4 kB/s"),
    (999, "999 B/s"), (2.5 * MB, "2.5 MB/s"),
])
def test_human_rate(bps, text):
    assert timing.human_rate(bps) == text


def test_work_counts_what_a_run_moves_and_deletes():
    entries = [Entry("copy", "a", 10, "missing"), Entry("overwrite", "b", 20, "differs"),
               Entry("skip", "c", 40, "same", delete_source=True),
               Entry("delete", "d", 80, "extra")]
    # copies and overwrites move bytes; the delete and the move's source delete are requests
    assert timing.work(summarize(entries)) == (4, 30)
    assert timing.work(summarize([])) == (0, 0)


def test_measured_latency_falls_back_to_the_fastest_transfer():
    m = Measured([], [(MB, 0.5), (MB, 0.3)])
    assert m.latency == 0.3
    assert Measured([0.02, 0.04, 0.03], [(MB, 0.5)]).latency == 0.03
    assert Measured().latency is None and Measured().rate is None


def test_transfer_samples_are_recorded_read_back_and_outlive_the_health_window(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    try:
        now = 1_000_000.0
        cat.health.record_transfers("s3", "write", [Transfer(now - 10, 4 * MB, 0.5)])
        cat.health.record_transfers("s3", "read", [Transfer(now - 5, 8 * MB, 0.4)],
                                    source="migrate")
        cat.health.record_samples("s3", [Sample(now - 3, 0.02, True), Sample(now - 2, 0.5, False)])
        assert cat.health.transfers("s3", "write", 0) == [Transfer(now - 10, 4 * MB, 0.5)]
        assert [t.nbytes for t in cat.health.transfers("s3", "read", 0)] == [8 * MB]
        # transfers count as successful samples for the health verdicts' readers of all
        # samples, and are left out of the request round trips
        assert len(cat.health.samples("s3", 0)) == 4
        assert cat.health.samples("s3", 0, requests_only=True) == [
            Sample(now - 3, 0.02, True), Sample(now - 2, 0.5, False)]
        with pytest.raises(InvalidInput):
            cat.health.record_transfers("s3", "sideways", [])

        m = recorded(cat, "s3", "write", now=now)
        assert m.latency == 0.02 and m.at == now - 3
        assert m.rate == pytest.approx(4 * MB / (0.5 - 0.02))

        # the health window prunes request samples; transfers stay for days
        cat.health.prune_samples(now)
        assert cat.health.samples("s3", 0, requests_only=True) == []
        assert len(cat.health.transfers("s3", "write", 0)) == 1
        cat.health.prune_samples(now + TRANSFER_KEEP)
        assert cat.health.transfers("s3", "write", 0) == []
        assert recorded(cat, "s3", "write", now=now).rate is None
        # at most TRANSFER_ROWS per provider and direction, the newest kept
        cat.health.record_transfers("gs", "write", [Transfer(now + i, 1, 0.1)
                                                   for i in range(TRANSFER_ROWS + 5)])
        cat.health.prune_samples(0)
        kept = cat.health.transfers("gs", "write", 0)
        assert len(kept) == TRANSFER_ROWS and kept[0].at == now + 5
    finally:
        cat.close()


def test_a_v4_catalog_gains_the_transfer_columns_and_keeps_its_samples(tmp_path):
    import sqlite3

    from omnifs.catalog.schema import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for step in MIGRATIONS[:4]:
        step(db)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version (version) VALUES (4)")
    db.execute("INSERT INTO health_samples (provider, at, latency, ok, source) "
               "VALUES ('s3', 5.0, 0.03, 1, 'probe')")
    db.execute("COMMIT")
    db.close()
    cat = Catalog(path)
    try:
        assert cat.db.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert cat.health.samples("s3", 0, requests_only=True) == [Sample(5.0, 0.03, True)]
        cat.health.record_transfers("s3", "read", [Transfer(6.0, 10, 0.5)])
        assert cat.health.transfers("s3", "read", 0) == [Transfer(6.0, 10, 0.5)]
    finally:
        cat.close()
