"""``omnifs migrate report`` over real servers: a plan made by ``migrate plan`` (moto S3 to the
GCS emulator), the catalog state a run leaves (items done and failed with their times,
verification, usage counters), then the report in md, html and json through the real CLI,
the HTML opened in headless Chromium."""

from __future__ import annotations

import hashlib
import json

import pytest

from omnifs.catalog import Catalog, migration_id
from omnifs.migration.costing import usage_cost
from omnifs.migration.planfile import load
from omnifs.providers import META_SHA256, open_provider
from tests.chromium import images_loaded
from tests.cli import one_line_error, run, write_config

ODD = "c/<b> & ünï #1.txt"
T0 = 1_800_000_000.0


def _put(p, key: str, data: bytes) -> None:
    p.write_bytes(key, data, metadata={META_SHA256: hashlib.sha256(data).hexdigest()})


@pytest.fixture
def planned(make_settings, tmp_path):
    """A config with a catalog, a plan file src:/data -> dst:/into, and the open catalog."""
    a, b = make_settings("s3", name="src"), make_settings("gs", name="dst")
    catalog = tmp_path / "catalog.db"
    Catalog(catalog).close()
    cfg = write_config(tmp_path / "omnifs.toml", [a, b],
                       extra=f'\n[catalog]\nurl = "sqlite:///{catalog}"\n')
    src, dst = open_provider(a), open_provider(b)
    for i in range(4):
        _put(src, f"data/a/{i}.bin", bytes([i]) * (1000 * (i + 1)))
    _put(src, "data/a/deep/x.bin", b"x" * 500)
    _put(src, f"data/{ODD}", b"odd")
    _put(src, "data/top.txt", b"same")
    _put(dst, "into/top.txt", b"same")
    _put(dst, "into/a/0.bin", b"old")
    _put(dst, "into/gone.txt", b"only here")
    out = tmp_path / "plan.json"
    run("migrate", "plan", "src:/data", "dst:/into", "--delete", "-o", str(out), config=cfg,
        check=True)
    cat = Catalog(catalog)
    yield cfg, out, cat, (a, b)
    cat.close()
    src.close()
    dst.close()


def _fill_like_a_run(cat: Catalog, plan_path) -> str:
    """What ``migrate run`` and ``verify`` leave in the catalog: one failure, one mismatch."""
    plan = load(plan_path)
    checksum = plan.to_json()["checksum"]
    mid = migration_id(checksum)
    body = plan.body()
    cat.migrations.create(mid, plan_checksum=checksum, src=plan.src.given, dst=plan.dst.given,
                          mode=plan.mode, plan={k: body[k] for k in ("src", "dst", "summary",
                                                                    "estimate")},
                          entries=[(e.key, e.action, e.size) for e in plan.entries])
    cat.migrations.set_state(mid, "running", started_at=T0)
    updates = []
    for n, e in enumerate(plan.entries):
        if e.key == ODD:
            updates.append((e.key, {"state": "failed", "attempts": 3, "started_at": T0 + 1,
                                    "error": "Unavailable: <503> & again\nsecond line"}))
            continue
        fields = {"state": "done", "started_at": T0 + n, "finished_at": T0 + 2 * n + 1}
        if e.action in ("copy", "overwrite"):
            fields["verified"] = "mismatch" if e.key == "a/3.bin" else "ok"
        updates.append((e.key, fields))
    cat.migrations.update_items(mid, updates)
    cat.migrations.add_usage(mid, [("src", "list_requests", 1), ("src", "get_requests", 6),
                                   ("src", "bytes_out", 11_000), ("dst", "list_requests", 1),
                                   ("dst", "put_requests", 6), ("dst", "bytes_in", 11_000),
                                   ("dst", "delete_requests", 1)])
    cat.migrations.set_state(mid, "incomplete", finished_at=T0 + 30)
    return mid


