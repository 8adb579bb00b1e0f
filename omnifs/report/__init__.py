"""One document model for every report omnifs writes (migrate, cost, gov, dr, bench).

A report is data: a :class:`Report` of :class:`Section` s, each a list of
blocks (:class:`Paragraph`, :class:`Summary`, :class:`Table`, :class:`Chart`).
Values stay raw numbers (bytes, seconds, :class:`~decimal.Decimal` money, epoch
times) with a unit beside them; only the renderers format them, all in
:mod:`omnifs.report.values`, so the JSON keeps the exact figures and Markdown
and HTML agree on how they read.

Renderers: :mod:`.markdown` (GFM tables; a chart as its data table plus a PNG
next to the file), :mod:`.html` (one self-contained file, charts as embedded
PNG images, no network, no script) and JSON (:meth:`Report.as_dict`,
:func:`to_json`). :func:`omnifs.report.output.write` picks one and writes it
atomically. Output is deterministic: the same report gives the same bytes;
a report that wants a timestamp carries it as a meta line.

Units (``Column.unit``, ``Field.unit``, ``Chart.y_unit``, ``Chart.x_unit``):
``""`` plain text, ``"count"`` a plain number, ``"bytes"``, ``"bytes/s"``, ``"seconds"`` (a
duration), ``"time"`` (epoch seconds, shown as UTC), ``"percent"`` (0-100),
or a currency code such as ``"USD"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

#: a cell or field: None is "no value" (shown as an em dash)
Value = str | int | float | Decimal | None
Align = Literal["left", "right"]
ChartKind = Literal["line", "bar", "stacked_bar"]
CHART_KINDS = ("line", "bar", "stacked_bar")


def _json_value(v: Value) -> Any:
    """Decimals as strings, so no float rounds money."""
    return str(v) if isinstance(v, Decimal) else v


@dataclass(frozen=True)
class Paragraph:
    text: str
    #: a note stands out (e.g. "this migration has not been run")
    note: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"type": "paragraph", "text": self.text, "note": self.note}


@dataclass(frozen=True)
class Field:
    """One line of a :class:`Summary`."""

    label: str
    value: Value
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "value": _json_value(self.value), "unit": self.unit}


@dataclass(frozen=True)
class Summary:
    """Key/value lines (what the report is about, its headline figures)."""

    fields: tuple[Field, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"type": "summary", "fields": [f.as_dict() for f in self.fields]}


@dataclass(frozen=True)
class Column:
    title: str
    unit: str = ""
    #: None: numbers right, text left
    align: Align | None = None

    @property
    def alignment(self) -> Align:
        if self.align is not None:
            return self.align
        return "left" if self.unit == "" else "right"

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "unit": self.unit, "align": self.alignment}


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    title: str = ""
    #: under the table, e.g. "and 12 more"
    note: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row of {len(row)} values for "
                                 f"{len(self.columns)} columns")

    def as_dict(self) -> dict[str, Any]:
        return {"type": "table", "title": self.title, "note": self.note,
                "columns": [c.as_dict() for c in self.columns],
                "rows": [[_json_value(v) for v in row] for row in self.rows]}


@dataclass(frozen=True)
class Series:
    """One line, or one set of bars: (x, y) points; a bar chart's x are category names."""

    label: str
    points: tuple[tuple[str | float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label,
                "points": [[_json_value(x), _json_value(y)] for x, y in self.points]}


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    y_unit: str = ""
    #: "" for categories (bars) or plain numbers, else a unit such as "seconds"
    x_unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"chart kind {self.kind!r} (one of {', '.join(CHART_KINDS)})")

    def x_values(self) -> list[str | float]:
        """Every x of every series, in first-seen order (bars) or sorted (lines)."""
        seen: dict[str | float, None] = {}
        for s in self.series:
            for x, _ in s.points:
                seen.setdefault(x, None)
        xs = list(seen)
        return xs if self.kind != "line" else sorted(xs, key=float)

    def as_dict(self) -> dict[str, Any]:
        return {"type": "chart", "kind": self.kind, "title": self.title,
                "x_label": self.x_label, "x_unit": self.x_unit, "y_label": self.y_label,
                "y_unit": self.y_unit, "series": [s.as_dict() for s in self.series]}


Block = Paragraph | Summary | Table | Chart


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[Block, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"heading": self.heading, "blocks": [b.as_dict() for b in self.blocks]}


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...] = ()
    subtitle: str = ""
    #: short lines under the title (what, when, which ids)
    meta: tuple[str, ...] = ()
    #: what kind of report, for JSON readers: "migration", "cost", ...
    kind: str = ""

    def charts(self) -> list[Chart]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Chart)]

    def as_dict(self) -> dict[str, Any]:
        return {"format": "omnifs-report", "version": 1, "kind": self.kind,
                "title": self.title, "subtitle": self.subtitle, "meta": list(self.meta),
                "sections": [s.as_dict() for s in self.sections]}


def to_json(report: Report) -> str:
    """The report as JSON text: stable keys, sorted, UTF-8 kept as is."""
    return json.dumps(report.as_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


__all__ = ["CHART_KINDS", "Block", "Chart", "Column", "Field", "Paragraph", "Report", "Section",
           "Series", "Summary", "Table", "Value", "to_json"]
