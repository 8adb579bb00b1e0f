"""``omnifs migrate run`` over real servers (moto, the GCS emulator, Azurite, file): mixed
pairs with odd names, kill -9 and rerun (every object written once, counted by a wrapper),
failures and their retry, a store going down, move, --max-cost, --bandwidth, bad input.

Run as a script (``python tests/integration/test_migrate_run.py CONFIG PLAN LOG``) it is the
child the kill -9 test kills: the engine with a slow destination that logs every write.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from omnifs.catalog import Catalog
from omnifs.catalog.migrations import migration_id
from omnifs.config import load_config
from omnifs.copy_options import Options
from omnifs.migration.costing import plan_estimate
from omnifs.migration.plan import plan_migration
from omnifs.migration.planfile import MigrationPlan, Place, load
from omnifs.migration.run import MigrationRun, RunOptions
from omnifs.migration.saved import one_runner
from omnifs.prices import PriceOverride
from omnifs.providers import META_SHA256, InvalidInput, open_provider
from omnifs.providers.faulty import FaultyProvider
from omnifs.targets import Resolver
from tests.cli import one_line_error, run, write_config

PAIRS = [("s3", "gs"), ("gs", "az"), ("az", "file"), ("file", "s3")]
ODD = ["deep/er/ünï #1 %41.bin", "a b/c%20d#e.txt", "top.txt"]
MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def _put(p, key: str, data: bytes) -> None:
    p.write_bytes(key, data, metadata={META_SHA256: hashlib.sha256(data).hexdigest()})


def _mid(plan_path: Path) -> str:
    return migration_id(load(plan_path).to_json()["checksum"])


def _catalog(cfg: Path) -> Catalog:
    return Catalog(load_config(cfg).catalog_path())


@pytest.mark.parametrize("pair", PAIRS, indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_plan_and_run_across_stores(pair, tmp_path):
    cfg, src, dst = pair
    want = {key: f"{key} ".encode() * (i + 3) for i, key in enumerate(ODD)}
    for key, data in want.items():
        _put(src, f"data/x/{key}", data)
    _put(src, "data/x/changed.bin", b"new bytes")
    _put(dst, "into/y/changed.bin", b"old one!!")
    _put(dst, "into/y/extra #%.txt", b"only here")
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/data/x", "dst:/into/y", "--delete", "-o", str(plan),
        config=cfg, check=True)

    proc = run("migrate", "run", str(plan), "--parallel", "3", config=cfg)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    assert "copied 4 objects" in err and "1 deleted, 0 failed, 0 pending" in err, err
    for key, data in want.items():
        assert dst.read_bytes(f"into/y/{key}") == data
    assert dst.read_bytes("into/y/changed.bin") == b"new bytes"
    assert not dst.exists("into/y/extra #%.txt")
    # the replaced and the deleted objects are kept for rollback, as the CONTRACT says
    mid = _mid(plan)
    assert dst.read_bytes(f"into/y/.omnifs/migrations/{mid}/changed.bin") == b"old one!!"
    assert dst.read_bytes(f"into/y/.omnifs/migrations/{mid}/extra #%.txt") == b"only here"
    cat = _catalog(cfg)
    try:
        m = cat.migrations.get(mid)
        assert m is not None and m.state == "done" and m.finished_at and m.started_at
        items = {i.key: i for i in cat.migrations.items(mid)}
        assert all(i.state == "done" for i in items.values())
        assert items["changed.bin"].saved == f"copy:into/y/.omnifs/migrations/{mid}/changed.bin"
        assert items["top.txt"].sha256 == hashlib.sha256(want["top.txt"]).hexdigest()
        usage = cat.migrations.usage(mid)
        assert usage["dst"]["copy_requests"] >= 2  # the two objects kept aside
        assert usage["dst"]["delete_requests"] == 1
    finally:
        cat.close()

    again = run("migrate", "run", str(plan), "--progress=json", config=cfg)
    assert again.returncode == 0, again.stderr
    assert "copied 0 objects" in again.stderr.decode()
    assert '"final": true' in again.stdout.decode().splitlines()[-1]


class _Counting(FaultyProvider):
    """A slow destination that logs each write as it begins and once it completed (fsync'd)."""

    def __init__(self, inner, log: str, **kw):
        super().__init__(inner, **kw)
        self.log = log

    def _note(self, what: str, key: str) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{what}\t{key}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, key, stream, size=None, metadata=None, content_type=None, **cond):
        self._note("begin", key)
        out = super().write(key, stream, size, metadata, content_type, **cond)
        self._note("end", key)
        return out


