"""``omnifs migrate verify``, ``rollback`` and ``finalize`` over real servers (moto, the GCS
emulator, Azurite, file), through the real CLI and the Python API.

The state a run leaves is built by :func:`_run` the way the CONTRACT with
``migrate run`` says (saved copies under ``.omnifs/migrations/<id>/`` before a
replace, a move's source deleted only once its copy is verified). It is the
one place to swap for the real ``omnifs migrate run PLAN``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from omnifs.catalog import Catalog
from omnifs.config import load_config
from omnifs.migration.planfile import load
from omnifs.migration.sides import Sides, plan_id, saved_prefix
from omnifs.migration.verify import verify
from omnifs.providers import META_SHA256, open_provider
from omnifs.providers.faulty import FaultyProvider
from tests.cli import one_line_error, run, write_config

ODD = "deep er/ünï #1 %41.bin"


def _put(p, key: str, data: bytes) -> None:
    p.write_bytes(key, data, metadata={META_SHA256: hashlib.sha256(data).hexdigest()})


def _run(plan_path: Path, cfg: Path) -> None:
    """``omnifs migrate run PLAN``: the run whose state verify, rollback and finalize use."""
    done = run("--config", str(cfg), "migrate", "run", str(plan_path), "--progress", "none")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def pair(request, make_settings, tmp_path):
    """(config with a catalog, src provider, dst provider) for one (src kind, dst kind)."""
    src_kind, dst_kind = request.param
    a = make_settings(src_kind, name="src")
    b = make_settings(dst_kind, name="dst")
    catalog = tmp_path / "catalog.db"
    Catalog(catalog).close()
    cfg = write_config(tmp_path / "omnifs.toml", [a, b],
                       extra=f'\n[catalog]\nurl = "sqlite:///{catalog}"\n')
    pa, pb = open_provider(a), open_provider(b)
    yield cfg, pa, pb
    pa.close()
    pb.close()


def _catalog(cfg: Path) -> Catalog:
    return Catalog(load_config(cfg).catalog_path(), create=False)


def _item(cfg: Path, plan: Path, key: str):
    cat = _catalog(cfg)
    try:
        return cat.migrations.item(plan_id(load(plan)), key)
    finally:
        cat.close()


def _state(cfg: Path, plan: Path) -> str:
    cat = _catalog(cfg)
    try:
        return cat.migrations.get(plan_id(load(plan))).state
    finally:
        cat.close()


def _saved(p, plan: Path) -> list[str]:
    got = load(plan)
    return sorted(i.key for i in p.list(saved_prefix(got.dst.key, plan_id(got))))


def _out(proc) -> list[str]:
    return proc.stdout.decode().splitlines()


def _copy_tree(src, dst) -> dict[str, bytes]:
    """A source tree and a destination that differs from it in every way; the destination's
    objects before the run."""
    _put(src, "data/new file.txt", b"fresh")
    _put(src, f"data/{ODD}", b"odd and equal")
    _put(src, "data/changed.txt", b"aaaa-new")
    _put(src, "data/nested/a/b/c.txt", b"deep")
    before = {"into/" + ODD: b"odd and equal", "into/changed.txt": b"bbbb-old",
              "into/extra #%.txt": b"only at the destination"}
    for key, data in before.items():
        _put(dst, key, data)
    return before


PAIRS = [("s3", "gs"), ("az", "file"), ("file", "s3")]


@pytest.mark.parametrize("pair", PAIRS, indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_verify_then_rollback(pair, tmp_path):
    cfg, src, dst = pair
    before = _copy_tree(src, dst)
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/data", "dst:/into", "--delete", "-o", str(plan), config=cfg,
        check=True)
    _run(plan, cfg)
    assert dst.read_bytes("into/changed.txt") == b"aaaa-new"
    assert not dst.exists("into/extra #%.txt")
    assert len(_saved(dst, plan)) == 2  # the overwritten and the deleted object

    ok = run("migrate", "verify", str(plan), "--parallel", "3", config=cfg)
    assert ok.returncode == 0, ok.stderr
    assert _out(ok) == ["verified 5 objects: 5 ok"]
    assert _item(cfg, plan, "new file.txt").verified == "ok"

    # one byte changed, same size, metadata kept: only reading the bytes can tell
    info = dst.head("into/nested/a/b/c.txt")
    dst.write_bytes("into/nested/a/b/c.txt", b"deeP", metadata=info.metadata)
    dst.delete(f"into/{ODD}")
    bad = run("migrate", "verify", str(plan), config=cfg)
    assert bad.returncode == 1
    lines = _out(bad)
    assert lines[-1] == "verified 5 objects: 3 ok, 1 mismatch, 1 missing", lines
    assert "MISMATCH nested/a/b/c.txt: SHA-256 of the destination's bytes differs from " \
           "the source's" in lines
    assert f"MISSING  {ODD}: not at the destination" in lines
    assert _item(cfg, plan, "nested/a/b/c.txt").verified == "mismatch"
    assert _item(cfg, plan, ODD).verified == "missing"
    _put(dst, f"into/{ODD}", b"odd and equal")

    back = run("migrate", "rollback", str(plan), "--parallel", "2", config=cfg)
    assert back.returncode == 0, back.stderr
    assert _out(back) == ["rolled back: 2 new removed, 2 restored from saved copies, "
                          "0 sources restored, 0 failed; 2 saved copies deleted; "
                          "migration rolled_back"]
    # the destination as before the run, byte for byte; the source untouched
    assert {i.key: dst.read_bytes(i.key) for i in dst.list("")} == before
    assert dst.head("into/changed.txt").sha256 == hashlib.sha256(b"bbbb-old").hexdigest()
    assert src.read_bytes("data/changed.txt") == b"aaaa-new"
    assert _state(cfg, plan) == "rolled_back"
    assert _item(cfg, plan, "changed.txt").rolled_back
    again = run("migrate", "rollback", str(plan), config=cfg)
    assert again.returncode == 0, again.stderr
    assert "0 new removed, 0 restored" in _out(again)[-1]
    assert {i.key: dst.read_bytes(i.key) for i in dst.list("")} == before
    late = run("migrate", "finalize", str(plan), config=cfg)
    assert late.returncode == 2
    assert "was rolled back: there is nothing to finalize" in one_line_error(late)


def _move_tree(src, dst) -> None:
    _put(src, "m/one.txt", b"first object")
    _put(src, f"m/sub/{ODD}", b"second, odd name")
    _put(src, "m/same.txt", b"already there")
    _put(src, "m/changed.txt", b"new content")
    _put(dst, "n/same.txt", b"already there")
    _put(dst, "n/changed.txt", b"old content")


@pytest.mark.parametrize("pair", [("gs", "az"), ("s3", "file")], indirect=True,
                         ids=lambda p: f"{p[0]}-{p[1]}")
def test_move_rollback_restores_the_sources(pair, tmp_path):
    cfg, src, dst = pair
    _move_tree(src, dst)
    sources = {i.key: src.read_bytes(i.key) for i in src.list("m/")}
    plan = tmp_path / "move.json"
    run("migrate", "plan", "src:/m", "dst:/n", "--mode", "move", "-o", str(plan), config=cfg,
        check=True)
    _run(plan, cfg)
    assert list(src.list("m/")) == []
    assert _item(cfg, plan, "one.txt").source_deleted

    ok = run("migrate", "verify", str(plan), config=cfg)
    assert ok.returncode == 0, ok.stderr
    assert _out(ok) == ["verified 4 objects: 4 ok"]

    back = run("migrate", "rollback", str(plan), config=cfg)
    assert back.returncode == 0, back.stderr
    assert "4 sources restored, 0 failed" in _out(back)[0]
    assert {i.key: src.read_bytes(i.key) for i in src.list("m/")} == sources
    assert {i.key: dst.read_bytes(i.key) for i in dst.list("")} == {
        "n/same.txt": b"already there", "n/changed.txt": b"old content"}
    item = _item(cfg, plan, "one.txt")
    assert item.rolled_back and not item.source_deleted


@pytest.mark.parametrize("pair", [("s3", "az")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_move_finalize(pair, tmp_path):
    cfg, src, dst = pair
    _move_tree(src, dst)
    plan = tmp_path / "move.json"
    run("migrate", "plan", "src:/m", "dst:/n", "--mode", "move", "-o", str(plan), config=cfg,
        check=True)
    _run(plan, cfg)
    assert len(_saved(dst, plan)) == 1

    # an unfinished run, then an unverified object: refused in one line each
    cat = _catalog(cfg)
    mid = plan_id(load(plan))
    cat.migrations.set_state(mid, "incomplete")
    cat.migrations.update_items(mid, [("one.txt", {"state": "failed"})])
    cat.close()
    early = run("migrate", "finalize", str(plan), config=cfg)
    assert early.returncode == 2
    assert "the run is not finished (state incomplete: 0 pending, 1 failed)" in \
        one_line_error(early)
    cat = _catalog(cfg)
    cat.migrations.set_state(mid, "done")
    cat.migrations.update_items(mid, [("one.txt", {"state": "done", "verified": None})])
    cat.close()
    unverified = run("migrate", "finalize", str(plan), config=cfg)
    assert unverified.returncode == 2
    assert "1 moved object not verified: run `omnifs migrate verify` first" in \
        one_line_error(unverified)

    assert run("migrate", "verify", str(plan), config=cfg).returncode == 0
    done = run("migrate", "finalize", str(plan), config=cfg)
    assert done.returncode == 0, done.stderr
    assert _out(done) == ["finalized: 1 saved copy deleted; the run can no longer be "
                          "rolled back"]
    assert _saved(dst, plan) == [] and _state(cfg, plan) == "finalized"
    assert list(src.list("m/")) == []
    assert dst.read_bytes("n/changed.txt") == b"new content"
    refused = run("migrate", "rollback", str(plan), config=cfg)
    assert refused.returncode == 2
    assert "was finalized" in one_line_error(refused)
    assert run("migrate", "finalize", str(plan), config=cfg).returncode == 0


@pytest.mark.parametrize("pair", [("s3", "gs")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_edited_or_foreign_plans_are_refused(pair, tmp_path):
    cfg, src, dst = pair
    _put(src, "x/a.txt", b"abc")
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/x", "dst:/y", "-o", str(plan), config=cfg, check=True)
    edited = tmp_path / "edited.json"
    edited.write_bytes(plan.read_bytes().replace(b'"size":3', b'"size":4', 1))
    for step in ("verify", "rollback", "finalize"):
        proc = run("migrate", step, str(edited), config=cfg)
        assert proc.returncode == 2, step
        assert "was edited or damaged" in one_line_error(proc), step
    nothing = run("migrate", "rollback", str(plan), config=cfg)
    assert nothing.returncode == 2
    assert "no run of this plan is recorded" in one_line_error(nothing)
    # the same plan under a config whose catalog is another one
    other = tmp_path / "other.db"
    Catalog(other).close()
    foreign = tmp_path / "foreign.toml"
    foreign.write_text(cfg.read_text().replace(str(tmp_path / "catalog.db"), str(other)))
    foreign.chmod(0o600)
    for step in ("verify", "rollback", "finalize"):
        proc = run("migrate", step, str(plan), config=foreign)
        assert proc.returncode == 2, step
        assert "belongs to catalog" in one_line_error(proc), step
    # without a run of it, verify works from the plan alone
    fresh = run("migrate", "verify", str(plan), config=cfg)
    assert fresh.returncode == 1
    assert _out(fresh)[-1] == ("verified 1 object: 0 ok, 1 missing (not recorded: no run of "
                               "this plan in the catalog)")


@pytest.mark.parametrize("pair", [("s3", "az")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_corrupt_reads_are_caught_and_fast_trusts_native_checksums(pair, tmp_path):
    cfg, src, dst = pair
    for i in range(5):
        _put(src, f"c/{i:02}.bin", bytes([i]) * (1000 + i))
    plan_path = tmp_path / "plan.json"
    run("migrate", "plan", "src:/c", "dst:/c", "-o", str(plan_path), config=cfg, check=True)
    _run(plan_path, cfg)
    plan = load(plan_path)
    liar = FaultyProvider(dst, corrupt_reads=True)
    sides = Sides.of(plan, src, liar)
    cat = _catalog(cfg)
    try:
        result = verify(plan, sides, migrations=cat.migrations, parallel=2)
        assert result.counts["mismatch"] == 5 and result.failed == 5
        assert {c.key for c in result.problems} == {f"{i:02}.bin" for i in range(5)}
        assert cat.migrations.item(plan_id(plan), "03.bin").verified == "mismatch"
        assert liar.calls["open_read"] == 5
        # what verify read is counted with what the run spent
        assert cat.migrations.usage(plan_id(plan))["dst"]["get_requests"] == 5
        # md5 of single-part uploads on both sides: --fast reads nothing and says ok
        liar.calls.clear()
        fast = verify(plan, sides, migrations=cat.migrations, parallel=2, fast=True)
        assert fast.counts["ok"] == 5 and liar.calls["open_read"] == 0
        # the honest destination reads fine
        honest = verify(plan, Sides.of(plan, src, dst), parallel=2)
        assert honest.failed == 0 and not honest.recorded
    finally:
        cat.close()


#: a rollback slowed down by 0.2 s per destination request, printing each undone key
_SLOW_ROLLBACK = """
import sys
from omnifs.catalog import Catalog
from omnifs.config import load_config
from omnifs.migration.planfile import load
from omnifs.migration.rollback import rollback
from omnifs.migration.sides import Sides, open_sides
from omnifs.providers.faulty import FaultyProvider
from omnifs.targets import Resolver
cfg, plan = load_config(sys.argv[1]), load(sys.argv[2])
cat = Catalog(cfg.catalog_path(), create=False)
with Resolver(cfg) as r:
    s = open_sides(plan, r)
    slow = Sides(s.src, s.src_prefix, FaultyProvider(s.dst, latency=0.2), s.dst_prefix)
    rollback(plan, slow, cat.migrations, parallel=2, on_undo=lambda u: print(u.key, flush=True))
