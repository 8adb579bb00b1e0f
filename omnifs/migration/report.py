"""A migration's report: what the plan said, what the run did, and what it cost.

:func:`migration_report` reads the plan file's plan and, when the migration was
run, its record in the catalog (``cat.migrations``: the run, its items a page
at a time, the usage counters) and builds an :class:`omnifs.report.Report`:
summary, objects and bytes per action and state, a per-prefix table, failures,
verification, the estimated cost beside the cost the counters add up to, and
charts of bytes copied and throughput over time and of cost per store. A
migration not run yet gets the plan's figures and a note saying so.

Memory stays bounded in the number of prefixes and chart buckets, except for one
(time, size) pair per copied object for the progress charts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnifs.catalog.migrations import Migration, Migrations, migration_id
from omnifs.prices import PriceOverride
from omnifs.providers import InvalidInput, ProviderSettings
from omnifs.report import (
    Chart,
    Column,
    Field,
    Paragraph,
    Report,
    Section,
    Series,
    Summary,
    Table,
)

from .costing import usage_cost
from .plan import ACTIONS
from .planfile import MigrationPlan, Place

#: rows of the failure and verification tables before "and N more"
CAP = 50
#: prefixes shown, the largest by bytes first
PREFIX_ROWS = 30
#: intervals of the progress charts
BUCKETS = 40
TOP = "(top level)"
#: the actions that copy bytes to the destination
WRITES = ("copy", "overwrite")
COST_ITEMS = (("source_egress", "source egress"), ("source_requests", "source requests"),
              ("destination_requests", "destination requests"), ("retrieval", "retrieval"),
              ("early_deletion", "early deletion"),
              ("destination_storage_per_month", "destination storage per month"),
              ("total", "total"))


@dataclass
class _Item:
    """What the report needs of one entry (a plan entry, or a catalog item)."""

    key: str
    action: str
    size: int
    state: str | None = None
    attempts: int = 0
    error: str | None = None
    verified: str | None = None
    source_deleted: bool = False
    finished_at: float | None = None


@dataclass
class _Tally:
    """One pass over the items, in key order."""

    prefixes: dict[int, dict[str, list[int]]] = field(default_factory=lambda: {1: {}, 2: {}})
    failures: list[_Item] = field(default_factory=list)
    failed: int = 0
    verified: dict[str, int] = field(default_factory=dict)
    bad: list[_Item] = field(default_factory=list)
    source_deleted: int = 0
    #: (finished_at, size) of every copied object
    done: list[tuple[float, int]] = field(default_factory=list)
    #: bytes the destination holds for this migration: copied plus skipped
    stored: int = 0

    def add(self, it: _Item) -> None:
        if it.action != "skip":
            parts = it.key.split("/")
            for depth in (1, 2):
                name = TOP if len(parts) == 1 else "/".join(parts[:min(depth, len(parts) - 1)])
                row = self.prefixes[depth].setdefault(name if name == TOP else name + "/",
                                                      [0, 0, 0, 0])
                row[0] += 1
                row[1] += it.size
                row[2] += it.state == "done"
                row[3] += it.state == "failed"
        if it.state == "failed":
            self.failed += 1
            if len(self.failures) < CAP:
                self.failures.append(it)
        if it.verified is not None:
            self.verified[it.verified] = self.verified.get(it.verified, 0) + 1
            if it.verified != "ok" and len(self.bad) < CAP:
                self.bad.append(it)
        self.source_deleted += it.source_deleted
        if it.action in WRITES and it.state == "done":
            self.stored += it.size
            if it.finished_at is not None:
                self.done.append((it.finished_at, it.size))
        elif it.action == "skip":
            self.stored += it.size


def _tally(items: Iterable[_Item]) -> _Tally:
    t = _Tally()
    for it in items:
        t.add(it)
    return t


def migration_report(plan: MigrationPlan, runs: Migrations | None, src: ProviderSettings,
                     dst: ProviderSettings, overrides: dict[str, PriceOverride]) -> Report:
    """The report of ``plan``'s migration; ``runs`` None (no catalog) reports the plan only."""
    checksum = plan.checksum()
    mid = migration_id(checksum)
    run = runs.get(mid) if runs is not None else None
    if run is not None and runs is not None:
        items: Iterable[_Item] = (
            _Item(i.key, i.action, i.size, i.state, i.attempts, i.error, i.verified,
                  i.source_deleted, i.finished_at) for i in runs.items(mid))
        counts = runs.counts(mid)
        usage = runs.usage(mid)
    else:
        items = (_Item(e.key, e.action, e.size) for e in plan.entries)
        counts, usage = {}, {}
    t = _tally(items)
    sections = [_summary(plan, run, counts, t)]
    sections += _progress(run, t)
    sections.append(_prefixes(t, run is not None))
    if run is not None:
        sections.append(_failures(t))
        if t.verified:
            sections.append(_verification(t))
    sections.append(_cost(plan, run, usage, t, src, dst, overrides))
    return Report(
        title=f"Migration report: {plan.src.given} → {plan.dst.given}",
        subtitle=f"{plan.mode} from {_where(plan.src)} to {_where(plan.dst)}",
        meta=(f"migration {mid}", f"plan {checksum}", f"planned {plan.created}"),
        sections=tuple(sections), kind="migration")


