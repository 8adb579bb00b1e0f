"""``cost report``, ``cost recommend`` and ``cost history`` as report documents.

Rendered by omnifs.report (Markdown, one-file HTML with charts, JSON); money stays
Decimal, bytes and counts stay numbers, so the JSON keeps exact figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from omnifs.policy.recommend import Recommendation, Totals

from ..catalog import CostMove
from ..report import Chart, Column, Field, Paragraph, Report, Section, Series, Summary, Table
from .bill import READ_OPS, Bill, Line

GROUPINGS = ("provider", "tier", "prefix")
_COMPONENTS = (("storage", "storage"), ("requests", "request_cost"), ("egress", "egress"),
               ("retrieval", "retrieval"))


def _line_columns(first: Sequence[Column], cur: str) -> tuple[Column, ...]:
    return (*first, Column("objects", "count"), Column("stored", "bytes"),
            Column("storage", cur), Column("requests", "count"), Column("requests", cur),
            Column("egress", "bytes"), Column("egress", cur), Column("retrieved", "bytes"),
            Column("retrieval", cur), Column("total", cur))


def _line_row(first: Sequence[str], line: Line, *, per_store: bool = True) -> tuple:
    counted = (line.requests, line.request_cost, line.egress_bytes, line.egress) if per_store \
        else (None, None, None, None)
    return (*first, line.objects, line.bytes, line.storage, counted[0], counted[1], counted[2],
            counted[3], line.retrieval_bytes, line.retrieval, line.total)


def _chart(title: str, groups: Sequence[tuple[str, Line]], cur: str) -> Chart:
    series = tuple(Series(label, tuple((g, float(getattr(line, attr))) for g, line in groups))
                   for label, attr in _COMPONENTS)
    return Chart("stacked_bar", title, "", "cost this month", series, y_unit=cur)


def bill_report(bill: Bill, by: str = "provider") -> Report:
    """The month's bill, grouped ``by`` provider, tier or prefix first (the others follow)."""
    cur = bill.currency
    total = bill.total()
    summary = Summary((
        Field("month", bill.month.label),
        Field("days counted", bill.month.days_so_far, "count"),
        Field("stored", total.bytes, "bytes"), Field("objects", total.objects, "count"),
        Field("storage (a whole month)", total.storage, cur),
        Field("requests so far", total.requests, "count"),
        Field("requests", total.request_cost, cur),
        Field("egress so far", total.egress_bytes, "bytes"), Field("egress", total.egress, cur),
        Field("retrieval so far", total.retrieval_bytes, "bytes"),
        Field("retrieval", total.retrieval, cur),
        Field("total", total.total, cur)))
    stores = list(bill.by_store().items())
    tiers = [(f"{s} {t}", line) for (s, t), line in sorted(bill.tiers.items())]
    prefixes = bill.top_prefixes()
    rest = len(bill.prefixes) - len(prefixes)
    sections = {
        "provider": Section("Per store", (
            Table(_line_columns((Column("store"),), cur),
                  tuple(_line_row((s,), line) for s, line in stores)),
            _chart("Cost per store", stores, cur))),
        "tier": Section("Per store and tier", (
            Table(_line_columns((Column("store"), Column("tier")), cur),
                  tuple(_line_row((s, t), line) for (s, t), line in sorted(bill.tiers.items()))),
            _chart("Cost per store and tier", tiers, cur))),
        "prefix": Section("Top prefixes", (
            Paragraph("Requests and egress are counted per store, not per path: "
                      "the prefixes show storage and retrieval."),
            Table(_line_columns((Column("prefix"),), cur),
                  tuple(_line_row((p,), line, per_store=False) for p, line in prefixes),
                  note=f"and {rest} more" if rest > 0 else ""),
            _chart("Cost per prefix", prefixes, cur))),
    }
    order = [by] + [g for g in GROUPINGS if g != by]
    usage_rows = tuple((store, op, *counts) for store, ops in sorted(bill.usage.items())
                       for op, counts in sorted(ops.items()))
    inputs = Section("Requests counted", (
        Paragraph(f"What the omnifs processes asked of each store since {bill.month.label}-01 "
                  f"({', '.join(READ_OPS)} priced as reads; downloads as egress)."),
        Table((Column("store"), Column("op"), Column("requests", "count"),
               Column("errors", "count"), Column("bytes in", "bytes"),
               Column("bytes out", "bytes")), usage_rows),))
    notes = []
    if bill.unpriced:
        notes.append(Paragraph("Not priced (a tier the price table lacks): "
                               + ", ".join(bill.unpriced), note=True))
    return Report(
        "omnifs cost report", subtitle=f"estimated cost of {bill.month.label}", kind="cost",
        meta=(f"storage: a whole month of what is stored now; requests, egress and retrieval: "
              f"{bill.month.days_so_far} day(s) of {bill.month.label} so far",),
        sections=(Section("Summary", (summary, *notes)), *(sections[g] for g in order), inputs))


def _days(d: Decimal) -> Decimal:
    return d.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def recommend_report(recs: Iterable[Recommendation], totals: Totals, currency: str,
                     *, horizon_note: str = "") -> Report:
    """Every recommendation (best saving first), then the total."""
    rows = tuple((r.kind, r.path, r.store or "—", r.source, r.target, r.saving_per_month,
                  r.one_time, _days(r.break_even_days), r.latency)
                 for r in sorted(recs, key=lambda r: (-r.saving_per_month, r.path)))
    table = Table((Column("kind"), Column("path"), Column("store"), Column("from"),
                   Column("to"), Column("saving/month", currency), Column("one-time", currency),
                   Column("break-even (days)", "count"), Column("read latency after")), rows)
    total = Summary((Field("recommendations", totals.recommendations, "count"),
                     *(Field(f"{kind} moves", n, "count")
                       for kind, n in sorted(totals.by_kind.items())),
                     Field("saving per month", totals.saving_per_month, currency),
                     Field("one-time cost", totals.one_time, currency)))
    more = totals.recommendations - len(rows)
    if more > 0:
        table = replace(table, note=f"the {len(rows)} best by saving; {more} more in the total")
    blocks = (table,) if rows else (Paragraph("Nothing to move: every file is where it costs "
                                              "least within the policies' horizon."),)
    return Report("omnifs cost recommend", kind="cost-recommend",
                  meta=(horizon_note,) if horizon_note else (),
                  sections=(Section("Recommendations", blocks), Section("Total", (total,))))


def history_report(moves: Sequence[CostMove], currency: str = "USD") -> Report:
    rows = tuple((m.id, m.time, m.kind, m.path, m.store or "—", m.source, m.target,
                  m.saving_per_month, m.one_time, m.state, m.detail or "") for m in moves)
    table = Table((Column("id", "count"), Column("queued", "time"), Column("kind"),
                   Column("path"), Column("store"), Column("from"), Column("to"),
                   Column("saving/month", currency), Column("one-time", currency),
                   Column("state"), Column("detail")), rows)
    blocks = (table,) if rows else (Paragraph("No move made yet (`omnifs cost apply`)."),)
    return Report("omnifs cost history", kind="cost-history",
                  sections=(Section("Moves", blocks),))
