"""Access statistics: the catalog part (day buckets, the bound, paged reading) and the
mount's in-memory counters (what counts, batching, flushes off the event loop)."""

from __future__ import annotations

import datetime
import sqlite3
import stat
from dataclasses import dataclass

import pytest
import trio

from omnifs.access_log import AccessLog, NoAccessLog, access_log_for
from omnifs.catalog import Catalog, schema
from omnifs.catalog.access import MAX_ROWS_PER_FILE, MONTHS_KEPT, RETENTION_DAYS, day_of, month_of
from omnifs.config import ConfigError, parse_config

FILE = stat.S_IFREG | 0o644
DAY = 86400
#: 2026-12-06, a day number
TODAY = (datetime.date(2026, 12, 6) - datetime.date(1970, 1, 1)).days


def files(cat: Catalog, n: int) -> list[int]:
    with cat.transaction():
        return [cat.ns.create(1, f"f{i}", FILE, 0, 0).id for i in range(n)]


def test_the_migration_is_the_last_and_makes_both_tables(cat):
    assert schema._v6_access in schema.MIGRATIONS
    assert cat.schema_version == len(schema.MIGRATIONS)
    assert "access_days" in schema._v6_access.__doc__ and cat.access.row_count() == 0


def test_counts_add_up_per_day_with_totals_and_last_times(cat):
    a, b = files(cat, 2)
    cat.access.record([(a, TODAY - 1, 1, 100, 0, 10.0, None), (b, TODAY, 0, 0, 1, None, 20.0)])
    cat.access.record([(a, TODAY, 2, 50, 1, 30.0, 25.0), (a, TODAY, 1, 5, 0, 5.0, None)])
    assert cat.access.days(a) == [(TODAY - 1, 1, 1, 100, 0), (TODAY, 1, 3, 55, 1)]
    got = cat.access.of(a)
    assert (got.reads, got.bytes_read, got.writes) == (4, 155, 1)
    assert cat.access.last(a) == (30.0, 25.0)  # an older time in a later batch moves nothing
    assert cat.access.last(b) == (None, 20.0)
    w = cat.access.window(a, TODAY)
    assert (w.reads, w.bytes_read, w.writes, w.last_read) == (3, 55, 1, 30.0)
    assert cat.access.window(a, TODAY - 5, TODAY).reads == 1
    assert cat.access.of(999) is None and cat.access.last(999) == (None, None)
    assert cat.access.window(999, 0).reads == 0


def test_counts_of_a_gone_inode_are_skipped_and_rows_go_with_the_inode(cat):
    (a,) = files(cat, 1)
    cat.access.record([(a, TODAY, 1, 1, 0, 1.0, None), (a + 1000, TODAY, 1, 1, 0, 1.0, None)])
    assert cat.access.of(a + 1000) is None and cat.access.row_count() == 1
    cat.ns.detach(a)
    cat.ns.delete(a)  # how the mount forgets an unlinked file
    assert cat.access.of(a) is None and cat.access.row_count() == 0


def test_iterate_pages_every_counted_file_with_window_sums(cat):
    ids = files(cat, 25)
    cat.access.record([(i, TODAY - 10, 1, 10, 0, 1.0, None) for i in ids]
                      + [(i, TODAY, 2, 20, 1, 2.0, 3.0) for i in ids[::2]])
    everything = list(cat.access.iterate(page=4))
    assert [f.inode for f in everything] == ids
    assert everything[0].reads == 3 and everything[1].reads == 1
    recent = list(cat.access.iterate(TODAY - 1, page=7))
    assert [f.inode for f in recent] == ids
    assert [(f.reads, f.bytes_read, f.writes) for f in recent[:2]] == [(2, 20, 1), (0, 0, 0)]
    assert recent[1].last_read == 1.0  # last times are the newest whatever the window
    assert [f.reads for f in cat.access.iterate(TODAY - 20, TODAY - 5, page=3)] == [1] * 25


def test_month_of():
    def num(y, m, d):
        return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days

    assert month_of(num(2024, 2, 29)) == (num(2024, 2, 1), 29)
    assert month_of(num(2026, 12, 31)) == (num(2026, 12, 1), 31)
    assert month_of(num(2026, 1, 1)) == (num(2026, 1, 1), 31)
    assert day_of(num(2026, 3, 4) * DAY + DAY - 1) == num(2026, 3, 4)


def _fold_all(cat, today: int) -> None:
    while cat.access.fold(today, limit=97):  # several small transactions
        pass


def test_old_days_fold_into_months_and_keep_every_count(cat):
    (a,) = files(cat, 1)
    span = RETENTION_DAYS + 300
    cat.access.record([(a, TODAY - k, 1, 10, k % 2, 1.0, None) for k in range(span)])
    _fold_all(cat, TODAY)
    rows = cat.access.days(a)
    daily = [r for r in rows if r[1] == 1]
    months = [r for r in rows if r[1] > 1]
    assert len(daily) == RETENTION_DAYS and daily[0][0] == TODAY - RETENTION_DAYS + 1
    assert all(month_of(day) == (day, days) for day, days, *_ in months)
    assert sum(r[2] for r in rows) == span  # nothing lost within the months kept
    assert sum(r[4] for r in rows) == sum(k % 2 for k in range(span))
    assert cat.access.of(a).reads == span
    _fold_all(cat, TODAY)  # again: nothing more to do
    assert cat.access.days(a) == rows