def _child(config: str, plan_path: str, log: str) -> int:
    cfg = load_config(config)
    cat = Catalog(cfg.catalog_path())
    plan = load(plan_path)
    with Resolver(cfg) as r:
        src = r.resolve(plan.src.given).provider
        dst = _Counting(r.resolve(plan.dst.given).provider, log, latency=0.08)
        result = MigrationRun(cat, plan, src, dst, RunOptions(parallel=3)).run()
    cat.close()
    return 0 if result.ok else 1


def test_kill_9_then_rerun_copies_every_object_once(make_settings, tmp_path):
    a, b = make_settings("file", name="src"), make_settings("s3", name="dst")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    src, dst = open_provider(a), open_provider(b)
    want = {f"d{i % 3}/obj #{i}.bin": os.urandom(1000 + i) for i in range(60)}
    for key, data in want.items():
        _put(src, f"t/{key}", data)
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/t", "dst:/u", "-o", str(plan), config=cfg, check=True)
    mid = _mid(plan)
    log = tmp_path / "writes.log"
    argv = [sys.executable, str(Path(__file__)), str(cfg), str(plan), str(log)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    cat = _catalog(cfg)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and child.poll() is None:
            counts = cat.migrations.counts(mid) if cat.migrations.get(mid) else {}
            done = counts.get("copy", {}).get("done", {}).get("objects", 0)
            if done >= 25:
                break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert 25 <= done < 60
        m = cat.migrations.get(mid)
        assert m is not None and m.state == "running"

        again = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr
        m = cat.migrations.get(mid)
        assert m is not None and m.state == "done"
        assert all(i.state == "done" for i in cat.migrations.items(mid))
    finally:
        cat.close()
    notes = [line.split("\t") for line in log.read_text().splitlines()]
    begun = Counter(k for what, k in notes if what == "begin")
    ended = Counter(k for what, k in notes if what == "end")
    assert set(begun) == {f"u/{k}" for k in want}
    # every object was written once: a second write only of one whose first never ended
    # (in flight at the kill), and at most one per worker
    assert max(ended.values()) == 1
    again_written = [k for k, n in begun.items() if n > 1]
    assert len(again_written) <= 3 and max(begun.values()) <= 2, again_written
    # an object whose write landed as the child died (its "end" lost with it) was found
    # complete at the destination and not written again
    assert all(ended[k] == 1 or begun[k] == 1 for k in begun)
    for key, data in want.items():
        assert dst.read_bytes(f"u/{key}") == data
    src.close()
    dst.close()


def test_a_started_item_whose_copy_completed_is_not_copied_again(make_provider, tmp_path):
    src, inner = make_provider("file", name="src"), make_provider("file", name="dst")
    dst = FaultyProvider(inner)
    for i in range(5):
        _put(src, f"a/{i}.bin", os.urandom(3000))
    plan = _file_plan(src, dst)
    mid = migration_id(plan.to_json()["checksum"])
    cat = Catalog(tmp_path / "c.db")
    opts = RunOptions(parallel=2, copy=Options(server_side=False))
    assert MigrationRun(cat, plan, src, dst, opts).run().copied == 5
    # what kill -9 leaves: three copies complete whose "done" was not committed yet,
    # one begun whose upload never completed
    cat.migrations.update_items(mid, [(f"{i}.bin", {"state": "pending", "finished_at": None})
                                      for i in range(4)])
    inner.delete("b/3.bin")
    cat.migrations.set_state(mid, "running")
    dst.calls.clear()
    with one_runner(cat, mid), pytest.raises(InvalidInput, match="run by another process"):
        MigrationRun(cat, plan, src, dst, opts).run()  # at the same time as another run
    assert dst.calls["write"] == 0
    again = MigrationRun(cat, plan, src, dst, opts).run()
    assert (again.resumed, again.copied, again.state) == (3, 1, "done")
    assert dst.calls["write"] == 1
    assert inner.read_bytes("b/3.bin") == src.read_bytes("a/3.bin")
    cat.close()


def test_failed_objects_exit_1_and_the_rerun_retries_only_those(pair_s3_gs, tmp_path):
    cfg, src, dst = pair_s3_gs
    for i in range(6):
        _put(src, f"f/k{i}.txt", b"x" * (i + 1))
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/f", "dst:/g", "-o", str(plan), config=cfg, check=True)
    src.delete("f/k2.txt")  # gone since planning
    src.delete("f/k4.txt")
    proc = run("migrate", "run", str(plan), "--attempts", "2", config=cfg)
    assert proc.returncode == 1
    err = proc.stderr.decode().splitlines()
    failed = [line for line in err if line.startswith("omnifs: failed: ")]
    assert [line.split(": ")[2] for line in failed] == ["k2.txt", "k4.txt"], err
    assert any("copied 4 objects" in line and "2 failed" in line for line in err), err
    cat = _catalog(cfg)
    try:
        mid = _mid(plan)
        bad = cat.migrations.item(mid, "k2.txt")
        assert bad is not None and bad.state == "failed" and bad.attempts == 2 and bad.error
        assert "\n" not in bad.error
        assert cat.migrations.get(mid).state == "incomplete"
    finally:
        cat.close()
    _put(src, "f/k2.txt", b"xxx")
    _put(src, "f/k4.txt", b"xxxxx")
    dst.delete("g/k0.txt")  # a done object is not looked at again
    again = run("migrate", "run", str(plan), config=cfg)
    assert again.returncode == 0, again.stderr
    assert "copied 2 objects" in again.stderr.decode()
    assert not dst.exists("g/k0.txt")
    assert dst.read_bytes("g/k4.txt") == b"xxxxx"


@pytest.fixture
def pair_s3_gs(make_settings, tmp_path):
    a, b = make_settings("s3", name="src"), make_settings("gs", name="dst")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    pa, pb = open_provider(a), open_provider(b)
    yield cfg, pa, pb
    pa.close()
    pb.close()


def test_move_deletes_sources_only_after_verification(make_settings, tmp_path):
    a, b = make_settings("s3", name="src"), make_settings("az", name="dst")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    src, dst = open_provider(a), open_provider(b)
    _put(src, "m/new #1.txt", b"new")
    _put(src, "m/sub/same.txt", b"same")
    _put(dst, "n/sub/same.txt", b"same")
    _put(src, "m/plain.txt", b"plain")
    dst.write_bytes("n/plain.txt", b"plain")  # no SHA-256 recorded: read to verify it
    _put(src, "m/tampered.txt", b"1234")
    _put(dst, "n/tampered.txt", b"1234")
    plan = tmp_path / "move.json"
    run("migrate", "plan", "src:/m", "dst:/n", "--mode", "move", "-o", str(plan),
        config=cfg, check=True)
    _put(dst, "n/tampered.txt", b"4321")  # after planning: no longer the source's bytes
    proc = run("migrate", "run", str(plan), "--attempts", "1", config=cfg)
    assert proc.returncode == 1
    assert "failed: tampered.txt" in proc.stderr.decode()
    assert "moved: 3 source objects deleted" in proc.stderr.decode()
    assert not src.exists("m/new #1.txt") and not src.exists("m/sub/same.txt")
    assert not src.exists("m/plain.txt") and dst.read_bytes("n/plain.txt") == b"plain"
    assert dst.read_bytes("n/new #1.txt") == b"new"
    assert src.read_bytes("m/tampered.txt") == b"1234"  # kept: its copy is not verified
    cat = _catalog(cfg)
    try:
        mid = _mid(plan)
        items = {i.key: i for i in cat.migrations.items(mid)}
        assert items["new #1.txt"].verified == "ok" and items["new #1.txt"].source_deleted
        assert items["sub/same.txt"].verified == "ok" and items["sub/same.txt"].source_deleted
        assert items["tampered.txt"].verified == "mismatch"
        assert not items["tampered.txt"].source_deleted
    finally:
        cat.close()
    src.close()
    dst.close()


def test_max_cost_is_refused_before_starting(make_settings, tmp_path):
    a, b = make_settings("s3", name="src"), make_settings("gs", name="dst")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b],
                       "\n[prices.src]\negress_internet_per_gb = 100000\n")
    src, dst = open_provider(a), open_provider(b)
    _put(src, "c/one.bin", b"z" * 100_000)
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/c", "dst:/c", "-o", str(plan), config=cfg, check=True)
    total = load(plan).estimate["total"]
    proc = run("migrate", "run", str(plan), "--max-cost", "1", config=cfg)
    assert proc.returncode == 2
    assert one_line_error(proc) == (f"omnifs: error: estimated {total} USD exceeds --max-cost 1: "
                                    "nothing done")
    assert not dst.exists("c/one.bin")
    cat = _catalog(cfg)
    try:
        assert cat.migrations.get(_mid(plan)) is None
    finally:
        cat.close()
    src.close()
    dst.close()