def test_report_of_a_run_in_three_formats(planned, tmp_path):
    cfg, plan_path, cat, (a, b) = planned
    mid = _fill_like_a_run(cat, plan_path)

    out = tmp_path / "r.json"
    proc = run("migrate", "report", str(plan_path), "--format", "json", "-o", str(out),
               config=cfg, check=True)
    assert proc.stdout == b""
    data = json.loads(out.read_text())
    assert data["kind"] == "migration" and f"migration {mid}" in data["meta"]
    sections = {s["heading"]: s["blocks"] for s in data["sections"]}
    assert list(sections) == ["Summary", "Progress", "Per prefix", "Failures", "Verification",
                              "Cost"]
    fields = {f["label"]: f["value"] for f in sections["Summary"][0]["fields"]}
    assert (fields["State"], fields["Started"], fields["Finished"]) == (
        "incomplete", T0, T0 + 30)
    assert fields["Elapsed"] == 30 and fields["Failed objects"] == 1
    # copied: 1000+2000+3000+4000 (a/*.bin, a/0.bin an overwrite) + 500
    assert fields["Copied"] == 10_500 and fields["Mean rate"] == 10_500 / 30
    actions = {r[0]: r[1:] for r in sections["Summary"][1]["rows"]}
    assert actions["copy"] == [5, 9500 + 3, 4, 9500, 1, 3, 0]
    assert actions["overwrite"] == [1, 1000, 1, 1000, 0, 0, 0]
    assert actions["skip"][:2] == [1, 4] and actions["delete"][:4] == [1, 9, 1, 9]
    prefixes = {r[0]: r[1:] for r in sections["Per prefix"][0]["rows"]}
    assert prefixes == {"a/": [5, 10_500, 5, 0], "c/": [1, 3, 0, 1],
                        "(top level)": [1, 9, 1, 0]}
    failures = sections["Failures"][0]["rows"]
    assert failures == [[ODD, "copy", 3, "Unavailable: <503> & again"]]
    verified = {f["label"]: f["value"] for f in sections["Verification"][0]["fields"]}
    assert verified == {"Checked": 5, "ok": 4, "mismatch": 1, "missing": 0}
    assert sections["Verification"][1]["rows"] == [["a/3.bin", "mismatch"]]
    cost = {r[0]: r[1:] for r in sections["Cost"][0]["rows"]}
    plan = load(plan_path)
    assert plan.estimate is not None
    expected = usage_cost(cat.migrations.usage(mid), a, b, {}, bytes_stored=10_500 + 4)
    assert cost["total"] == [plan.estimate["total"], str(expected.total)]
    assert cost["destination requests"][1] == str(expected.destination_requests)
    charts = [blk for s in data["sections"] for blk in s["blocks"] if blk["type"] == "chart"]
    assert [c["title"] for c in charts] == ["Bytes copied over time", "Throughput over time",
                                            "Cost per store"]
    assert charts[0]["series"][0]["points"][-1][1] == 10_500
    assert [s["label"] for s in charts[2]["series"]] == ["estimated", "actual"]

    md = tmp_path / "report.md"
    run("migrate", "report", str(plan_path), "-f", "md", "-o", str(md), config=cfg, check=True)
    text = md.read_text()
    pngs = sorted(tmp_path.glob("report-*.png"))
    assert len(pngs) == 3 and all(f"(<{p.name}>)" in text for p in pngs)
    assert "| c/ | 1 | 3 B | 0 | 1 |" in text
    assert "Unavailable: \\<503\\> \\& again" in text

    # html on stdout, the same bytes as a second rendering
    first = run("migrate", "report", str(plan_path), "-f", "html", config=cfg, check=True)
    again = run("migrate", "report", str(plan_path), "-f", "html", config=cfg, check=True)
    assert first.stdout == again.stdout
    html = tmp_path / "report.html"
    html.write_bytes(first.stdout)
    page = first.stdout.decode()
    assert "&lt;b&gt; &amp; ünï #1.txt" in page and "<b> &" not in page
    assert images_loaded(html, tmp_path) == (3, 3)


def test_report_of_a_plan_not_run_and_an_edited_plan(planned, tmp_path):
    cfg, plan_path, _cat, _settings = planned
    md = run("migrate", "report", str(plan_path), config=cfg, check=True).stdout.decode()
    assert "This migration has not been run" in md
    assert "No actual cost yet" in md and "Failures" not in md
    data = json.loads(run("migrate", "report", str(plan_path), "-f", "json", config=cfg,
                          check=True).stdout)
    state = {f["label"]: f["value"] for f in data["sections"][0]["blocks"][1]["fields"]}
    assert state["State"] == "not run"
    cost = {r[0]: r[1:] for r in data["sections"][-1]["blocks"][0]["rows"]}
    assert cost["total"][1] is None and cost["total"][0] is not None

    plan_path.write_bytes(plan_path.read_bytes().replace(b'"size":3', b'"size":4', 1))
    edited = run("migrate", "report", str(plan_path), "-f", "html", config=cfg)
    assert edited.returncode == 2
    assert "was edited or damaged" in one_line_error(edited)
    bad_dir = run("migrate", "report", str(tmp_path / "none.json"), config=cfg)
    assert "cannot read plan" in one_line_error(bad_dir)
