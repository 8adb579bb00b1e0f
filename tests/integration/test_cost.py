"""`omnifs cost` end to end on real servers: report, recommend, apply (tier moves on moto
and Azurite, re-placement that keeps `copies`), history.

Files are recorded as the mount's publisher leaves them (objects uploaded, synced replica
rows); the moves run with `omnifs replicate --now`, the daemon's executor in the foreground.
The tiers are checked with the stores' own SDKs (boto3 head_object, azure get_blob_properties).
"""

from __future__ import annotations

import hashlib
import json
import stat
import time

import boto3
from azure.storage.blob import BlobServiceClient

from omnifs.catalog import Catalog
from omnifs.providers import META_MTIME, META_SHA256, open_provider
from tests.chromium import images_loaded
from tests.cli import run, toml_table

MiB = 1 << 20
DAY = 86400


def config(tmp_path, settings, extra: str = "", copies: int = 2):
    body = (f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n'
            f'[cache]\ndir = "{tmp_path}/cache"\n'
            f"[replication]\ncopies = {copies}\n\n"
            + "\n".join(toml_table(s) for s in settings) + extra)
    path = tmp_path / "omnifs.toml"
    path.write_text(body)
    path.chmod(0o600)
    return path


def put_file(cat: Catalog, providers: dict, path: str, data: bytes, age_days: float) -> int:
    """A file as the publisher leaves it: on every store given, synced, ``age_days`` old."""
    parent_path, _, name = path.strip("/").rpartition("/")
    parent = cat.ns.ensure_dirs(parent_path)
    mtime = time.time() - age_days * DAY
    sha = hashlib.sha256(data).hexdigest()
    ino = cat.ns.create(parent, name, stat.S_IFREG | 0o644, 0, 0, size=len(data),
                        mtime_ns=int(mtime * 1e9), sha256=sha, version=1).id
    key = path.strip("/")
    for name_, p in providers.items():
        p.write_bytes(key, data, {META_SHA256: sha, META_MTIME: f"{mtime:.9f}"})
        cat.replicas.set(ino, name_, key, 1, "synced")
    return ino


