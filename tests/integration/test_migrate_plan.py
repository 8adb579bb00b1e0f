"""``omnifs migrate plan`` over real servers (moto, the GCS emulator, Azurite, file), through
the real CLI: nested prefixes, odd names, every action, move mode and the bad input."""

from __future__ import annotations

import hashlib

import pytest

from omnifs.catalog import Catalog
from omnifs.migration.planfile import load
from omnifs.providers import META_SHA256, open_provider
from tests.cli import one_line_error, run, write_config

PAIRS = [("s3", "gs"), ("gs", "az"), ("az", "file"), ("file", "s3")]
ODD = "nested/deep er/ünï #1 %41.bin"


def _put(p, key: str, data: bytes, *, sha: bool = True) -> None:
    meta = {META_SHA256: hashlib.sha256(data).hexdigest()} if sha else None
    p.write_bytes(key, data, metadata=meta)


@pytest.mark.parametrize("pair", PAIRS, indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_plan_across_stores(pair, tmp_path):
    cfg, src, dst = pair
    _put(src, "data/new file.txt", b"fresh")
    _put(src, f"data/{ODD}", b"odd and equal")
    _put(src, "data/same.txt", b"unchanged")
    _put(src, "data/changed.txt", b"aaaa")
    _put(src, "data/grown.txt", b"longer now", sha=False)
    _put(src, "data/skip me.tmp", b"temporary")
    _put(src, "data-sibling/outside.txt", b"not under data/")
    _put(dst, f"into/{ODD}", b"odd and equal")
    _put(dst, "into/same.txt", b"unchanged")
    _put(dst, "into/changed.txt", b"bbbb")
    _put(dst, "into/grown.txt", b"short", sha=False)
    _put(dst, "into/extra #%.txt", b"only at the destination")
    _put(dst, "into/kept.tmp", b"excluded: never deleted")
    out = tmp_path / "plan.json"

    proc = run("migrate", "plan", "src:/data", "dst:/into", "--delete", "--exclude", "*.tmp",
               "-o", str(out), config=cfg, check=True)
    lines = [" ".join(line.split()) for line in proc.stdout.decode().splitlines()]
    assert lines[:4] == ["copy 1 object 5 B", "overwrite 2 objects 14 B",
                         "skip 2 objects 22 B", "delete 1 object 23 B"], lines
    # priced from the shipped tables (file:// is your own store: free)
    assert lines[4].startswith("estimated cost: ") and lines[6].startswith("plan written to")
    # no catalog: the time estimate comes from a probe of both stores, which leaves nothing
    assert lines[5].startswith("estimated time: ") and " at 8 parallel (source " in lines[5]
    assert not [o.key for o in dst.list("") if ".omnifs/" in o.key]

    plan = load(out)
    assert {e.key: e.action for e in plan.entries} == {
        "new file.txt": "copy", ODD: "skip", "same.txt": "skip", "changed.txt": "overwrite",
        "grown.txt": "overwrite", "extra #%.txt": "delete"}
    why = {e.key: e.reason for e in plan.entries}
    assert (why["new file.txt"], why["grown.txt"], why["extra #%.txt"]) == (
        "missing", "differs by size", "extra")
    # equal sizes are decided by a checksum (ours where the listing has it, else native;
    # the S3 listing carries no user metadata), never by mtime
    for key, verdict in ((ODD, "same"), ("same.txt", "same"), ("changed.txt", "differs")):
        assert why[key] in {f"{verdict} by {c}" for c in ("sha256", "md5", "crc32c")}, why
    assert (plan.src.given, plan.src.provider, plan.src.key) == ("src:/data", "src", "data")
    assert (plan.dst.provider, plan.dst.key) == ("dst", "into")
    assert plan.exclude == ("*.tmp",) and plan.delete and plan.mode == "copy"
    assert plan.catalog_id is None  # the config's catalog does not exist
    assert plan.estimate is not None and plan.estimate["currency"] == "USD"
    assert plan.time_estimate is not None and plan.time_estimate["objects"] == 4
    assert plan.time_estimate["bytes"] == 19 and plan.time_estimate["parallel"] == 8
    assert lines[4].startswith(f"estimated cost: {plan.estimate['total']} USD")
    s = plan.summary
    assert (s["copy"]["objects"], s["copy"]["bytes"]) == (1, 5)
    assert (s["overwrite"]["objects"], s["overwrite"]["bytes"]) == (2, 14)
    assert (s["skip"]["objects"], s["skip"]["bytes"]) == (2, 22)
    assert (s["delete"]["objects"], s["delete"]["bytes"]) == (1, 23)
    assert not any(e.delete_source for e in plan.entries)
    # the listings' tiers reach the summary (a local file has none: "-")
    tiers = {e.src_tier for e in plan.entries if e.action != "delete"}
    assert len(tiers) == 1 and (None in tiers) == (src.location.scheme == "file"), tiers
    assert s["overwrite"]["source_tiers"] == {(tiers.pop() or "-"): {"objects": 2, "bytes": 14}}

    # nothing changed in either store
    assert dst.read_bytes("into/extra #%.txt") == b"only at the destination"
    assert not dst.exists("into/new file.txt")


@pytest.mark.parametrize("pair", [("s3", "az")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_move_plan_and_the_catalog_id(pair, tmp_path):
    cfg, src, dst = pair
    catalog = tmp_path / "catalog.db"
    cat = Catalog(catalog)
    cid = cat.catalog_id()
    cat.close()
    cfg.write_text(cfg.read_text() + f'\n[catalog]\nurl = "sqlite:///{catalog}"\n')
    _put(src, "a/b/c.txt", b"one")
    _put(src, "a/d.txt", b"two!")
    _put(dst, "a/d.txt", b"two!")
    out = tmp_path / "move.json"
    proc = run("migrate", "plan", "src:/a", "dst:/a", "--mode", "move", "-o", str(out),
               config=cfg, check=True)
    assert "deleted from SRC once verified" in proc.stdout.decode()
    plan = load(out, catalog_id=cid)
    assert {(e.key, e.action, e.delete_source) for e in plan.entries} == {
        ("b/c.txt", "copy", True), ("d.txt", "skip", True)}
    assert plan.summary["delete_source"] == {
        "objects": 2, "bytes": 7, "source_tiers": {"STANDARD": {"objects": 2, "bytes": 7}}}

    shown = run("migrate", "show", str(out), config=cfg, check=True).stdout.decode()
    assert shown.startswith("move src:/a -> dst:/a, planned "), shown
    assert "deleted from SRC once verified" in shown
    # one edited byte: refused in one line, status 2
    out.write_bytes(out.read_bytes().replace(b'"size":3', b'"size":9', 1))
    edited = run("migrate", "show", str(out), config=cfg)
    assert edited.returncode == 2
    assert "was edited or damaged" in one_line_error(edited)
    missing = run("migrate", "show", str(tmp_path / "none.json"), config=cfg)
    assert missing.returncode == 2
    assert "cannot read plan" in one_line_error(missing)


def test_bad_input_is_one_line_and_status_2(make_settings, tmp_path):
    a = make_settings("s3", name="one")
    b = make_settings("file", name="local")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    out = str(tmp_path / "p.json")
    cases = [
        (["one:/x", "one:/x/"], "same place"),
        (["one:/x", "one:/x/y", "--mode", "move"], "overlap"),
        (["one:/x/y", "one:/x", "--mode", "move"], "overlap"),
        (["nosuch:/x", "one:/y"], "unknown provider 'nosuch'"),
        (["one:/x", "bogus://b/y"], "unknown URI scheme"),
    ]
    for argv, message in cases:
        proc = run("migrate", "plan", *argv, "-o", out, config=cfg)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert message in one_line_error(proc), argv
    # a sibling with a common string prefix is not inside: planned fine
    ok = run("migrate", "plan", "one:/x", "one:/xy", "--mode", "move", "-o", out, config=cfg)
    assert ok.returncode == 0, ok.stderr
    bad_dir = run("migrate", "plan", "one:/x", "local:/y", "-o", str(tmp_path / "no/p.json"),
                  config=cfg)
    assert bad_dir.returncode == 2
    assert "no such directory" in one_line_error(bad_dir)


@pytest.mark.parametrize("pair", [("file", "s3")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_time_estimate_probes_records_and_reuses(pair, tmp_path):
    cfg, src, dst = pair
    for i in range(3):
        _put(src, f"t/{i}.bin", bytes([i]) * (300_000 + i))
    out = tmp_path / "plan.json"
    # no catalog and --no-probe: no figure anywhere, said in one line, the plan still written
    bare = run("migrate", "plan", "src:/t", "dst:/t", "--no-probe", "-o", str(out),
               config=cfg, check=True)
    assert bare.stderr.decode().splitlines() == [
        "omnifs: no time estimate: no throughput recorded for src (the source) and --no-probe "
        "was given"]
    assert load(out).time_estimate is None

    catalog = tmp_path / "catalog.db"
    Catalog(catalog).close()
    cfg.write_text(cfg.read_text() + f'\n[catalog]\nurl = "sqlite:///{catalog}"\n')
    probed = run("migrate", "plan", "src:/t", "dst:/t", "--parallel", "3", "-o", str(out),
                 config=cfg, check=True)
    line = [x for x in probed.stdout.decode().splitlines() if x.startswith("estimated time")]
    assert len(line) == 1 and " at 3 parallel (source " in line[0], probed.stdout
    first = load(out).time_estimate
    assert first is not None and (first["objects"], first["bytes"]) == (3, 900_003)
    assert not [o.key for o in dst.list("") if ".omnifs/" in o.key]  # the probe was deleted
    # the probe's samples are in the catalog: read 8 MiB at most, one 1-4 MiB write
    cat = Catalog(catalog)
    try:
        reads = cat.health.transfers("src", "read", 0)
        writes = cat.health.transfers("dst", "write", 0)
        assert 1 <= len(reads) <= 16 and sum(t.nbytes for t in reads) <= 8 * 2**20
        assert len(writes) == 1 and 2**20 <= writes[0].nbytes <= 4 * 2**20
        assert cat.health.samples("dst", 0, requests_only=True)  # head and delete round trips
    finally:
        cat.close()
    # now recorded: --no-probe estimates from the catalog's figures
    again = run("migrate", "plan", "src:/t", "dst:/t", "--no-probe", "-o", str(out),
                config=cfg, check=True)
    assert "estimated time: " in again.stdout.decode() and not again.stderr
    second = load(out).time_estimate
    assert second is not None
    assert (second["read_bytes_per_s"], second["write_bytes_per_s"]) == (
        first["read_bytes_per_s"], first["write_bytes_per_s"])
    shown = run("migrate", "show", str(out), config=cfg, check=True).stdout.decode()
    assert "estimated time: " in shown


def test_the_daemon_records_each_copy_as_a_write_transfer(make_settings, tmp_path):
    """The replication worker times every copy it makes: the figures a plan estimates from."""
    from omnifs.migration.speed import recorded
    from tests.integration.test_daemon import drained, make_config, run_daemon_until, write_many

    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    cfg = make_config(tmp_path, [a, b])
    cat = Catalog(cfg.catalog_path())
    pa = open_provider(a)
    try:
        files = write_many(cat, pa, ["two"], 12, size=50_000)
        run_daemon_until(cfg, lambda c: drained(2)(c) and len(
            c.health.transfers("two", "write", 0)) == len(files))
        moved = cat.health.transfers("two", "write", 0)
        assert sorted(t.nbytes for t in moved) == sorted(len(v) for v in files.values())
        assert all(t.seconds > 0 for t in moved)
        assert cat.health.transfers("one", "write", 0) == []
        assert recorded(cat, "two", "write").rate is not None
    finally:
        pa.close()
        cat.close()