def test_rows_per_file_stay_bounded_however_long_it_is_read(cat):
    a, b = files(cat, 2)
    span = RETENTION_DAYS + 31 * (MONTHS_KEPT + 12)
    cat.access.record([(a, TODAY - k, 1, 1, 0, 1.0, None) for k in range(span)])
    cat.access.record([(b, TODAY - k, 1, 1, 0, 1.0, None) for k in range(0, span, 3)])
    _fold_all(cat, TODAY)
    for ino in (a, b):
        rows = cat.access.days(ino)
        assert len(rows) <= MAX_ROWS_PER_FILE
        assert len([r for r in rows if r[1] > 1]) <= MONTHS_KEPT + 1
    assert cat.access.of(a).reads == span  # the all-time totals keep what was dropped
    # a day later: one more day folds, the rows stay bounded
    cat.access.record([(a, TODAY + 1, 1, 1, 0, 2.0, None)])
    _fold_all(cat, TODAY + 1)
    assert len(cat.access.days(a)) <= MAX_ROWS_PER_FILE


# -- the mount's counters ------------------------------------------------------------


@dataclass(eq=False)
class FakeHandle:
    ino: int
    read_counted: bool = False


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_one_read_per_handle_bytes_per_call_writes_per_release(tmp_path):
    clock = Clock(TODAY * DAY + 100)
    log = AccessLog(tmp_path / "c.db", clock=clock)
    h1, h2, h3 = FakeHandle(5), FakeHandle(5), FakeHandle(6)
    log.read(h1, 0)  # at the end of the file: nothing read, nothing counted
    assert log.pending() == 0
    for _ in range(3):
        log.read(h1, 10)
    clock.t += 1
    log.read(h2, 7)
    log.opened_cached(h3)
    log.read(h3, 4)  # the kernel's cache had no page: its read was counted at open
    log.wrote(5)
    batch = sorted(log.take())
    assert batch == [(5, TODAY, 2, 37, 1, clock.t, clock.t), (6, TODAY, 1, 4, 0, clock.t, None)]
    assert log.pending() == 0 and log.take() == []


def test_a_flush_writes_the_batch_in_a_worker_and_on_its_interval_day(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    ids = files(cat, 300)
    clock = Clock(TODAY * DAY + DAY - 5)  # 5 s before midnight
    log = AccessLog(tmp_path / "c.db", interval=10, clock=clock)
    assert log._next_flush() == pytest.approx(5.001)  # the flush runs at midnight
    for i in ids:
        log.read(FakeHandle(i), 100)

    async def main():
        clock.t += 6  # past midnight: the batch still counts on the day its interval began
        await log.flush()
        log.read(FakeHandle(ids[0]), 1)
        await log.close()

    trio.run(main)
    assert log.flushes == 2
    assert cat.access.days(ids[0]) == [(TODAY, 1, 1, 100, 0), (TODAY + 1, 1, 1, 1, 0)]
    assert sum(f.bytes_read for f in cat.access.iterate()) == 300 * 100 + 1
    cat.close()


def test_a_locked_catalog_never_blocks_the_event_loop(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    (a,) = files(cat, 1)
    log = AccessLog(tmp_path / "c.db", clock=Clock(TODAY * DAY))
    log.read(FakeHandle(a), 3)
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = []

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.flush)
            for _ in range(5):
                await trio.sleep(0.05)
                ticks.append(log.flushes)
            other.execute("COMMIT")

    trio.run(main)
    assert ticks == [0] * 5 and log.flushes == 1
    assert cat.access.of(a).bytes_read == 3
    other.close()
    cat.close()


def test_a_failed_flush_keeps_its_counts_for_the_next(tmp_path):
    bad = tmp_path / "dir.db"
    bad.mkdir()  # not a database: the flush fails
    log = AccessLog(bad, clock=Clock(TODAY * DAY + 50))
    h = FakeHandle(2)
    log.read(h, 8)
    log.wrote(2)
    trio.run(log.flush)
    assert log.flushes == 0
    log.read(FakeHandle(2), 2)
    assert sorted(log.take()) == [(2, TODAY, 2, 10, 1, TODAY * DAY + 50, TODAY * DAY + 50)]


def test_recording_off_counts_nothing_and_config_is_checked(tmp_path):
    off = parse_config({"cost": {"access_stats": False}})
    log = access_log_for(off, tmp_path / "c.db")
    assert isinstance(log, NoAccessLog) and not log.enabled
    log.read(FakeHandle(1), 5)
    log.wrote(1)
    trio.run(log.close)
    assert log.pending() == 0 and not (tmp_path / "c.db").exists()
    on = parse_config({"cost": {"access_stats_interval": 2}})
    log = access_log_for(on, tmp_path / "c.db")
    assert isinstance(log, AccessLog) and log.interval == 2.0
    assert parse_config({}).access_stats is True
    for bad, says in (({"access_stats": "no"}, "[cost] access_stats: expected true or false"),
                      ({"access_stats_interval": 0}, "between 0 and 3600"),
                      ({"acces_stats": True}, "did you mean 'access_stats'")):
        with pytest.raises(ConfigError) as e:
            parse_config({"cost": bad})
        assert says in str(e.value) and "\n" not in str(e.value)