def _where(place: Place) -> str:
    return f"{place.uri.rstrip('/')}/{place.key}" if place.key else place.uri


def _elapsed(run: Migration | None, t: _Tally) -> float | None:
    if run is None or run.started_at is None:
        return None
    end = run.finished_at or max((f for f, _ in t.done), default=None)
    return None if end is None else max(0.0, end - run.started_at)


def _summary(plan: MigrationPlan, run: Migration | None,
             counts: dict[str, dict[str, dict[str, int]]], t: _Tally) -> Section:
    s = plan.summary
    copied = sum(size for _, size in t.done)
    elapsed = _elapsed(run, t)
    fields = [Field("Source", plan.src.given), Field("Destination", plan.dst.given),
              Field("Mode", plan.mode + (" with --delete" if plan.delete else "")),
              Field("State", run.state if run is not None else "not run")]
    if run is not None:
        fields += [Field("Started", run.started_at, "time"),
                   Field("Finished", run.finished_at, "time"),
                   Field("Elapsed", elapsed, "seconds"),
                   Field("Copied", copied, "bytes"),
                   Field("Mean rate", copied / elapsed if elapsed else None, "bytes/s"),
                   Field("Failed objects", t.failed)]
    blocks: list[Any] = []
    if run is None:
        blocks.append(Paragraph(
            "This migration has not been run: the figures are the plan's (what it would do "
            "and what it is estimated to cost). Nothing has been copied and nothing spent.",
            note=True))
    blocks.append(Summary(tuple(fields)))
    rows = []
    for action in ACTIONS:
        by_state = counts.get(action, {})

        def n(state: str, what: str, by_state=by_state) -> int | None:
            return by_state.get(state, {}).get(what, 0) if run is not None else None

        rows.append((action, s[action]["objects"], s[action]["bytes"], n("done", "objects"),
                     n("done", "bytes"), n("failed", "objects"), n("failed", "bytes"),
                     n("pending", "objects")))
    if plan.mode == "move":
        ds = s["delete_source"]
        rows.append(("delete source", ds["objects"], ds["bytes"],
                     t.source_deleted if run is not None else None, None, None, None, None))
    blocks.append(Table(
        title="Objects and bytes per action",
        columns=(Column("action"), Column("planned", "count"), Column("planned bytes", "bytes"),
                 Column("done", "count"), Column("done bytes", "bytes"),
                 Column("failed", "count"), Column("failed bytes", "bytes"),
                 Column("pending", "count")),
        rows=tuple(rows)))
    return Section("Summary", tuple(blocks))


def _progress(run: Migration | None, t: _Tally) -> list[Section]:
    if run is None or not t.done:
        return []
    done = sorted(t.done)
    start = run.started_at if run.started_at is not None else done[0][0]
    start = min(start, done[0][0])
    span = max(done[-1][0] - start, 1e-6)
    width = span / BUCKETS
    per = [0] * BUCKETS
    for when, size in done:
        per[min(BUCKETS - 1, int((when - start) / width))] += size
    cumulative, total = [(0.0, 0.0)], 0
    for i, n in enumerate(per):
        total += n
        cumulative.append(((i + 1) * width, float(total)))
    rate = [((i + 0.5) * width, n / width) for i, n in enumerate(per)]
    return [Section("Progress", (
        Chart("line", "Bytes copied over time", "time since start", "bytes copied",
              (Series("copied", tuple(cumulative)),), y_unit="bytes", x_unit="seconds"),
        Chart("line", "Throughput over time", "time since start", "throughput",
              (Series(f"per {width:.3g} s", tuple(rate)),), y_unit="bytes/s",
              x_unit="seconds")))]