def _file_plan(src, dst, mode: str = "copy", estimate: bool = True) -> MigrationPlan:
    entries = plan_migration(src, "a", dst, "b", mode=mode)
    plan = MigrationPlan(src=Place("src:/a", src.name, src.settings.uri, "a"),
                         dst=Place("dst:/b", dst.name, dst.settings.uri, "b"), mode=mode,
                         entries=entries)
    if estimate:
        plan.estimate = plan_estimate(plan.summary, src.settings, dst.settings, {}).as_dict()
    return plan


def test_max_cost_stops_the_run_before_exceeding_it(make_provider, tmp_path):
    src, dst = make_provider("file", name="src"), make_provider("file", name="dst")
    for i in range(5):
        _put(src, f"a/{i}.bin", os.urandom(MiB))
    plan = _file_plan(src, dst)
    # 1 USD per MiB read from src
    expensive = {"src": PriceOverride(prices={"egress_internet_per_gb": Decimal(1024)})}
    cat = Catalog(tmp_path / "c.db")
    opts = RunOptions(parallel=3, max_cost=Decimal("2.5"), copy=Options(server_side=False))
    result = MigrationRun(cat, plan, src, dst, opts, overrides=expensive).run()
    assert result.copied == 2 and result.pending == 3 and result.state == "incomplete"
    assert result.stopped and result.stopped.startswith("stopped before exceeding --max-cost 2.5")
    with pytest.raises(InvalidInput, match="no cost estimate"):
        MigrationRun(cat, _file_plan(src, dst, estimate=False), src, dst,
                     RunOptions(max_cost=Decimal(10))).run()
    cat.close()