def s3_class(settings, key: str) -> str:
    bucket = settings.uri.split("://", 1)[1].split("/", 1)[0]
    s3 = boto3.client("s3", endpoint_url=settings.endpoint, aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    return s3.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD")


def azure_tier(settings, key: str) -> str:
    container = settings.uri.split("://", 1)[1].split("/", 1)[0]
    client = BlobServiceClient.from_connection_string(settings.connection_string)
    return client.get_blob_client(container, key).get_blob_properties().blob_tier


def test_report_recommend_apply_moves_tiers_on_moto_and_azurite(make_settings, tmp_path):
    aws, az = make_settings("s3", name="aws"), make_settings("az", name="az")
    cfg = config(tmp_path, [aws, az], "\n[cost]\ncool_after_days = 30\n"
                 "archive_after_days = 400\nhorizon_days = 365\n")
    providers = {"aws": open_provider(aws), "az": open_provider(az)}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        put_file(cat, providers, "/old/a.bin", b"a" * 2 * MiB, age_days=100)
        put_file(cat, providers, "/new/b.bin", b"b" * MiB, age_days=1)
        cat.usage.add(int(time.time() // DAY), {("aws", "get"): (10, 1, 5 * MiB, 0),
                                                ("az", "put"): (4, 0, 0, 3 * MiB)})
    finally:
        cat.close()

    report = json.loads(run("cost", "report", "--format", "json", config=cfg, check=True).stdout)
    assert report["kind"] == "cost"
    summary = {f["label"]: f for f in report["sections"][0]["blocks"][0]["fields"]}
    assert summary["stored"]["value"] == 6 * MiB and summary["objects"]["value"] == 4
    assert summary["requests so far"]["value"] == 14
    assert summary["egress so far"]["value"] == 5 * MiB
    assert float(summary["total"]["value"]) > 0
    by_prefix = json.loads(run("cost", "report", "--by", "prefix", "--format", "json",
                               config=cfg, check=True).stdout)
    assert by_prefix["sections"][1]["heading"] == "Top prefixes"
    rows = by_prefix["sections"][1]["blocks"][1]["rows"]
    assert {r[0] for r in rows} == {"/old", "/new"}

    html = tmp_path / "cost.html"
    run("cost", "report", "--by", "tier", "--format", "html", "-o", str(html), config=cfg,
        check=True)
    assert images_loaded(html, tmp_path) == (3, 3)  # the three charts display

    rec = json.loads(run("cost", "recommend", "--format", "json", config=cfg,
                         check=True).stdout)
    moves = rec["sections"][0]["blocks"][0]["rows"]
    assert sorted((r[0], r[1], r[2], r[4]) for r in moves) == [
        ("tier", "/old/a.bin", "aws", "STANDARD_IA"), ("tier", "/old/a.bin", "az", "Cool")]
    for r in moves:  # saving, one-time, break-even within the horizon
        assert float(r[5]) > 0 and float(r[6]) > 0 and 0 < float(r[7]) <= 365
    assert rec["sections"][-1]["heading"] == "Total"

    dry = run("cost", "apply", "--dry-run", config=cfg, check=True)
    assert b"would queue 2 of 2 move(s)" in dry.stderr
    one = run("cost", "apply", "--max-moves", "1", config=cfg, check=True)
    assert b"queued 1 of 2 move(s)" in one.stderr
    # a file with a move still queued waits for it to end
    assert b"queued 0 of 0" in run("cost", "apply", config=cfg, check=True).stderr
    run("replicate", "--now", config=cfg, check=True)
    assert b"queued 1 of 1 move(s)" in run("cost", "apply", config=cfg, check=True).stderr
    run("replicate", "--now", config=cfg, check=True)

    assert s3_class(aws, "old/a.bin") == "STANDARD_IA"
    assert azure_tier(az, "old/a.bin") == "Cool"
    assert s3_class(aws, "new/b.bin") == "STANDARD" and azure_tier(az, "new/b.bin") == "Hot"
    history = json.loads(run("cost", "history", "--format", "json", config=cfg,
                             check=True).stdout)
    states = [(r[2], r[4], r[6], r[9]) for r in history["sections"][0]["blocks"][0]["rows"]]
    assert sorted(states) == [("tier", "aws", "STANDARD_IA", "done"),
                              ("tier", "az", "Cool", "done")]
    cat = Catalog(tmp_path / "catalog.db")
    try:
        tiers = {r.provider: r.tier for r in cat.replicas.of(cat.ns.resolve("old/a.bin").id)}
        assert tiers == {"aws": "STANDARD_IA", "az": "Cool"}
    finally:
        cat.close()
    # priced where they are now: nothing more to move
    rec = json.loads(run("cost", "recommend", "--format", "json", config=cfg,
                         check=True).stdout)
    assert rec["sections"][0]["blocks"][0]["type"] == "paragraph"
    for p in providers.values():
        p.close()


def test_apply_replaces_a_costly_store_and_keeps_copies(make_settings, tmp_path):
    a, b, c = (make_settings("s3", name="a"), make_settings("s3", name="b"),
               make_settings("az", name="c"))
    cfg = config(tmp_path, [a, b, c], "\n[cost]\ncool_after_days = 3000\n"
                 "archive_after_days = 4000\n\n[prices.c]\nstorage_per_gb_month = 2.0\n")
    providers = {"a": open_provider(a), "b": open_provider(b), "c": open_provider(c)}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, {"a": providers["a"], "c": providers["c"]}, "/d/f.bin",
                       b"f" * 4 * MiB, age_days=10)
    finally:
        cat.close()
    rec = json.loads(run("cost", "recommend", "--format", "json", config=cfg,
                         check=True).stdout)
    rows = rec["sections"][0]["blocks"][0]["rows"]
    assert [(r[0], r[3], r[4]) for r in rows] == [("placement", "a,c", "a,b")]
    run("cost", "apply", config=cfg, check=True)
    out = run("replicate", "--now", config=cfg, check=True)
    assert out.returncode == 0
    cat = Catalog(tmp_path / "catalog.db")
    try:
        reps = {r.provider: r.state for r in cat.replicas.of(ino)}
        assert reps == {"a": "synced", "b": "synced"}  # copies = 2 kept
        assert [m.state for m in cat.cost.moves()] == ["done"]
    finally:
        cat.close()
    assert providers["b"].read_bytes("d/f.bin") == b"f" * 4 * MiB
    assert not providers["c"].exists("d/f.bin")
    for p in providers.values():
        p.close()


def test_the_daemon_applies_moves_itself_with_auto(make_settings, tmp_path):
    from omnifs.config import load_config
    from tests.integration.test_daemon import run_daemon_until

    aws = make_settings("s3", name="aws")
    path = config(tmp_path, [aws], "\n[cost]\ncool_after_days = 30\nauto = true\n"
                  'schedule = "1h"\n\n[daemon]\nidle_poll = 0.05\n\n[metrics]\nport = 0\n',
                  copies=1)
    providers = {"aws": open_provider(aws)}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        put_file(cat, providers, "/old/a.bin", b"a" * 2 * MiB, age_days=100)
    finally:
        cat.close()
    counted = {("aws", "get"): (7, 0, 700, 0)}  # what the process's source says it made
    run_daemon_until(load_config(path), lambda c: [m.state for m in c.cost.moves()] == ["done"],
                     daemon_kw={"usage_source": lambda: counted})
    assert s3_class(aws, "old/a.bin") == "STANDARD_IA"
    cat = Catalog(tmp_path / "catalog.db")
    try:  # the daemon wrote its store requests at its close
        assert cat.usage.totals(0, 1 << 30) == {"aws": {"get": (7, 0, 700, 0)}}
    finally:
        cat.close()
    providers["aws"].close()


