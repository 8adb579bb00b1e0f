"""A report as GitHub-flavoured Markdown.

Tables are GFM tables (alignment from each column). A chart is its data as a
table; when the report is written to a file, :mod:`omnifs.report.output` also
writes the chart as a PNG next to it and passes its name here, and the
Markdown links it above the table. Every string from the data (keys, errors,
names) is escaped, so a key such as ``a|b`` or ``<b>`` reads as itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import Chart, Column, Paragraph, Report, Summary, Table
from .values import format_value, unit_suffix

_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#])")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line)."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def _table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    head = "| " + " | ".join(escape(c.title + unit_suffix(c.unit)) for c in columns) + " |"
    rule = "|" + "|".join("---:" if c.alignment == "right" else ":---" for c in columns) + "|"
    body = ["| " + " | ".join(escape(v) for v in row) + " |" for row in rows]
    return [head, rule, *body]


def table_lines(t: Table) -> list[str]:
    out = [f"**{escape(t.title)}**", ""] if t.title else []
    rows = [[format_value(v, c.unit, in_column=True) for v, c in zip(row, t.columns, strict=True)]
            for row in t.rows]
    out += _table(t.columns, rows)
    if t.note:
        out += ["", f"_{escape(t.note)}_"]
    return out


def chart_table(chart: Chart) -> Table:
    """The chart's data as a table: one row per x, one column per series."""
    xs = chart.x_values()
    columns = (Column(chart.x_label, chart.x_unit),
               *(Column(s.label, chart.y_unit, "right") for s in chart.series))
    by_series = [dict(s.points) for s in chart.series]
    rows = tuple((x, *(values.get(x) for values in by_series)) for x in xs)
    return Table(columns=columns, rows=rows)


def chart_lines(chart: Chart, image: str | None) -> list[str]:
    out = [f"**{escape(chart.title)}**", ""]
    if image is not None:
        out += [f"![{escape(chart.title)}](<{image}>)", ""]
    return out + table_lines(chart_table(chart))


def render(report: Report, images: Sequence[str | None] = ()) -> str:
    """Markdown text; ``images[i]`` is the PNG file name of the i-th chart, if written."""
    pictures = iter(images)
    out = [f"# {escape(report.title)}", ""]
    if report.subtitle:
        out += [escape(report.subtitle), ""]
    for line in report.meta:
        out.append(f"- {escape(line)}")
    if report.meta:
        out.append("")
    for section in report.sections:
        out += [f"## {escape(section.heading)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f"> **Note:** {escape(block.text)}" if block.note
                           else escape(block.text))
            elif isinstance(block, Summary):
                out += [f"- **{escape(f.label)}:** {escape(format_value(f.value, f.unit))}"
                        for f in block.fields]
            elif isinstance(block, Table):
                out += table_lines(block)
            elif isinstance(block, Chart):
                out += chart_lines(block, next(pictures, None))
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