"""


@pytest.mark.parametrize("pair", [("gs", "s3")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")
def test_rollback_killed_then_rerun_finishes(pair, tmp_path):
    """kill -9 in the middle of a move's rollback (sources coming back, saved copies being
    restored), then `omnifs migrate rollback` again: everything as before, nothing lost."""
    cfg, src, dst = pair
    for i in range(12):
        _put(src, f"r/{i:02}.txt", f"new {i}".encode())
    for i in range(0, 12, 2):
        _put(dst, f"r/{i:02}.txt", f"old {i}".encode())
    plan = tmp_path / "plan.json"
    run("migrate", "plan", "src:/r", "dst:/r", "--mode", "move", "-o", str(plan),
        config=cfg, check=True)
    _run(plan, cfg)

    child = subprocess.Popen([sys.executable, "-c", _SLOW_ROLLBACK, str(cfg), str(plan)],
                             stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    try:
        undone = [child.stdout.readline() for _ in range(4)]
        assert all(undone), "the rollback ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert _state(cfg, plan) == "done"
    assert _saved(dst, plan)  # still there for the rerun
    assert 4 <= len(list(src.list("r/"))) < 12  # stopped halfway: some sources are back

    again = run("migrate", "rollback", str(plan), config=cfg)
    assert again.returncode == 0, again.stderr
    assert "12 sources restored, 0 failed; 6 saved copies deleted; migration rolled_back" in \
        _out(again)[0]
    assert {i.key: src.read_bytes(i.key) for i in src.list("r/")} == {
        f"r/{i:02}.txt": f"new {i}".encode() for i in range(12)}
    assert {i.key: dst.read_bytes(i.key) for i in dst.list("")} == {
        f"r/{i:02}.txt": f"old {i}".encode() for i in range(0, 12, 2)}
