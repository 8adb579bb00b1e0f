"""omnifs.report: the document model and its Markdown, HTML and JSON renderers (the HTML
opened in headless Chromium), and omnifs.migration.costing.usage_cost against the tables."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from omnifs.migration.costing import usage_cost
from omnifs.prices import PriceOverride
from omnifs.providers import ProviderSettings
from omnifs.report import (
    Chart,
    Column,
    Field,
    Paragraph,
    Report,
    Section,
    Series,
    Summary,
    Table,
    to_json,
)
from omnifs.report.markdown import escape
from omnifs.report.output import render, write
from omnifs.report.values import format_value
from tests.chromium import images_loaded

EVIL = 'a<b>&"c"|d*_[x]'
GIB = 2**30


def sample(charts: int = 3) -> Report:
    line = Chart("line", "Bytes copied", "time since start", "bytes",
                 (Series("copied", ((0.0, 0.0), (5.0, 1024.0), (10.0, 4096.0))),),
                 y_unit="bytes", x_unit="seconds")
    bar = Chart("bar", "Cost per store", "store", "cost",
                (Series("estimated", (("src", 1.5), ("dst", 0.25))),
                 Series("actual", (("src", 1.25), ("dst", 0.5)))), y_unit="USD")
    stacked = Chart("stacked_bar", "Objects per state", "action", "objects",
                    (Series("done", (("copy", 3.0), ("delete", 1.0))),
                     Series("failed", (("copy", 1.0),))), y_unit="count")
    return Report(
        title=f"Report of {EVIL}", subtitle="sub & title", meta=("id 1234", "when <now>"),
        kind="test",
        sections=(
            Section("Summary", (
                Paragraph(f"note about {EVIL}", note=True),
                Summary((Field("Copied", 1536, "bytes"), Field("Cost", Decimal("1.23456"), "USD"),
                         Field("Elapsed", 75.0, "seconds"), Field("Started", 0.0, "time"),
                         Field("Key", EVIL), Field("Missing", None))),
                Table(columns=(Column("key"), Column("size", "bytes"), Column("cost", "USD"),
                               Column("n", "count")),
                      rows=((EVIL, 2048, Decimal("0.5"), 3), ("plain", None, None, 1_234_567)),
                      title="Objects", note="and 7 more"))),
            Section(f"Charts {EVIL}", (line, bar, stacked)[:charts])))


def test_format_value_per_unit():
    assert format_value(1536, "bytes") == "1.5 KiB"
    assert format_value(2 * GIB, "bytes/s") == "2.0 GiB/s"
    assert format_value(75, "seconds") == "1 min 15 s"
    assert format_value(0.25, "seconds") == "0.25 s"
    assert format_value(86400 + 3600, "time") == "1970-01-02 01:00:00 UTC"
    assert format_value(Decimal("1.23456"), "USD") == "1.2346 USD"
    assert format_value("0.5", "USD") == "0.5"  # text is never reinterpreted
    assert format_value(Decimal("0.5"), "USD", in_column=True) == "0.5000"
    assert format_value(1_234_567, "count") == "1,234,567"
    assert format_value(None, "bytes") == "—"
    assert format_value(12.5, "percent") == "12.5 %"


def test_markdown_tables_escape_and_align():
    md = render(sample(), "md")
    assert md.startswith("# Report of a\\<b\\>\\&\"c\"\\|d\\*\\_\\[x\\]\n")
    lines = md.splitlines()
    head = lines.index("| key | size | cost (USD) | n |")
    assert lines[head + 1] == "|:---|---:|---:|---:|"
    assert lines[head + 2] == f"| {escape(EVIL)} | 2.0 KiB | 0.5000 | 3 |"
    assert lines[head + 3] == "| plain | — | — | 1,234,567 |"
    assert "_and 7 more_" in md
    assert "> **Note:** note about a\\<b\\>" in md
    assert "- **Cost:** 1.2346 USD" in md
    assert "- **Started:** 1970-01-01 00:00:00 UTC" in md
    # a pipe in a key cannot break out of its cell: every row has the columns' count of bars
    for line in lines[head:head + 4]:
        assert len(re.findall(r"(?<!\\)\|", line)) == 5, line


def test_markdown_charts_are_their_data():
    md = render(sample(), "md")
    # a line chart: one row per x, values in the y unit
    assert "| time since start | copied |" in md
    assert "| 5.00 s | 1.0 KiB |" in md
    # bars: one column per series, categories in first-seen order, gaps as —
    assert "| store | estimated (USD) | actual (USD) |" in md
    assert "| src | 1.5000 | 1.2500 |" in md
    assert "| delete | 1 | — |" in md
    assert "![" not in md  # no image without a file to put it next to


def test_markdown_file_links_its_charts_as_png(tmp_path):
    out = tmp_path / "r.md"
    written = write(sample(), "md", out)
    pngs = [p for p in written if p.suffix == ".png"]
    assert written[-1] == out and len(pngs) == 3
    md = out.read_text()
    for p in pngs:
        assert p.parent == tmp_path and p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"](<{p.name}>)" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_html_escapes_every_string():
    html = render(sample(), "html")
    for raw in ("<b>", '"c"', "<now>"):
        assert raw not in html
    assert "a&lt;b&gt;&amp;&quot;c&quot;|d*_[x]" in html
    assert "<title>Report of a&lt;b&gt;" in html
    assert '<p class="note">note about a&lt;b&gt;' in html
    assert "<h2>Charts a&lt;b&gt;" in html
    assert '<td class="num">2.0 KiB</td>' in html
    assert "<script" not in html.lower()  # no script needed to read it


def test_html_is_one_file_with_embedded_charts():
    html = render(sample(), "html")
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(refs) == 3 and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "http://" not in html and "https://" not in html
    assert "<style>" in html


def test_output_is_deterministic():
    a, b = sample(), sample()
    for fmt in ("md", "html", "json"):
        assert render(a, fmt) == render(b, fmt)


def test_json_is_the_model_with_stable_keys():
    text = to_json(sample())
    data = json.loads(text)
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert (data["format"], data["version"], data["kind"]) == ("omnifs-report", 1, "test")
    assert data["title"] == f"Report of {EVIL}"
    summary, table = data["sections"][0]["blocks"][1:3]
    assert summary["fields"][1] == {"label": "Cost", "value": "1.23456", "unit": "USD"}
    assert table["columns"][1] == {"title": "size", "unit": "bytes", "align": "right"}
    assert table["rows"] == [[EVIL, 2048, "0.5", 3], ["plain", None, None, 1234567]]
    chart = data["sections"][1]["blocks"][1]
    assert chart == {"type": "chart", "kind": "bar", "title": "Cost per store",
                     "x_label": "store", "x_unit": "", "y_label": "cost", "y_unit": "USD",
                     "series": [{"label": "estimated", "points": [["src", 1.5], ["dst", 0.25]]},
                                {"label": "actual", "points": [["src", 1.25], ["dst", 0.5]]}]}


def test_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        Table(columns=(Column("a"), Column("b")), rows=(("x",),))
    with pytest.raises(ValueError, match="chart kind 'pie'"):
        Chart("pie", "t", "x", "y", ())  # type: ignore[arg-type]
    from omnifs.errors import InvalidInput

    with pytest.raises(InvalidInput, match="use one of md, html, json"):
        render(sample(), "pdf")
    with pytest.raises(InvalidInput, match="no such directory"):
        write(sample(), "html", tmp_path / "nope" / "r.html")


def test_html_charts_load_in_headless_chromium(tmp_path):
    out = tmp_path / "report.html"
    write(sample(), "html", out)
    assert images_loaded(out, tmp_path) == (3, 3)


# -- usage_cost: a run's counters priced with the shipped tables ------------------------
# S3 us-east-1 STANDARD: egress to the internet 0.09/GB, GET 0.0004/1000, LIST 0.005/1000;
# STANDARD_IA: GET 0.001/1000, retrieval 0.01/GB. GCS us-central1 STANDARD: egress 0.12/GB,
# PUT and LIST 0.005/1000, storage 0.020/GB-month. (GB = 2**30 bytes.)
S3 = ProviderSettings(name="old", uri="s3://bucket", region="us-east-1")
GS = ProviderSettings(name="new", uri="gs://bucket")


def test_usage_cost_by_hand():
    usage = {"src": {"get_requests": 1000, "list_requests": 2, "bytes_out": 10 * GIB},
             "dst": {"put_requests": 1000, "list_requests": 1, "bytes_in": 10 * GIB,
                     "bytes_out": GIB, "delete_requests": 5}}
    c = usage_cost(usage, S3, GS, {})
    # 10 GB out of S3 at 0.09, and 1 GB read back out of GCS (verification) at 0.12
    assert c.source_egress == Decimal("1.0200")
    # 1000 GETs x 0.0004/1000 + 2 LISTs x 0.005/1000 = 0.0004 + 0.00001
    assert c.source_requests == Decimal("0.0004")
    # 1000 PUTs x 0.005/1000 + 1 LIST x 0.005/1000 = 0.005005; deletes are free
    assert c.destination_requests == Decimal("0.0050")
    assert c.destination_storage_per_month == Decimal("0.2000")  # 10 GB x 0.020
    assert (c.retrieval, c.early_deletion) == (Decimal("0.0000"), Decimal("0.0000"))
    assert c.total == Decimal("1.2254")
    assert c.provenance[0].startswith("aws-s3 ") and c.provenance[1].startswith("gcs ")


def test_usage_cost_of_an_infrequent_tier_and_stored_bytes():
    usage = {"src": {"get_requests": 100, "head_requests": 100, "bytes_out": 4 * GIB},
             "dst": {"copy_requests": 0}}
    c = usage_cost(usage, S3, GS, {"old": PriceOverride(tier="STANDARD_IA")},
                   bytes_stored=5 * GIB)
    assert c.retrieval == Decimal("0.0400")  # 4 GB x 0.01
    assert c.source_requests == Decimal("0.0002")  # 200 GET-class x 0.001/1000
    assert c.destination_storage_per_month == Decimal("0.1000")  # 5 GB x 0.020
    assert usage_cost({}, S3, GS, {}).total == 0


# -- the migration report from a plan and a catalog (no servers: file:// places) --------
def _move_plan(n: int):
    from omnifs.migration.plan import Entry
    from omnifs.migration.planfile import MigrationPlan, Place

    entries = [Entry("copy", f"data/sub{i % 3}/f{i:03}", 100, "missing", delete_source=True)
               for i in range(n)]
    return MigrationPlan(src=Place("one:/", "one", "file:///a", ""),
                         dst=Place("two:/x", "two", "file:///b", "x"), mode="move",
                         entries=entries, created="2026-01-01T00:00:00.000000Z")


def test_migration_report_of_a_move_with_many_failures(tmp_path):
    from omnifs.catalog import Catalog, migration_id
    from omnifs.migration.report import CAP, migration_report

    plan = _move_plan(120)
    checksum = plan.to_json()["checksum"]
    mid = migration_id(checksum)
    one, two = (ProviderSettings(name=n, uri=u) for n, u in (("one", "file:///a"),
                                                               ("two", "file:///b")))
    cat = Catalog(tmp_path / "c.db")
    try:
        cat.migrations.create(mid, plan_checksum=checksum, src="one:/", dst="two:/x",
                              mode="move", plan={},
                              entries=[(e.key, e.action, e.size) for e in plan.entries])
        cat.migrations.set_state(mid, "running", started_at=1000.0)
        cat.migrations.update_items(mid, [
            (e.key, {"state": "failed", "attempts": 5, "error": f"err {i}"} if i % 2 else
             {"state": "done", "finished_at": 1001.0 + i, "verified": "ok",
              "source_deleted": 1}) for i, e in enumerate(plan.entries)])
        report = migration_report(plan, cat.migrations, one, two, {})
    finally:
        cat.close()
    data = report.as_dict()
    sections = {s["heading"]: s["blocks"] for s in data["sections"]}
    fields = {f["label"]: f["value"] for f in sections["Summary"][0]["fields"]}
    assert fields["State"] == "running" and fields["Finished"] is None
    assert fields["Elapsed"] == 1001.0 + 118 - 1000.0  # still running: up to the last copy
    rows = {r[0]: r[1:] for r in sections["Summary"][1]["rows"]}
    assert rows["copy"] == [120, 12000, 60, 6000, 60, 6000, 0]
    assert rows["delete source"] == [120, 12000, 60, None, None, None, None]
    # one top directory: the table goes one level deeper
    prefixes = {r[0]: r[1:] for r in sections["Per prefix"][0]["rows"]}
    assert prefixes == {f"data/sub{k}/": [40, 4000, 20, 20] for k in range(3)}
    failures = sections["Failures"][0]
    assert len(failures["rows"]) == CAP and failures["note"] == f"and {60 - CAP} more"
    assert failures["rows"][0] == ["data/sub0/f003", "copy", 5, "err 3"]
    assert report.subtitle == "move from file:///a to file:///b/x"
    md = render(report, "md")
    assert "| data/sub0/ | 40 | 3.9 KiB | 20 | 20 |" in md


def test_migration_report_of_a_plan_alone():
    from omnifs.migration.report import migration_report

    plan = _move_plan(3)
    report = migration_report(plan, None, ProviderSettings(name="one", uri="file:///a"),
                              ProviderSettings(name="two", uri="file:///b"), {})
    assert [s.heading for s in report.sections] == ["Summary", "Per prefix", "Cost"]
    note = report.sections[0].blocks[0]
    assert isinstance(note, Paragraph) and note.note and "not been run" in note.text
    cost = report.sections[-1]
    assert any(isinstance(b, Paragraph) and "no cost estimate" in b.text for b in cost.blocks)
