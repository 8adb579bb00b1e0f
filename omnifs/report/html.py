"""A report as one self-contained HTML file.

Everything is inline: the CSS in a ``<style>``, each chart a PNG in an
``<img src="data:image/png;base64,...">`` (matplotlib, :mod:`.charts`), so the
file opens from a mail attachment or an air-gapped host with no network and no
script. Each chart's data follows it in a ``<details>`` table for readers who
want the numbers. Every string from the data is escaped (keys may hold ``<``
or ``&``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from html import escape

from . import Chart, Paragraph, Report, Summary, Table
from .charts import HEIGHT, WIDTH, png
from .markdown import chart_table
from .values import format_value, unit_suffix

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d2125; margin: 2rem auto; max-width: 62rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d8dde3; }
.subtitle { color: #3d4650; margin-top: 0; }
ul.meta { color: #5b6670; font-size: .9rem; list-style: none; padding: 0; }
.note { background: #fff6dd; border-left: 4px solid #e69f00; padding: .5rem .8rem; }
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dde3; padding: .25rem .6rem; vertical-align: top; }
th { background: #f1f4f7; text-align: left; }
td.num, th.num { text-align: right; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2rem 1.2rem; }
dl.summary dt { color: #5b6670; }
dl.summary dd { margin: 0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; }
.tablenote { color: #5b6670; font-style: italic; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _table(t: Table) -> str:
    classes = [' class="num"' if c.alignment == "right" else "" for c in t.columns]
    out = ["<table>"]
    if t.title:
        out.append(f"<caption>{_e(t.title)}</caption>")
    out.append("<thead><tr>" + "".join(
        f"<th{cls}>{_e(c.title + unit_suffix(c.unit))}</th>"
        for c, cls in zip(t.columns, classes, strict=True)) + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        out.append("<tr>" + "".join(
            f"<td{cls}>{_e(format_value(v, c.unit, in_column=True))}</td>"
            for v, c, cls in zip(row, t.columns, classes, strict=True)) + "</tr>")
    out.append("</tbody></table>")
    if t.note:
        out.append(f'<p class="tablenote">{_e(t.note)}</p>')
    return "\n".join(out)


def _chart(chart: Chart, draw: Callable[[Chart], bytes]) -> str:
    data = base64.b64encode(draw(chart)).decode("ascii")
    return "\n".join([
        "<figure>",
        f'<img src="data:image/png;base64,{data}" alt="{_e(chart.title)}" '
        f'width="{WIDTH}" height="{HEIGHT}">',
        f"<figcaption><details><summary>{_e(chart.title)}: data</summary>",
        _table(chart_table(chart)),
        "</details></figcaption>",
        "</figure>"])


def render(report: Report, draw: Callable[[Chart], bytes] = png) -> str:
    """The HTML document; ``draw`` makes a chart's PNG (matplotlib by default)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(report.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{_e(report.title)}</h1>"]
    if report.subtitle:
        out.append(f'<p class="subtitle">{_e(report.subtitle)}</p>')
    if report.meta:
        out.append('<ul class="meta">' + "".join(f"<li>{_e(m)}</li>" for m in report.meta)
                   + "</ul>")
    for section in report.sections:
        out.append(f"<section>\n<h2>{_e(section.heading)}</h2>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f'<p class="note">{_e(block.text)}</p>' if block.note
                           else f"<p>{_e(block.text)}</p>")
            elif isinstance(block, Summary):
                out.append('<dl class="summary">' + "".join(
                    f"<dt>{_e(f.label)}</dt><dd>{_e(format_value(f.value, f.unit))}</dd>"
                    for f in block.fields) + "</dl>")
            elif isinstance(block, Table):
                out.append(_table(block))
            elif isinstance(block, Chart):
                out.append(_chart(block, draw))
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