def test_bandwidth_limits_all_workers_together(make_provider, tmp_path):
    src, dst = make_provider("file", name="src"), make_provider("file", name="dst")
    for i in range(4):
        _put(src, f"a/{i}.bin", os.urandom(MiB))
    cat = Catalog(tmp_path / "c.db")
    opts = RunOptions(parallel=4, bandwidth=MiB, copy=Options(server_side=False))
    t0 = time.monotonic()
    result = MigrationRun(cat, _file_plan(src, dst), src, dst, opts).run()
    took = time.monotonic() - t0
    assert result.ok and result.copied == 4
    assert 3.3 <= took <= 15, took  # 4 MiB at 1 MiB/s (generous above: a loaded machine)
    cat.close()


def test_a_store_down_mid_run_pauses_and_resumes(make_provider, tmp_path):
    src = make_provider("file", name="src")
    inner = make_provider("s3", name="dst")
    dst = FaultyProvider(inner, latency=0.1)
    for i in range(30):
        _put(src, f"a/{i:02}.bin", os.urandom(2000))
    plan = _file_plan(src, dst)
    cat = Catalog(tmp_path / "c.db")

    def outage():
        time.sleep(0.3)
        dst.outage = True
        time.sleep(2.0)
        dst.outage = False

    flip = threading.Thread(target=outage)
    flip.start()
    opts = RunOptions(parallel=4, attempts=1, wait_down=30,
                      copy=Options(retries=1, backoff=0.05))
    result = MigrationRun(cat, plan, src, dst, opts).run()
    flip.join()
    assert result.ok, result
    assert result.elapsed >= 2.0  # it waited for the store to come back
    mid = migration_id(plan.to_json()["checksum"])
    assert all(i.state == "done" and i.attempts == 0 for i in cat.migrations.items(mid))
    for i in range(30):
        assert inner.read_bytes(f"b/{i:02}.bin") == src.read_bytes(f"a/{i:02}.bin")

    # down for longer than --wait-down: stopped in one line, the rest pending
    for i in range(30, 40):
        _put(src, f"a/{i:02}.bin", b"more")
    plan2 = _file_plan(src, dst)
    dst.outage = True
    opts = RunOptions(parallel=2, attempts=1, wait_down=0.5,
                      copy=Options(retries=0, backoff=0.05))
    result = MigrationRun(cat, plan2, src, dst, opts).run()
    assert result.state == "incomplete" and result.pending == 10 and not result.failed
    assert result.stopped and "unreachable for 0.5s" in result.stopped
    assert "\n" not in result.stopped
    dst.outage = False
    cat.close()


