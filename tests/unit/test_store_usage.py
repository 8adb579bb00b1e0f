"""Store usage: the catalog part (``cat.usage``: days, sums, folding into months) and the
UsageLog that flushes a process's cumulative counts as deltas."""

from __future__ import annotations

import datetime
import threading

from omnifs.catalog import Catalog, schema
from omnifs.catalog.access import RETENTION_DAYS, month_of
from omnifs.providers import open_provider
from omnifs.providers.registry import ProviderSettings
from omnifs.usage_log import UsageLog, delta, process_source

TODAY = (datetime.date(2026, 12, 6) - datetime.date(1970, 1, 1)).days


def test_the_migration_makes_the_tables(cat):
    assert schema._v7_cost in schema.MIGRATIONS
    assert cat.usage.row_count() == 0 and cat.cost.moves() == []


def test_add_sums_per_day_and_totals_per_provider_and_op(cat):
    cat.usage.add(TODAY - 1, {("aws", "get"): (3, 1, 300, 0), ("az", "put"): (1, 0, 0, 50)})
    cat.usage.add(TODAY, {("aws", "get"): (2, 0, 200, 0), ("aws", "list"): (1, 0, 0, 0),
                          ("az", "head"): (0, 0, 0, 0)})  # nothing counted: no row
    cat.usage.add(TODAY, {("aws", "get"): (1, 0, 10, 0)})
    assert cat.usage.row_count() == 4
    assert cat.usage.totals(TODAY - 1, TODAY) == {
        "aws": {"get": (6, 1, 510, 0), "list": (1, 0, 0, 0)}, "az": {"put": (1, 0, 0, 50)}}
    assert cat.usage.totals(TODAY, TODAY) == {"aws": {"get": (3, 0, 210, 0),
                                                      "list": (1, 0, 0, 0)}}


def test_old_days_fold_into_their_month(cat):
    first, _ = month_of(TODAY - RETENTION_DAYS - 40)
    old = first  # two days of one month
    cat.usage.add(old, {("aws", "get"): (1, 0, 10, 0)})
    cat.usage.add(old + 1, {("aws", "get"): (2, 0, 20, 0)})
    cat.usage.add(TODAY, {("aws", "get"): (5, 0, 50, 0)})
    while cat.usage.fold(TODAY):
        pass
    assert cat.usage.row_count() == 2
    assert cat.usage.totals(first, first) == {"aws": {"get": (3, 0, 30, 0)}}
    assert cat.usage.totals(0, TODAY)["aws"]["get"] == (8, 0, 80, 0)


def test_two_processes_folding_at_once_move_each_day_once(cat):
    """Folds run under row locks (no catalog-wide lock on PostgreSQL): a second fold waits
    for the rows the first deleted, then finds them gone, so nothing is counted twice."""
    first, _ = month_of(TODAY - RETENTION_DAYS - 40)
    cat.usage.add(first, {("aws", "get"): (1, 0, 10, 0)})
    cat.usage.add(first + 1, {("aws", "get"): (2, 0, 20, 0), ("az", "put"): (1, 0, 0, 5)})
    other = Catalog(cat.target)
    folded: list[int] = []
    with cat.transaction():
        assert cat.usage.fold(TODAY) == 3  # not committed yet: the other waits for it
        waiting = threading.Thread(target=lambda: folded.append(other.usage.fold(TODAY)))
        waiting.start()
        waiting.join(0.5)
    waiting.join(30)
    other.close()
    assert folded == [0]
    assert cat.usage.totals(first, first) == {"aws": {"get": (3, 0, 30, 0)},
                                              "az": {"put": (1, 0, 0, 5)}}


def test_delta_of_cumulative_counts():
    before = {("a", "get"): (1, 0, 10, 0)}
    now = {("a", "get"): (3, 1, 30, 0), ("a", "put"): (1, 0, 0, 5), ("b", "head"): (0, 0, 0, 0)}
    assert delta(now, before) == {("a", "get"): (2, 1, 20, 0), ("a", "put"): (1, 0, 0, 5)}
    assert delta(before, before) == {}


