"""Charts as PNG images, drawn with matplotlib's Agg backend (headless, no display, no pyplot).

Each chart is its own :class:`~matplotlib.figure.Figure` on an Agg canvas, so
nothing global (pyplot's current figure, the selected backend) is touched and
threads or repeated reports do not interfere. The PNG carries no timestamp or
version text: the same chart gives the same bytes.
"""

from __future__ import annotations

import io

from . import Chart
from .values import axis_value, unit_suffix

#: pixels of every chart (inches x DPI), which the HTML renderer gives its <img>
WIDTH, HEIGHT, DPI = 800, 400, 100
#: colours that stay apart for the colour-blind (Okabe and Ito)
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")


def png(chart: Chart) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label + unit_suffix(chart.x_unit))
    ax.set_ylabel(chart.y_label + unit_suffix(chart.y_unit))
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if chart.kind == "line":
        _lines(ax, chart)
        if chart.x_unit:
            ax.xaxis.set_major_formatter(
                FuncFormatter(lambda v, _pos: axis_value(v, chart.x_unit)))
    else:
        _bars(ax, chart)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: axis_value(v, chart.y_unit)))
    if len(chart.series) > 1:
        ax.legend(frameon=False)
    if not any(s.points for s in chart.series):
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                color="#777777")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _lines(ax, chart: Chart) -> None:
    for i, s in enumerate(chart.series):
        xs = [float(x) for x, _ in s.points]
        ys = [float(y) for _, y in s.points]
        ax.plot(xs, ys, label=s.label, color=COLOURS[i % len(COLOURS)], linewidth=1.8,
                marker="o" if len(xs) <= 30 else None, markersize=3)
    ax.set_ylim(bottom=0)


def _bars(ax, chart: Chart) -> None:
    cats = [str(x) for x in chart.x_values()]
    positions = range(len(cats))
    n = len(chart.series)
    stacked = chart.kind == "stacked_bar"
    width = 0.8 if stacked else 0.8 / max(n, 1)
    bottom = [0.0] * len(cats)
    for i, s in enumerate(chart.series):
        by_cat = {str(x): float(y) for x, y in s.points}
        heights = [by_cat.get(c, 0.0) for c in cats]
        xs = list(positions) if stacked else [p - 0.4 + width * (i + 0.5) for p in positions]
        ax.bar(xs, heights, width=width, bottom=bottom if stacked else None, label=s.label,
               color=COLOURS[i % len(COLOURS)])
        if stacked:
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(list(positions), cats)