def _prefixes(t: _Tally, ran: bool) -> Section:
    one, two = t.prefixes[1], t.prefixes[2]
    table = two if len(one) == 1 and len(two) > 1 else one
    ordered = sorted(table.items(), key=lambda kv: (-kv[1][1], kv[0]))
    rows = tuple((name, o, b, d if ran else None, f if ran else None)
                 for name, (o, b, d, f) in ordered[:PREFIX_ROWS])
    more = len(ordered) - len(rows)
    if not ordered:
        return Section("Per prefix", (Paragraph("The plan moves no object."),))
    return Section("Per prefix", (Table(
        columns=(Column("prefix"), Column("objects", "count"), Column("bytes", "bytes"),
                 Column("done", "count"), Column("failed", "count")),
        rows=rows, note=f"and {more} more prefixes" if more else ""),))


def _failures(t: _Tally) -> Section:
    if not t.failed:
        return Section("Failures", (Paragraph("No object failed."),))
    more = t.failed - len(t.failures)
    return Section("Failures", (Table(
        columns=(Column("key"), Column("action"), Column("attempts", "count"),
                 Column("error")),
        rows=tuple((i.key, i.action, i.attempts, i.error) for i in t.failures),
        note=f"and {more} more" if more else ""),))


def _verification(t: _Tally) -> Section:
    checked = sum(t.verified.values())
    fields = [Field("Checked", checked)] + [Field(v, t.verified.get(v, 0))
                                            for v in ("ok", "mismatch", "missing")]
    blocks: list[Any] = [Summary(tuple(fields))]
    if t.bad:
        bad = sum(n for v, n in t.verified.items() if v != "ok")
        more = bad - len(t.bad)
        blocks.append(Table(columns=(Column("key"), Column("verified")),
                            rows=tuple((i.key, i.verified) for i in t.bad),
                            note=f"and {more} more" if more else ""))
    return Section("Verification", tuple(blocks))


def _cost(plan: MigrationPlan, run: Migration | None, usage: dict[str, dict[str, float]],
          t: _Tally, src: ProviderSettings, dst: ProviderSettings,
          overrides: dict[str, PriceOverride]) -> Section:
    est = plan.estimate
    blocks: list[Any] = []
    actual: dict[str, Any] | None = None
    if run is not None:
        try:
            actual = usage_cost(usage, src, dst, overrides, bytes_stored=t.stored).as_dict()
        except InvalidInput as e:
            blocks.append(Paragraph(f"No actual cost: {e}", note=True))
    if est is None:
        blocks.append(Paragraph("The plan has no cost estimate (its stores could not be "
                                "priced when it was made).", note=True))
    currency = str((est or actual or {}).get("currency", "USD"))
    if est is None and actual is None:
        return Section("Cost", tuple(blocks))

    def amount(d: dict[str, Any] | None, key: str) -> Decimal | None:
        return None if d is None else Decimal(str(d[key]))

    blocks.append(Table(
        columns=(Column("item"), Column("estimated", currency), Column("actual", currency)),
        rows=tuple((label, amount(est, key), amount(actual, key)) for key, label in COST_ITEMS)))
    provenance = (est or actual or {}).get("provenance") or []
    if provenance:
        blocks.append(Paragraph(f"Prices: source {provenance[0]}; destination {provenance[-1]}."))
    blocks.append(Paragraph(
        "The actual cost prices the requests and bytes the run counted, at the same prices; "
        "it leaves out early deletion, which the run does not count." if run is not None
        else "No actual cost yet: the migration has not been run."))
    stores = [(f"source ({plan.src.provider})", ("source_egress", "source_requests",
                                                  "retrieval")),
              (f"destination ({plan.dst.provider})", ("destination_requests",
                                                       "destination_storage_per_month"))]
    if any(amount(d, "early_deletion") for d in (est, actual) if d is not None):
        stores.append(("early deletion", ("early_deletion",)))
    series = [Series(label, tuple((name, float(sum(amount(d, k) or 0 for k in keys)))
                                  for name, keys in stores))
              for label, d in (("estimated", est), ("actual", actual)) if d is not None]
    blocks.append(Chart("bar", "Cost per store", "store", "cost", tuple(series),
                        y_unit=currency))
    if usage:
        blocks.append(Table(
            title="What the run counted",
            columns=(Column("side"), Column("kind"), Column("requests", "count"),
                     Column("bytes", "bytes")),
            rows=tuple((side, kind, *((None, int(n)) if kind.startswith("bytes")
                                      else (int(n), None)))
                       for side in sorted(usage) for kind, n in sorted(usage[side].items()))))
    return Section("Cost", tuple(blocks))
