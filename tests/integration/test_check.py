"""``omnifs check`` against every kind of store: what it finds, its exit codes, --repair.

Files are recorded as the mount's publisher records them and replicated with
the executor, so every store holds them; then one store is changed behind
omnifs's back with that store's own calls and ``omnifs check`` runs as the
CLI (in-process ``main``, real servers).
"""

from __future__ import annotations

import hashlib
import json
import os
import random

import pytest

from omnifs.catalog import Catalog
from omnifs.cli import main as cli
from omnifs.config import parse_config
from omnifs.layout import long_key, placed_meta, write_sidecar
from omnifs.providers import META_SHA256, open_provider
from omnifs.replication import drain
from tests import servers as S
from tests.integration.test_daemon import FAST_DAEMON, _write_toml, table_of, write_file

#: kinds whose listing carries the objects' user metadata (their SHA-256)
LISTS_METADATA = {"gs", "az", "file"}


def setup(make_settings, tmp_path, kind: str, files: dict[str, bytes]):
    """(config path, catalog, provider under test, the other provider); every file on both."""
    a = make_settings(kind, name="x")
    b = make_settings("file", name="local")
    raw = {"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
           "cache": {"dir": str(tmp_path / "cache")},
           "replication": {"copies": 2},
           "providers": {"x": table_of(a), "local": table_of(b)},
           "daemon": FAST_DAEMON, "metrics": {"port": 0}}
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    cat = Catalog(cfg.catalog_path())
    pa, pb = open_provider(a), open_provider(b)
    for path, data in files.items():
        write_file(cat, pb, path, data, ["x"])
    res = drain(cat, {"x": pa, "local": pb})
    assert res.failed == 0 and cat.work.pending_count() == 0
    return conf, cat, pa, pb


def check(conf, *args: str, capsys) -> tuple[int, str]:
    code = cli(["check", "--config", str(conf), *args])
    return code, capsys.readouterr().out


def check_json(conf, *args: str, capsys) -> tuple[int, dict]:
    code, out = check(conf, "--json", *args, capsys=capsys)
    return code, json.loads(out)


def found(report: dict) -> set[tuple[str, str, str]]:
    return {(p["kind"], p["provider"], p.get("path") or p["key"]) for p in report["problems"]}


@pytest.mark.parametrize("kind", S.KINDS)
def test_check_finds_every_difference_and_repair_makes_it_clean(kind, make_settings, tmp_path,
                                                                capsys):
    rng = random.Random(13)
    files = {f"d/{n}.bin": rng.randbytes(3000 + i) for i, n in enumerate(
        ("gone", "short", "rotten", "edited", "fine"))}
    conf, cat, px, _ = setup(make_settings, tmp_path, kind, files)

    code, out = check(conf, capsys=capsys)
    assert code == 0, out
    assert "clean: 2 stores, 10 replicas match the catalog" in out

    # behind omnifs's back, on store x
    px.delete("d/gone.bin")
    px.write_bytes("stray.txt", b"put here by another tool\n")
    px.write_bytes("d/short.bin", b"truncated")                         # another size
    meta = px.head("d/rotten.bin").metadata                             # same size, same claim
    px.write_bytes("d/rotten.bin", os.urandom(len(files["d/rotten.bin"])), meta)
    edited = os.urandom(len(files["d/edited.bin"]))                     # same size, own claim
    px.write_bytes("d/edited.bin", edited, dict(meta, **{
        META_SHA256: hashlib.sha256(edited).hexdigest()}))

    code, report = check_json(conf, capsys=capsys)
    assert code == 1
    expect = {("missing", "x", "d/gone.bin"), ("extra", "x", "stray.txt"),
              ("wrong-size", "x", "d/short.bin")}
    if kind in LISTS_METADATA:
        expect.add(("wrong-hash", "x", "d/edited.bin"))     # the listing names its SHA-256
    assert found(report) == expect
    x = next(s for s in report["stores"] if s["provider"] == "x")
    assert x["method"] == ("sha256" if kind in LISTS_METADATA else "size")
    assert x["claims"] == 5 and x["root_missing"] is False

    code, out = check(conf, capsys=capsys)
    assert code == 1
    assert "missing     x  d/gone.bin" in out
    assert "wrong-size  x  d/short.bin: catalog 3001 B, store 9 B" in out
    if kind not in LISTS_METADATA:
        assert "compared by size only" in out

    code, report = check_json(conf, "--verify", capsys=capsys)
    assert code == 1
    assert found(report) == expect | {("wrong-hash", "x", "d/rotten.bin"),
                                      ("wrong-hash", "x", "d/edited.bin")}
    rotten = next(p for p in report["problems"] if p["key"] == "d/rotten.bin")
    assert rotten["source"] == "bytes"

    # scoped to one directory, and to one store
    code, report = check_json(conf, "d", "--provider", "local", capsys=capsys)
    assert code == 0 and report["problems"] == []
    code, report = check_json(conf, "/d/gone.bin", capsys=capsys)
    assert code == 1 and found(report) == {("missing", "x", "d/gone.bin")}

    code, out = check(conf, "--repair", "--verify", capsys=capsys)
    assert code == 1
    assert "repair: 4 copies queued" in out and "extra objects are left alone" in out
    assert cat.work.pending_count() == 4
    assert cli(["replicate", "--now", "--config", str(conf)]) == 0
    capsys.readouterr()
    px.delete("stray.txt")
    code, out = check(conf, "--verify", capsys=capsys)
    assert code == 0, out
    for path, data in files.items():
        assert px.read_bytes(path) == data


