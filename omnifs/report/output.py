"""Rendering a report in a chosen format, to text or to files written atomically."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from omnifs.errors import InvalidInput
from omnifs.files import atomic_write

from . import Report, to_json

FORMATS = ("md", "html", "json")


def render(report: Report, fmt: str) -> str:
    """The report as text (Markdown here has its charts as data tables only)."""
    if fmt == "md":
        from .markdown import render as md

        return md(report)
    if fmt == "html":
        from .html import render as html

        return html(report)
    if fmt == "json":
        return to_json(report)
    raise InvalidInput(f"report format {fmt!r}: use one of {', '.join(FORMATS)}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chart"


def write(report: Report, fmt: str, path: str | os.PathLike[str]) -> list[Path]:
    """Write the report to ``path``; return every file written (the report last).

    Markdown also gets each chart as ``<stem>-<n>-<title>.png`` beside it, linked.
    One InvalidInput line when the place cannot be written.
    """
    target = Path(path)
    if fmt not in FORMATS:
        raise InvalidInput(f"report format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not target.parent.is_dir():
        raise InvalidInput(f"cannot write report {path}: no such directory {target.parent}")
    written: list[Path] = []
    try:
        if fmt == "md":
            from .charts import png
            from .markdown import render as md

            names = []
            for i, chart in enumerate(report.charts(), 1):
                image = target.with_name(f"{target.stem}-{i}-{_slug(chart.title)}.png")
                atomic_write(image, png(chart))
                written.append(image)
                names.append(image.name)
            text = md(report, names)
        else:
            text = render(report, fmt)
        atomic_write(target, text.encode("utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot write report {path}: {e.strerror or e}") from None
    written.append(target)
    return written


def emit(report: Report, fmt: str, output: str | os.PathLike[str] | None) -> None:
    """What every ``report`` command does: write ``output`` (saying so on stderr), or print
    the report on stdout when none is given."""
    if output:
        write(report, fmt, output)
        print(f"report written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(render(report, fmt))