def test_archiving_keeps_one_copy_readable(make_settings, tmp_path):
    aws, az = make_settings("s3", name="aws"), make_settings("az", name="az")
    cfg = config(tmp_path, [aws, az], "\n[cost]\ncool_after_days = 30\n"
                 "archive_after_days = 60\n")
    providers = {"aws": open_provider(aws), "az": open_provider(az)}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, providers, "/old/a.bin", b"a" * 8 * MiB, age_days=200)
        # a tier move queued by hand against the policy: the executor refuses it too
        solo = put_file(cat, {"aws": providers["aws"]}, "/solo.bin", b"s" * MiB,
                        age_days=200)
        from omnifs.work import TierChange, enqueue

        enqueue(cat.work, TierChange(inode=solo, provider="aws", tier="GLACIER"))
    finally:
        cat.close()
    run("replicate", "--now", config=cfg, check=True)
    assert s3_class(aws, "solo.bin") == "STANDARD"

    rec = json.loads(run("cost", "recommend", "--format", "json", config=cfg,
                         check=True).stdout)
    rows = [r for r in rec["sections"][0]["blocks"][0]["rows"] if r[1] == "/old/a.bin"]
    targets = {r[2]: r[4] for r in rows}
    archived = [s for s, t in targets.items() if t in ("GLACIER", "DEEP_ARCHIVE", "Archive")]
    assert len(archived) == 1, targets  # one copy archived, the other stays readable
    run("cost", "apply", config=cfg, check=True)
    run("replicate", "--now", config=cfg, check=True)
    seen = {"aws": s3_class(aws, "old/a.bin"), "az": azure_tier(az, "old/a.bin")}
    assert seen == {s: targets.get(s, seen[s]) for s in seen}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        assert {r.provider: r.tier for r in cat.replicas.of(ino)} == {
            s: targets.get(s) for s in ("aws", "az")}
    finally:
        cat.close()
    for p in providers.values():
        p.close()


def test_errors_are_one_line(tmp_path):
    from omnifs.providers import ProviderSettings
    from tests.cli import one_line_error

    (tmp_path / "store").mkdir()
    cfg = config(tmp_path, [ProviderSettings(name="here", uri=f"file://{tmp_path}/store")],
                 copies=1)
    err = one_line_error(run("cost", "report", config=cfg))
    assert "no catalog yet" in err
    Catalog(tmp_path / "catalog.db").close()
    assert "--max-moves 0: must be at least 1" in one_line_error(
        run("cost", "apply", "--max-moves", "0", config=cfg))
    assert "invalid choice" in run("cost", "report", "--by", "colour", config=cfg).stderr.decode()
    # a store of your own costs nothing and has nothing to move
    out = run("cost", "recommend", config=cfg, check=True).stdout.decode()
    assert "Nothing to move" in out
    assert "No move made yet" in run("cost", "history", config=cfg, check=True).stdout.decode()


def test_re_placement_keeps_the_placement_rules(make_settings, tmp_path):
    import dataclasses

    a = make_settings("s3", name="a")
    b = dataclasses.replace(make_settings("s3", name="b"), region="eu-central-1")
    c = dataclasses.replace(make_settings("az", name="c"), region="eastus")
    cfg = config(tmp_path, [a, b, c], "\n[cost]\ncool_after_days = 3000\n"
                 "archive_after_days = 4000\n\n[prices.c]\nstorage_per_gb_month = 2.0\n\n"
                 '[[governance.rules]]\npaths = ["/us/**"]\nregions = ["us-*", "eastus"]\n')
    providers = {"a": open_provider(a), "c": open_provider(c)}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        put_file(cat, providers, "/us/f.bin", b"u" * 4 * MiB, age_days=10)
        put_file(cat, providers, "/any/g.bin", b"g" * 4 * MiB, age_days=10)
    finally:
        cat.close()
    rec = json.loads(run("cost", "recommend", "--format", "json", config=cfg,
                         check=True).stdout)
    rows = rec["sections"][0]["blocks"][0]["rows"]
    # /us/ may not live in eu-central-1: it stays on a and c, however costly c is
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [("placement", "/any/g.bin", "a,c",
                                                          "a,b")]
    for p in providers.values():
        p.close()