def test_bad_input_is_one_line_and_status_2(pair_s3_gs, tmp_path):
    cfg, src, dst = pair_s3_gs
    _put(src, "p/k.txt", b"k")
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/p", "dst:/q", "-o", str(plan), config=cfg, check=True)
    cases = [
        (["--parallel", "0"], "--parallel 0: must be at least 1"),
        (["--bandwidth", "fast"], "--bandwidth 'fast' is not a rate"),
        (["--max-cost", "lots"], "--max-cost 'lots' is not an amount"),
    ]
    for extra, message in cases:
        proc = run("migrate", "run", str(plan), *extra, config=cfg)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert message in one_line_error(proc), extra
    # a plan made for another catalog
    other = tmp_path / "other.db"
    c = Catalog(other)
    c.close()
    cfg2 = tmp_path / "other.toml"
    cfg2.write_text(cfg.read_text() + f'\n[catalog]\nurl = "sqlite:///{other}"\n')
    cfg2.chmod(0o600)
    plan2 = tmp_path / "plan2.json"
    run("migrate", "plan", "src:/p", "dst:/q", "-o", str(plan2), config=cfg2, check=True)
    proc = run("migrate", "run", str(plan2), config=cfg)
    assert proc.returncode == 2 and "belongs to catalog" in one_line_error(proc)
    # an edited plan
    plan.write_bytes(plan.read_bytes().replace(b'"size":1', b'"size":2', 1))
    proc = run("migrate", "run", str(plan), config=cfg)
    assert proc.returncode == 2 and "was edited or damaged" in one_line_error(proc)
    # a provider the config no longer has
    run("migrate", "plan", "src:/p", "dst:/q", "-o", str(plan), config=cfg, check=True)
    lone = write_config(tmp_path / "lone.toml", [load_config(cfg).providers["src"]])
    proc = run("migrate", "run", str(plan), config=lone)
    assert proc.returncode == 2 and "unknown provider 'dst'" in one_line_error(proc)
    assert not dst.exists("q/k.txt")


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
