"""The daemon's scrub against real servers: objects and buckets gone behind omnifs's back.

Every ``reconcile_interval`` the daemon lists each store once, compares it
with the catalog (omnifs/scrub.py, the comparison ``omnifs check`` runs),
restores what is missing and keeps ``omnifs status`` true. The stores are
changed with their own SDKs, never through omnifs.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import boto3
import pytest
import trio

from omnifs import replication
from omnifs.catalog import Catalog
from omnifs.cli import main as cli
from omnifs.cli.daemon import gather
from omnifs.config import parse_config
from omnifs.daemon.reconcile import Reconciler
from omnifs.providers import open_provider
from omnifs.replication import queue_replicate
from tests.integration.test_daemon import (
    FAST_DAEMON,
    _write_toml,
    drained,
    make_config,
    run_daemon_until,
    table_of,
    write_file,
    write_many,
)
from tests.mount.conftest import fuse_missing

INTERVAL = 2.0


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="t",
                        aws_secret_access_key="t", region_name="us-east-1")


def wipe_bucket(s3, bucket: str) -> int:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", ())]
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)
    return len(keys)


def raw_config(tmp_path, settings, **daemon) -> dict:
    return {"catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
            "cache": {"dir": str(tmp_path / "cache")},
            "replication": {"copies": 2, "write_quorum": 1},
            "providers": {s.name: table_of(s) for s in settings},
            "daemon": FAST_DAEMON | {"reconcile_interval": INTERVAL} | daemon,
            "metrics": {"port": 0}}


@pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))
def test_objects_wiped_behind_omnifs_are_counted_and_restored_within_one_interval(
        servers, make_settings, tmp_path):
    """Written through a real mount over moto + Azurite; moto's bucket emptied with boto3."""
    a, b = make_settings("s3", name="aws"), make_settings("az", name="azure")
    raw = raw_config(tmp_path, [a, b])
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    omnifs = [sys.executable, "-m", "omnifs"]
    subprocess.run([*omnifs, "mount", str(mnt), "--config", str(conf)], check=True,
                   capture_output=True, timeout=60)
    rng = random.Random(5)
    files = {f"w/d{i % 3}/f{i}.bin": rng.randbytes(1500 * i + 7) for i in range(12)}
    try:
        for path, data in files.items():
            (mnt / path).parent.mkdir(parents=True, exist_ok=True)
            (mnt / path).write_bytes(data)
    finally:
        subprocess.run([*omnifs, "umount", str(mnt)], check=False, capture_output=True,
                       timeout=60)
    run_daemon_until(cfg, drained(2))
    s3 = s3_client(servers["s3"].endpoint)
    assert wipe_bucket(s3, a.uri.split("/")[2]) == len(files)
    wiped = time.time()

    # the copies wait until status has been read: the count it gives is the scrub's
    gate = threading.Event()

    def executor(cat, providers, item):
        gate.wait(30)
        return replication.execute(cat, providers, item)

    seen: dict = {}

    async def watch(d, elapsed):
        seen.setdefault("ready", time.time())  # the daemon runs: its first interval begins
        if "status" in seen:
            return
        info = await trio.to_thread.run_sync(gather, cfg)
        last = info["scrubs"].get("aws")
        if last and last["started"] > wiped:
            seen["status"] = info
            gate.set()

    try:
        run_daemon_until(cfg, lambda c: "status" in seen and drained(2)(c), timeout=60,
                         during=watch, daemon_kw={"executor": executor})
    finally:
        gate.set()
    status = seen["status"]
    # the first scrub of aws began one interval after the daemon started (a loaded machine
    # may start it late, never early)
    assert status["scrubs"]["aws"]["started"] - seen["ready"] < INTERVAL + 1.5
    assert status["under_replicated"] == len(files)
    assert status["scrubs"]["aws"]["problems"]["missing"] == len(files)
    bucket = a.uri.split("/")[2]
    for path, data in files.items():
        assert s3.get_object(Bucket=bucket, Key=path)["Body"].read() == data, path


