"""Placement through a real mount: path rules, load spreading, failover of close.

Why here and not only in tests/unit: the unit tests prove ``policy.placement``
decides well; these prove the mount asks it, with the config's regions and
rules and the live health, and that a dead store does not fail ``close``.
"""

from __future__ import annotations

import errno
import time

import pytest

from omnifs.providers import ProviderSettings

EU_RULE = {"paths": ["/eu/**"], "regions": ["eu-*"]}


def _file_settings(root, name: str) -> ProviderSettings:
    store = root / f"store-{name}"
    store.mkdir()
    return ProviderSettings(name=name, uri=f"file://{store}")


def _replicate_targets(cat) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for item in cat.work.work_items():
        if item.kind == "replicate":
            out.setdefault(item.payload["inode"], set()).add(item.payload["provider"])
    return out


def test_path_rule_places_only_on_allowed_providers(make_mount):
    regions = {"file0": "us-east-1", "file1": "eu-west-1", "file2": "eu-central-1"}
    m = make_mount(("file", "file", "file"), copies=2,
                   extra={n: {"region": r} for n, r in regions.items()}, rules=[EU_RULE])
    (m.mp / "eu" / "sub").mkdir(parents=True)
    (m.mp / "other").mkdir()
    eu_files = [f"eu/f{i}" for i in range(8)] + [f"eu/sub/g{i}" for i in range(8)]
    other_files = [f"other/h{i}" for i in range(16)]
    for rel in eu_files + other_files:
        (m.mp / rel).write_bytes(rel.encode())

    cat = m.catalog()
    try:
        queued = _replicate_targets(cat)
        firsts = set()
        for rel in eu_files:
            ino = cat.ns.resolve(rel).id
            homes = m.homes(rel)
            assert homes and set(homes) <= {"file1", "file2"}, (rel, homes)
            assert queued.get(ino, set()) <= {"file1", "file2"}, (rel, queued.get(ino))
            # copies = 2: the other EU provider gets the second copy
            assert set(homes) | queued.get(ino, set()) == {"file1", "file2"}
            firsts.update(homes)
        # write_quorum < copies: equal providers share the first uploads
        assert firsts == {"file1", "file2"}
        spread = {m.homes(rel)[0] for rel in other_files}
        assert len(spread) >= 2, spread
    finally:
        cat.close()
    assert [o.key for o in m.provider("file0").list("eu/")] == []
    assert (m.mp / "eu/f3").read_bytes() == b"eu/f3"


def test_write_no_provider_may_hold_is_refused_with_one_log_line(make_mount):
    m = make_mount(("file", "file"), extra={"file0": {"region": "eu-west-1"},
                                            "file1": {"region": "us-east-1"}},
                   rules=[{"paths": ["/vault/**"], "regions": ["ap-*"]}])
    (m.mp / "vault").mkdir()
    with pytest.raises(PermissionError) as err:
        (m.mp / "vault" / "secret").write_bytes(b"x")
    assert err.value.errno == errno.EACCES
    with pytest.raises(PermissionError):
        (m.mp / "vault" / "secret").write_bytes(b"x")
    assert not (m.mp / "vault" / "secret").exists()
    (m.mp / "free").write_bytes(b"fine")  # other paths are unaffected
    log = (m.root / "cache" / "mount.log").read_text()
    lines = [ln for ln in log.splitlines() if "vault/secret" in ln]
    assert len(lines) == 1, log
    assert "governance" in lines[0] and "Traceback" not in log


@pytest.fixture
def cut_s3(cuttable_s3):
    return cuttable_s3("s3us")