class Counter:
    """A real source: cumulative counts a thread adds to, as the provider layer does."""

    def __init__(self):
        self.counts: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self.lock = threading.Lock()

    def request(self, provider: str, op: str, nbytes: int = 0) -> None:
        with self.lock:
            r, e, i, o = self.counts.get((provider, op), (0, 0, 0, 0))
            self.counts[provider, op] = (r + 1, e, i + nbytes, o)

    def __call__(self):
        with self.lock:
            return dict(self.counts)


def test_usage_log_writes_each_request_once(tmp_path):
    path = tmp_path / "c.db"
    Catalog(path).close()
    source = Counter()
    clock = [TODAY * 86400.0 + 3600]
    log = UsageLog(path, source, 60.0, clock=lambda: clock[0])
    source.request("aws", "get", 100)
    source.request("aws", "get", 100)
    assert log.flush()
    source.request("aws", "get", 5)
    source.request("gcs", "list")
    clock[0] += 86400  # the next day: the next flush counts on the day its interval began
    assert log.flush()
    source.request("aws", "put")
    log.close()  # the last flush
    cat = Catalog(path)
    try:
        assert cat.usage.totals(TODAY, TODAY) == {"aws": {"get": (3, 0, 205, 0)},
                                                  "gcs": {"list": (1, 0, 0, 0)}}
        assert cat.usage.totals(TODAY + 1, TODAY + 1) == {"aws": {"put": (1, 0, 0, 0)}}
    finally:
        cat.close()


def test_usage_log_flushes_from_its_thread_and_accepts_a_catalog(cat):
    source = Counter()
    with UsageLog(cat, source, 0.05) as log:
        source.request("az", "head")
        for _ in range(200):
            if log.flushes and cat.usage.totals(0, 1 << 30):
                break
            threading.Event().wait(0.02)
        assert cat.usage.totals(0, 1 << 30) == {"az": {"head": (1, 0, 0, 0)}}
    assert cat.usage.totals(0, 1 << 30) == {"az": {"head": (1, 0, 0, 0)}}


def test_a_failed_flush_keeps_its_counts(tmp_path):
    path = tmp_path / "sub" / "c.db"
    source = Counter()
    log = UsageLog(tmp_path / "not-a-dir" / "x" / "c.db", source, 60.0)
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    source.request("aws", "get", 1)
    assert not log.flush()
    log._path = path  # the catalog can be written again
    assert log.flush()
    log.close()
    cat = Catalog(path)
    try:
        assert cat.usage.totals(0, 1 << 30) == {"aws": {"get": (1, 0, 1, 0)}}
    finally:
        cat.close()


def test_the_process_source_is_what_the_provider_layer_counted(tmp_path):
    """Every provider opened is metered; the usage log reads those counts."""
    p = open_provider(ProviderSettings(name="counted", uri=f"file://{tmp_path}"))
    before = process_source()().get(("counted", "put"), (0, 0, 0, 0))
    p.write_bytes("k", b"12345")
    after = process_source()()[("counted", "put")]
    assert after[0] == before[0] + 1 and after[3] == before[3] + 5  # bytes_out: written


def test_a_command_records_only_into_an_existing_catalog(tmp_path):
    from omnifs.usage_log import recording

    source = Counter()
    with recording(tmp_path / "none.db", source) as log:
        source.request("aws", "get")
        assert log is None
    assert not (tmp_path / "none.db").exists()  # a copy between two URIs makes no catalog
    Catalog(tmp_path / "c.db").close()
    with recording(tmp_path / "c.db", source) as log:
        source.request("aws", "put")
    cat = Catalog(tmp_path / "c.db")
    try:  # the source counts since the process began: its first delta is all of it
        assert cat.usage.totals(0, 1 << 30) == {"aws": {"get": (1, 0, 0, 0),
                                                        "put": (1, 0, 0, 0)}}
    finally:
        cat.close()
