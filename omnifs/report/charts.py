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
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
#: colours that stay apart for the colour-blind (Okabe and Ito)
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")


def _scale(unit: str, largest: float) -> tuple[float, str] | None:
    """A divisor and a unit name for an axis in ``unit``, so ticks fall on round numbers of
    KiB, MiB, ... or minutes and hours (not at 953.7 MiB); None: plain ticks."""
    if unit in ("bytes", "bytes/s"):
        k = 0
        while largest >= 1024 ** (k + 1) and k < len(_BYTE_UNITS) - 1:
            k += 1
        return 1024.0 ** k, _BYTE_UNITS[k] + ("/s" if unit == "bytes/s" else "")
    if unit == "seconds":
        for size, name in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
            if largest >= 2 * size:
                return size, name
        return 1.0, "s"
    return None


def _axis(axis, unit: str, values: list[float]):
    """Scale ``axis`` for ``unit``; returns the divisor to apply to the plotted values."""
    from matplotlib.ticker import FuncFormatter

    scale = _scale(unit, max(values, default=0.0))
    if scale is None:
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: axis_value(v, unit)))
        return 1.0
    divisor, name = scale
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.4g} {name}"))
    return divisor


def png(chart: Chart) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
    ys = [float(y) for s in chart.series for _, y in s.points]
    if chart.kind == "stacked_bar":
        totals: dict[str, float] = {}
        for s in chart.series:
            for x, y in s.points:
                totals[str(x)] = totals.get(str(x), 0.0) + float(y)
        ys = list(totals.values())
    y_div = _axis(ax.yaxis, chart.y_unit, ys)
    if chart.kind == "line":
        x_div = 1.0
        if chart.x_unit:
            x_div = _axis(ax.xaxis, chart.x_unit,
                          [float(x) for s in chart.series for x, _ in s.points])
        _lines(ax, chart, x_div, y_div)
    else:
        _bars(ax, chart, y_div)
    if len(chart.series) > 1:
        ax.legend(frameon=False)
    if not ys:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                color="#777777")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _lines(ax, chart: Chart, x_div: float, y_div: float) -> None:
    for i, s in enumerate(chart.series):
        xs = [float(x) / x_div for x, _ in s.points]
        ys = [float(y) / y_div for _, y in s.points]
        ax.plot(xs, ys, label=s.label, color=COLOURS[i % len(COLOURS)], linewidth=1.8,
                marker="o" if len(xs) <= 30 else None, markersize=3)
    _from_zero(ax)


def _bars(ax, chart: Chart, y_div: float) -> None:
    cats = [str(x) for x in chart.x_values()]
    positions = range(len(cats))
    n = len(chart.series)
    stacked = chart.kind == "stacked_bar"
    width = 0.8 if stacked else 0.8 / max(n, 1)
    bottom = [0.0] * len(cats)
    for i, s in enumerate(chart.series):
        by_cat = {str(x): float(y) / y_div for x, y in s.points}
        heights = [by_cat.get(c, 0.0) for c in cats]
        xs = list(positions) if stacked else [p - 0.4 + width * (i + 0.5) for p in positions]
        ax.bar(xs, heights, width=width, bottom=bottom if stacked else None, label=s.label,
               color=COLOURS[i % len(COLOURS)])
        if stacked:
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(list(positions), cats)
    _from_zero(ax)


def _from_zero(ax) -> None:
    """The y axis starts at 0 (all values here are amounts), and shows 0..1 when all are 0."""
    top = ax.get_ylim()[1]
    ax.set_ylim(bottom=0, top=top if top > 0 else 1)