def test_close_succeeds_on_next_allowed_provider_when_chosen_is_down(make_mount, tmp_path,
                                                                      cut_s3):
    proxy, s3 = cut_s3
    settings = {"eu0": _file_settings(tmp_path, "eu0"), "s3us": s3,
                "us2": _file_settings(tmp_path, "us2")}
    m = make_mount(settings=settings, copies=2,
                   extra={"eu0": {"region": "eu-west-1"},
                          # heaviest: placement's first choice for /us/ while it is up
                          "s3us": {"weight": 10, "max_attempts": 1},
                          "us2": {"region": "us-west-2"}},
                   rules=[{"paths": ["/us/**"], "regions": ["us-*"]}])
    (m.mp / "us").mkdir()
    (m.mp / "us" / "warm").write_bytes(b"up")
    assert m.homes("us/warm") == ["s3us"]

    proxy.cut()
    start = time.monotonic()
    (m.mp / "us" / "a.txt").write_bytes(b"written while s3us is down")
    first_close = time.monotonic() - start
    assert m.homes("us/a.txt") == ["us2"]
    assert m.provider("us2").read_bytes("us/a.txt") == b"written while s3us is down"

    cat = m.catalog()
    try:
        ino = cat.ns.resolve("us/a.txt").id
        # the copy the dead store should hold waits in the daemon's queue
        assert _replicate_targets(cat).get(ino) == {"s3us"}
        errors = cat.health.errors("s3us", time.time() - 120)
        assert errors and errors[0][1] == "mount" and errors[0][2]
        assert "\n" not in errors[0][2]
    finally:
        cat.close()

    # the mount remembers: the next close goes straight to the healthy store
    start = time.monotonic()
    (m.mp / "us" / "b.txt").write_bytes(b"second")
    assert m.homes("us/b.txt") == ["us2"]
    assert time.monotonic() - start < max(1.0, first_close)
    assert [o.key for o in m.provider("eu0").list("us/")] == []


def test_close_fails_with_eio_when_every_allowed_provider_is_down(make_mount, tmp_path, cut_s3):
    proxy, s3 = cut_s3
    settings = {"eu0": _file_settings(tmp_path, "eu0"), "s3us": s3}
    m = make_mount(settings=settings, copies=2, extra={"eu0": {"region": "eu-west-1"},
                                                       "s3us": {"max_attempts": 1}},
                   rules=[{"paths": ["/us/**"], "regions": ["us-*"]}])
    (m.mp / "us").mkdir()
    proxy.cut()
    with pytest.raises(OSError) as err:
        (m.mp / "us" / "lost.txt").write_bytes(b"nowhere to go")
    assert err.value.errno == errno.EIO
    (m.mp / "elsewhere").write_bytes(b"fine")  # paths eu0 may hold still work
    assert m.homes("elsewhere") == ["eu0"]


def test_mount_health_merges_own_failures_with_daemon_verdicts(tmp_path):
    """No mount needed: the status rules of MountHealth, with a clock the test moves."""
    from omnifs.catalog import Catalog
    from omnifs.mountfs.stores import LOCAL_DOWN_FOR, VERDICT_TTL, MountHealth

    now = [1000.0]
    path = tmp_path / "c.db"
    health = MountHealth(path, clock=lambda: now[0])
    daemon = Catalog(path)
    try:
        assert health.status("a") == "unknown"
        health.record("a", False, 0.2, "a: connection refused")
        assert health.status("a") == "down"  # at once, before any daemon probe
        # every failure is persisted (rate-limited); successes only sparsely
        for _ in range(50):
            health.record("a", True, 0.01)
        assert health.status("a") == "unknown"
        rows = daemon.db.execute("SELECT ok, source, error FROM health_samples").fetchall()
        assert rows == [(0, "mount", "a: connection refused"), (1, "mount", None)]

        health.record("a", False, 0.2, "again")
        now[0] += LOCAL_DOWN_FOR + 1
        assert health.status("a") == "unknown"  # a local failure is forgotten
        daemon.health.set_verdict("a", "down", updated_at=now[0])
        now[0] += VERDICT_TTL + 0.1
        assert health.status("a") == "down"
        health.record("a", True, 0.01)  # this mount reached it after the verdict
        assert health.status("a") == "degraded"
        daemon.health.set_verdict("b", "lost", updated_at=now[0])
        now[0] += VERDICT_TTL + 0.1
        assert health.status("b") == "lost"
        daemon.health.set_verdict("c", "down", updated_at=now[0] - 3600)  # no daemon runs
        now[0] += VERDICT_TTL + 0.1
        assert health.status("c") == "unknown"
    finally:
        health.close()
        daemon.close()
