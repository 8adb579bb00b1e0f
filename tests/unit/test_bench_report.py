"""The bench report model from synthetic runs: its sections, charts and the history."""

from __future__ import annotations

import json

from omnifs.bench.report import bench_report
from omnifs.report import Chart, Table
from omnifs.report.output import render, write
from tests.unit.test_bench_compare import _run


def _with_env(run: dict) -> dict:
    run["environment"] = {"versions": {"omnifs": "0.1.0", "boto3": "1"}, "cpu": "x",
                          "cpus": 2, "kernel": "6", "platform": "linux", "config_hash": None}
    return run


def test_sections_tables_charts_and_history(tmp_path):
    runs = [_with_env(_run([1000, 1100], started=1)), _with_env(_run([900], started=2))]
    report = bench_report(runs)
    headings = [s.heading for s in report.sections]
    assert headings == ["small-object", "small-object", "History: small-object", "Environment"]
    table = next(b for b in report.sections[0].blocks if isinstance(b, Table))
    assert table.rows[0][:5] == ("s3", 4096, 16, 2, 1050.0)
    titles = [c.title for c in report.charts()]
    assert titles.count("Latency CDF") == 2
    assert "small-object: operations per second per run" in titles
    history = report.charts()[-1]
    assert isinstance(history, Chart) and [y for _, y in history.series[0].points] == [1050, 900]
    assert not any(isinstance(b, Table) and b.title == "Latency per operation"
                   for b in report.sections[0].blocks)
    mixed = _run([500])
    mixed["results"][0]["per_op"] = {
        k: {"count": 10, "errors": 0, "p50": 0.01, "p95": 0.02, "p99": 0.03, "max": 0.04}
        for k in ("get", "put")}
    ops = next(b for b in bench_report([_with_env(mixed)]).sections[0].blocks
               if isinstance(b, Table) and b.title == "Latency per operation")
    assert [row[3] for row in ops.rows] == ["get", "put"] and ops.rows[0][6] == 10.0
    assert json.loads(render(report, "json"))["kind"] == "bench"
    written = write(report, "md", tmp_path / "r.md")
    assert len(written) == len(titles) + 1
