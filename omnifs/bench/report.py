"""Bench results as a report of the shared model (omnifs.report): md, html or json.

One section per run (scenario): its figures per provider and cell (medians
over repeats), a latency CDF, throughput per object size and per concurrency
(when the scenario has more than one of them) and a provider comparison; then,
for a scenario run more than once, its operations per second run after run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from omnifs.report import Chart, Column, Field, Paragraph, Report, Section, Series, Summary, Table
from omnifs.units import human_bytes

#: most lines a CDF chart draws
CDF_SERIES = 8

_COLUMNS = (Column("provider"), Column("size", "bytes"), Column("concurrency", "count"),
            Column("runs", "count"), Column("ops/s", "count"), Column("throughput", "bytes/s"),
            Column("p50 ms", "count"), Column("p95 ms", "count"), Column("p99 ms", "count"),
            Column("max ms", "count"), Column("errors", "count"), Column("client CPU", "seconds"),
            Column("peak RSS", "bytes"))


def _cells(run: dict[str, Any]) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in run["results"]:
        out.setdefault((r["provider"], r["size"], r["concurrency"]), []).append(r)
    return out


def _median(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(get(r) for r in rows)


def _table(cells: dict[tuple[str, int, int], list[dict[str, Any]]]) -> Table:
    rows = []
    for (provider, size, conc), rs in cells.items():
        ms = [round(statistics.median(r["latency"][q] for r in rs) * 1000, 3)
              for q in ("p50", "p95", "p99", "max")]
        rows.append((provider, size, conc, len(rs),
                     round(_median(rs, lambda r: r["ops_per_s"]), 1),
                     round(_median(rs, lambda r: r["mb_per_s"]) * 1e6),
                     *ms, sum(r["errors"] for r in rs),
                     round(_median(rs, lambda r: r["cpu_seconds"]), 3),
                     max(r["peak_rss"] for r in rs)))
    return Table(_COLUMNS, tuple(rows), title="Figures per provider and cell (medians of runs)")


_OP_COLUMNS = (Column("provider"), Column("size", "bytes"), Column("concurrency", "count"),
               Column("operation"), Column("count", "count"), Column("errors", "count"),
               Column("p50 ms", "count"), Column("p95 ms", "count"), Column("p99 ms", "count"),
               Column("max ms", "count"))


def _per_op_table(cells: dict[tuple[str, int, int], list[dict[str, Any]]]) -> Table | None:
    """Latency per operation kind (medians over repeats), for scenarios mixing several."""
    kinds = {k for rs in cells.values() for r in rs for k in r["per_op"]}
    if len(kinds) < 2:
        return None
    rows = []
    for (provider, size, conc), rs in cells.items():
        for kind in sorted(kinds):
            lats = [r["per_op"][kind] for r in rs if kind in r["per_op"]]
            if not lats:
                continue
            ms = [round(statistics.median(x[q] for x in lats) * 1000, 3)
                  for q in ("p50", "p95", "p99", "max")]
            rows.append((provider, size, conc, kind, sum(x["count"] for x in lats),
                         sum(x["errors"] for x in lats), *ms))
    return Table(_OP_COLUMNS, tuple(rows), title="Latency per operation")


def _cell_label(provider: str, size: int, conc: int) -> str:
    return f"{provider} {human_bytes(size)} c={conc}"


def _charts(cells: dict[tuple[str, int, int], list[dict[str, Any]]]) -> list[Chart]:
    charts = []
    n = len(cells[next(iter(cells))][0]["cdf"])
    cdf = [Series(_cell_label(*key), tuple((round(rs[0]["cdf"][i] * 1000, 3), 100 * i / (n - 1))
                                           for i in range(0, n, 2)))
           for key, rs in list(cells.items())[:CDF_SERIES]]
    charts.append(Chart("line", "Latency CDF", "latency (ms)", "operations at or below",
                        tuple(cdf), y_unit="percent"))
    providers = list(dict.fromkeys(k[0] for k in cells))
    sizes = sorted({k[1] for k in cells})
    concs = sorted({k[2] for k in cells})
    if len(sizes) > 1:
        top = concs[-1]
        charts.append(Chart("line", f"Throughput per object size (concurrency {top})",
                            "object size", "throughput", tuple(
                                Series(p, tuple((s, _median(cells[p, s, top],
                                                            lambda r: r["mb_per_s"] * 1e6))
                                                for s in sizes if (p, s, top) in cells))
                                for p in providers), y_unit="bytes/s", x_unit="bytes"))
    if len(concs) > 1:
        small = sizes[0]
        charts.append(Chart("line", f"Operations per second per concurrency "
                                    f"({human_bytes(small)})", "concurrency", "ops/s", tuple(
                                        Series(p, tuple((c, _median(cells[p, small, c],
                                                                    lambda r: r["ops_per_s"]))
                                                        for c in concs if (p, small, c) in cells))
                                        for p in providers), y_unit="count"))
    bars = tuple(Series(f"{human_bytes(s)} c={c}",
                        tuple((p, _median(cells[p, s, c], lambda r: r["ops_per_s"]))
                              for p in providers if (p, s, c) in cells))
                 for s in sizes for c in concs)
    charts.append(Chart("bar", "Provider comparison: operations per second", "provider",
                        "ops/s", bars, y_unit="count"))
    return charts


def _section(run: dict[str, Any]) -> Section:
    sc = run["scenario"]
    profile = run.get("profile")
    blocks: list = [Paragraph(sc.get("description") or sc["name"])]
    blocks.append(Summary((
        Field("scenario", f"{sc['name']} ({sc['digest']}){' --quick' if run['quick'] else ''}"),
        Field("started", run["started"], "time"),
        Field("took", run["finished"] - run["started"], "seconds"),
        Field("network profile", profile["name"] if profile else "none (direct)"),
        Field("repeats", run["repeats"], "count"))))
    cells = _cells(run)
    if not cells:
        blocks.append(Paragraph("This run has no results.", note=True))
        return Section(sc["name"], tuple(blocks))
    blocks.append(_table(cells))
    per_op = _per_op_table(cells)
    if per_op is not None:
        blocks.append(per_op)
    errors = [s for r in run["results"] for s in r.get("error_samples", [])]
    if errors:
        blocks.append(Paragraph("First errors: " + "; ".join(errors[:5]), note=True))
    blocks.extend(_charts(cells))
    return Section(sc["name"], tuple(blocks))


def _history(runs: list[dict[str, Any]]) -> list[Section]:
    """Per scenario run more than once (same digest): ops/s of each run, oldest first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: r["started"]):
        groups.setdefault((run["scenario"]["name"], run["scenario"]["digest"]), []).append(run)
    sections = []
    for (name, _), group in groups.items():
        if len(group) < 2:
            continue
        keys = list(dict.fromkeys(k for run in group for k in _cells(run)))[:CDF_SERIES]
        series = []
        for key in keys:
            points = tuple((run["started_utc"], _median(_cells(run)[key],
                                                        lambda r: r["ops_per_s"]))
                           for run in group if key in _cells(run))
            series.append(Series(_cell_label(*key), points))
        sections.append(Section(f"History: {name}", (Chart(
            "bar", f"{name}: operations per second per run", "run (UTC start)", "ops/s",
            tuple(series), y_unit="count"),)))
    return sections


def bench_report(runs: list[dict[str, Any]]) -> Report:
    env = runs[-1]["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    environment = Section("Environment", (Summary((
        Field("CPU", f"{env['cpu'] or 'unknown'} ({env['cpus']} cores)"),
        Field("kernel", env["kernel"]), Field("platform", env["platform"]),
        Field("versions", versions),
        Field("config hash", env["config_hash"] or "no config file"))),))
    providers = list(dict.fromkeys(p["name"] for run in runs for p in run["providers"]))
    return Report(
        title="omnifs bench", kind="bench",
        subtitle=f"{len(runs)} run{'s' if len(runs) != 1 else ''} on "
                 f"{', '.join(providers)}",
        meta=tuple(f"{r['scenario']['name']}: run {r['run_id'][:12]} "
                   f"({r['started_utc']})" for r in runs),
        sections=(*(_section(r) for r in runs), *_history(runs), environment))