def test_check_bad_input_exits_2(make_settings, tmp_path, capsys):
    conf, *_ = setup(make_settings, tmp_path, "file", {"a.txt": b"a"})
    assert cli(["check", "--config", str(conf), "nowhere/at/all"]) == 2
    assert cli(["check", "--config", str(conf), "--provider", "nope"]) == 2
    assert cli(["check", "--config", str(conf), "--verify", "--checkers", "0"]) == 2
    err = capsys.readouterr().err
    assert "nowhere/at/all: not in the namespace" in err
    assert "no provider named 'nope'" in err
    assert err.count("\n") == 3 and "Traceback" not in err


def test_check_without_a_catalog_creates_none(tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    raw = {"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
           "providers": {"one": {"uri": f"file://{store}"}}}
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    assert cli(["check", "--config", str(conf)]) == 2
    assert "no catalog at" in capsys.readouterr().err
    assert not (tmp_path / "catalog.db").exists()


def delete_bucket(kind: str, endpoint: str, bucket: str) -> None:
    """Empty and delete a bucket/container with the store's own SDK."""
    if kind in ("s3", "minio"):
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="t",
                          aws_secret_access_key="t", region_name="us-east-1")
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", ()):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
    elif kind == "gs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})
        client.bucket(bucket).delete(force=True)
    else:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(
            S.azure_connection_string(endpoint)).delete_container(bucket)


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az"])
def test_check_reports_a_missing_bucket_in_one_line(kind, servers, make_settings, tmp_path,
                                                    capsys):
    conf, cat, px, _ = setup(make_settings, tmp_path, kind,
                             {f"f{i}.txt": b"x" * i for i in range(1, 4)})
    bucket = px.location.bucket
    delete_bucket(kind, servers[kind].endpoint, bucket)
    code, out = check(conf, "--repair", capsys=capsys)
    assert code == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("x "))
    assert f"'{bucket}' does not exist: all 3 replicas there are missing" in line
    assert "omnifs does not create buckets" in out
    assert "repair: 0 copies queued" in out and cat.work.pending_count() == 0
    S.create_bucket(kind, servers[kind].endpoint, bucket)
    code, out = check(conf, "--repair", capsys=capsys)
    assert code == 1 and "repair: 3 copies queued" in out
    assert cli(["replicate", "--now", "--config", str(conf)]) == 0
    capsys.readouterr()
    assert check(conf, capsys=capsys)[0] == 0


def test_check_of_an_unreachable_store_fails(tmp_path, capsys):
    (tmp_path / "store").mkdir()
    raw = {"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
           "providers": {"x": {"uri": "s3://nobody-home", "endpoint":
                               f"http://127.0.0.1:{S.free_port()}", "access_key": "t",
                               "secret_key": "t", "timeout": 2},
                         "local": {"uri": f"file://{tmp_path / 'store'}"}}}
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    Catalog(tmp_path / "catalog.db").close()
    code, out = check(conf, capsys=capsys)
    assert code == 1
    assert "x      s3    not checked:" in out and "1 store(s) not checked" in out


@pytest.mark.parametrize("kind", S.KINDS)
def test_an_orphaned_long_path_object_is_extra(kind, make_settings, tmp_path, capsys):
    """A long path's bytes under .omnifs/long/ that no file points at are reported; its
    sidecar and omnifs's other own objects are not."""
    long_path = "d/" + "n" * 300 + "/" + "m" * 1200
    conf, cat, px, _ = setup(make_settings, tmp_path, kind, {"a.txt": b"a"})
    orphan = long_key(long_path + "-gone")
    meta, sidecar = placed_meta(px, orphan, long_path + "-gone", {})
    px.write_bytes(orphan, b"lost bytes", meta)
    write_sidecar(px, orphan, sidecar)
    code, report = check_json(conf, capsys=capsys)
    assert code == 1
    assert found(report) == {("extra", "x", orphan)}
