"""The provider compatibility matrix: declared cells, probe findings overlaid, rendered.

One :class:`Column` per store: the cells its provider class declares
(``providers/compat_cells.py``), overlaid with what ``--probe`` found
(``providers/probe.py``, :func:`~omnifs.providers.capabilities.overlay`), the
server and API version the store reported, the SDK versions in use and the
known behaviour differences of the product found (``QUIRKS``). Rendered as
Markdown through the shared report model (:mod:`omnifs.report`) or as JSON
of the matrix itself (:func:`as_json`). The output depends only on the
servers and packages, never on time or random keys, so ``docs/compat.md``
can be checked for freshness (``tests/integration/test_compat_docs.py``).
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass, field

from omnifs.providers import Provider
from omnifs.providers.capabilities import (
    CONFIG,
    FEATURE_IDS,
    QUIRKS,
    TITLES,
    Cell,
    Quirk,
    disabled_cell,
    disabled_features,
    overlay,
    quirks_for,
)
from omnifs.providers.probe import ProbeReport
from omnifs.providers.registry import provider_class
from omnifs.report import Block, Paragraph, Report, Section, Table
from omnifs.report import Column as Col
from omnifs.report.output import render
from omnifs.units import human_bytes

#: the SDK distributions each scheme's provider talks through
SDKS: dict[str, tuple[str, ...]] = {
    "s3": ("boto3", "botocore"), "minio": ("minio",), "gs": ("google-cloud-storage",),
    "az": ("azure-storage-blob",), "file": (),
}
FORMATS = ("md", "json")
_SHORT = {"supported": "yes", "unsupported": "no", "degraded": "partial"}


@dataclass
class StoreColumn:
    """One store of the matrix."""

    name: str
    scheme: str
    store: str
    cells: dict[str, Cell]
    probe: ProbeReport | None = None
    sdks: tuple[str, ...] = ()
    quirks: tuple[Quirk, ...] = field(default=())


def sdk_versions(scheme: str) -> tuple[str, ...]:
    out = []
    for dist in SDKS.get(scheme, ()):
        try:
            out.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return tuple(out)


def declared(name: str, scheme: str, disabled: tuple[str, ...] = ()) -> StoreColumn:
    """A column of what ``scheme``'s provider class declares; ``disabled``: the names the
    provider's ``disable`` key turns off (their cells say "disabled by config")."""
    table = provider_class(scheme).compat
    if table is None:
        raise ValueError(f"the {scheme}:// provider declares no compatibility cells")
    col = StoreColumn(name, scheme, table.store, dict(table), sdks=sdk_versions(scheme))
    _disable(col, disabled)
    return col


def probed(name: str, provider: Provider, report: ProbeReport,
           disabled: tuple[str, ...] = ()) -> StoreColumn:
    """A column of ``provider``'s declared cells with ``report``'s findings overlaid."""
    col = declared(name, provider.location.scheme)
    emulator = report.product if report.emulator else None
    for finding in report.findings:
        col.cells[finding.feature] = overlay(col.cells[finding.feature], finding, emulator)
    col.probe = report
    col.quirks = quirks_for(report.product)
    _disable(col, disabled)
    return col


def _disable(col: StoreColumn, disabled: tuple[str, ...]) -> None:
    for feature in disabled_features(disabled):
        col.cells[feature] = disabled_cell(feature)


def short(cell: Cell) -> str:
    """A cell as the overview shows it: ``yes (probed)``, ``no (declared)``,
    ``no (disabled by config)``."""
    if cell.source == CONFIG:
        return f"{_SHORT[cell.status]} (disabled by config)"
    return f"{_SHORT[cell.status]} ({cell.source})"


def _limits(cell: Cell) -> str:
    return ", ".join(f"{k}={human_bytes(v) if k.endswith('_bytes') else v}"
                     for k, v in cell.limits)


def _server_line(col: StoreColumn) -> str:
    if col.probe is None:
        return "not probed (declared cells only)"
    p = col.probe
    who = p.server or ("no server (a local directory)" if col.scheme == "file"
                       else "did not say")
    parts = [f"server: {who}"]
    if p.product:
        parts.append(f"{p.product}{' (emulator)' if p.emulator else ''}")
    if p.api_version:
        parts.append(f"API version {p.api_version}")
    parts.append(f"{p.requests} probe requests")
    return "; ".join(parts)


def report(columns: list[StoreColumn], *, intro: tuple[str, ...] = (),
           all_quirks: bool = False) -> Report:
    """The matrix as a report: the overview, one section per store, the known differences."""
    overview = Table(
        columns=(Col("feature"), *(Col(c.name) for c in columns)),
        rows=tuple((TITLES[f], *(short(c.cells[f]) for c in columns)) for f in FEATURE_IDS))
    sections = [Section("Overview", (*(Paragraph(t) for t in intro), overview))]
    for c in columns:
        rows = tuple((TITLES[f], cell.status, cell.source, cell.fallback or "-",
                      cell.notes or "-", _limits(cell) or "-")
                     for f, cell in ((f, c.cells[f]) for f in FEATURE_IDS))
        blocks: list[Block] = [Paragraph(_server_line(c)),
                  Paragraph("SDK: " + (", ".join(c.sdks) or "none (the standard library)")),
                  Table(columns=(Col("feature"), Col("status"), Col("source"), Col("fallback"),
                                 Col("notes"), Col("limits")), rows=rows)]
        if c.probe is not None and c.probe.skipped:
            blocks.append(Paragraph("Probes that could not run: " + "; ".join(c.probe.skipped),
                                    note=True))
        if c.quirks:
            blocks.append(_quirk_table(c.quirks, f"known differences of {c.quirks[0].store}"))
        sections.append(Section(f"{c.name}: {c.store}", tuple(blocks)))
    if all_quirks:
        sections.append(Section("Known behaviour differences", (_quirk_table(QUIRKS, ""),)))
    return Report(title="Provider compatibility", sections=tuple(sections), kind="compat")


def _quirk_table(quirks: tuple[Quirk, ...], title: str) -> Table:
    return Table(columns=(Col("store"), Col("versions"), Col("feature"), Col("behaviour"),
                          Col("workaround")),
                 rows=tuple((q.store, q.versions, q.feature, q.behaviour, q.workaround)
                            for q in quirks), title=title)


def as_json(columns: list[StoreColumn]) -> str:
    """The matrix as JSON: per store its cells, probe facts, SDKs and the known differences
    of the product found; then every known difference."""
    out = []
    for c in columns:
        probe = None
        if c.probe is not None:
            probe = {"server": c.probe.server, "api_version": c.probe.api_version,
                     "product": c.probe.product, "emulator": c.probe.emulator,
                     "requests": c.probe.requests, "skipped": c.probe.skipped}
        out.append({"name": c.name, "scheme": c.scheme, "store": c.store, "sdks": list(c.sdks),
                    "probe": probe, "quirks": [q.to_json() for q in c.quirks],
                    "cells": {f: c.cells[f].to_json() for f in FEATURE_IDS}})
    return json.dumps({"format": "omnifs-compat", "version": 1, "stores": out,
                       "known_differences": [q.to_json() for q in QUIRKS]},
                      indent=1, sort_keys=True) + "\n"


def render_matrix(columns: list[StoreColumn], fmt: str, **kw) -> str:
    if fmt == "json":
        return as_json(columns)
    return render(report(columns, **kw), "md")