def test_a_deleted_bucket_is_reported_and_restored_once_it_exists_again(
        servers, make_settings, tmp_path, capsys):
    """moto restarted empty: the bucket itself is gone. `omnifs daemon`."""
    a, b = make_settings("s3", name="aws"), make_settings("file", name="local")
    raw = raw_config(tmp_path, [a, b])
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    cat = Catalog(cfg.catalog_path())
    pa, pb = open_provider(a), open_provider(b)
    files = write_many(cat, pb, ["aws"], 10)
    assert replication.drain(cat, {"aws": pa, "local": pb}).failed == 0
    bucket = a.uri.split("/")[2]
    s3 = s3_client(servers["s3"].endpoint)
    wipe_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)
    gone = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "omnifs", "daemon", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def status() -> dict:
        assert cli(["status", "--json", "--config", str(conf)]) == 0
        return json.loads(capsys.readouterr().out)

    try:
        deadline = time.monotonic() + 30
        while True:
            info = status()
            last = info["scrubs"].get("aws")
            if last and last["started"] > gone:
                break
            assert time.monotonic() < deadline and proc.poll() is None, "no scrub of aws"
            time.sleep(0.2)
        assert last["root_missing"] and f"bucket '{bucket}' does not exist" in last["error"]
        assert info["under_replicated"] == len(files)
        assert cli(["status", "--config", str(conf)]) == 0
        text = capsys.readouterr().out
        assert f"bucket '{bucket}' does not exist; its 10 replicas are lost" in text
        assert "under-replicated: 10" in text
        first = next(iter(files))
        assert cli(["replicas", first, "--config", str(conf)]) == 0
        assert f"aws stale v1 current {first}" in capsys.readouterr().out

        s3.create_bucket(Bucket=bucket)
        deadline = time.monotonic() + 3 * INTERVAL + 15
        for path, data in files.items():
            while True:
                try:
                    got = s3.get_object(Bucket=bucket, Key=path)["Body"].read()
                except s3.exceptions.NoSuchKey:
                    got = None
                if got == data:
                    break
                assert time.monotonic() < deadline, f"{path} not restored"
                time.sleep(0.2)
        while status()["under_replicated"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    log = err.decode()
    assert f"bucket '{bucket}' does not exist; 10 replica(s) there are lost" in log
    assert "Traceback" not in log


def test_the_scrub_lists_each_store_once_with_no_head_per_object(make_settings, tmp_path):
    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    cfg = make_config(tmp_path, [a, b])
    cat = Catalog(cfg.catalog_path())
    pa, pb = open_provider(a), open_provider(b)
    write_many(cat, pa, ["two"], 20)
    assert replication.drain(cat, {"one": pa, "two": pb}).failed == 0
    heads: list[str] = []
    pa.client.meta.events.register("provide-client-params.s3.HeadObject",
                                   lambda params, **kw: heads.append(params["Key"]))
    listings: list[tuple[str, bool]] = []
    for p in (pa, pb):
        real = p.list

        def counted(prefix="", recursive=True, metadata=True, _real=real, _name=p.name):
            listings.append((_name, metadata))
            return _real(prefix, recursive, metadata)
        p.list = counted
    rounds = {}

    async def one_round(d, elapsed):
        if "out" not in rounds:
            heads.clear()
            rounds["out"] = await Reconciler(d).round()
            rounds["heads"] = [k for k in heads if not k.endswith("health-probe")]

    run_daemon_until(cfg, lambda c: "out" in rounds, during=one_round,
                     daemon_kw={"providers": {"one": pa, "two": pb}})
    assert sorted(listings) == [("one", False), ("two", False)]
    assert rounds["heads"] == []


def test_the_scrub_reads_back_within_its_budget_and_rewrites_a_corrupt_object(
        make_settings, tmp_path):
    """S3's listing has no SHA-256: only reading the bytes back finds same-size corruption."""
    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    budget = 10_000
    cfg = make_config(tmp_path, [a, b], daemon={"reconcile_interval": 0.3,
                                                "scrub_verify_bytes": budget})
    cat = Catalog(cfg.catalog_path())
    pa, pb = open_provider(a), open_provider(b)
    files = write_many(cat, pb, ["one"], 8, size=4000)
    assert replication.drain(cat, {"one": pa, "two": pb}).failed == 0
    rotten = "d/sub1/f0005.bin"
    meta = pa.head(rotten).metadata
    pa.write_bytes(rotten, os.urandom(len(files[rotten])), meta)
    spent: list[int] = []

    async def watch(d, elapsed):
        last = await trio.to_thread.run_sync(lambda: gather(cfg)["scrubs"].get("one"))
        if last and (not spent or last["finished"] != spent[-1][0]):
            spent.append((last["finished"], last["verified_bytes"]))

    start = time.time()

    def all_verified(c: Catalog) -> bool:
        """Every replica on "one" read back (or rewritten) since the daemon started."""
        unverified = c.db.execute("SELECT count(*) FROM replicas WHERE provider = 'one' AND "
                                  "(verified_at < ? OR state != 'synced')",
                                  (start,)).fetchone()[0]
        return unverified == 0 and drained(2)(c)

    run_daemon_until(cfg, all_verified, timeout=60, during=watch)
    assert spent and max(n for _, n in spent) <= budget
    for path, data in files.items():
        assert pa.read_bytes(path) == data


def test_a_copy_parked_as_failed_does_not_block_the_repair(make_settings, tmp_path):
    """A replica left pending by an item that ran out of attempts (its bucket was gone, say)
    is no copy on its way: the repair step queues it again."""
    a, b = make_settings("file", name="one"), make_settings("file", name="two")
    cfg = make_config(tmp_path, [a, b])
    cat = Catalog(cfg.catalog_path())
    ino = write_file(cat, open_provider(a), "x.bin", b"hello", [])
    item = queue_replicate(cat, ino, "two", "x.bin", 1)
    (claimed,) = cat.work.claim("test", kinds=("replicate",))
    assert claimed.id == item
    cat.work.fail(item, "two: bucket 'b' does not exist", retry_in=None)
    run_daemon_until(cfg, lambda c: (c.replicas.under_replicated(2) == 0
                                     and c.work.pending_count() == 0), timeout=30)
    assert open_provider(b).read_bytes("x.bin") == b"hello"


def test_a_truncated_object_that_keeps_its_metadata_is_rewritten(make_settings, tmp_path):
    """The listing carries the SHA-256 claim (GCS): the size is still compared, and an object
    that claims the catalog's SHA-256 with other bytes is corrupt, never adopted."""
    a, b = make_settings("gs", name="one"), make_settings("file", name="two")
    cfg = make_config(tmp_path, [a, b], daemon={"reconcile_interval": 0.3})
    cat = Catalog(cfg.catalog_path())
    pa, pb = open_provider(a), open_provider(b)
    files = write_many(cat, pb, ["one"], 4)
    assert replication.drain(cat, {"one": pa, "two": pb}).failed == 0
    cut = "d/sub2/f0002.bin"
    pa.write_bytes(cut, files[cut][:100], pa.head(cut).metadata)
    run_daemon_until(cfg, lambda c: pa.read_bytes(cut) == files[cut] and drained(2)(c),
                     timeout=30)
    assert cat.ns.get(cat.ns.resolve(cut).id).version == 1  # rewritten, not adopted
