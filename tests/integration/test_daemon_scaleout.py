"""Daemon workers on several hosts, and through an outage of the catalog.

Three ``omnifs daemon`` processes drain one queue in a PostgreSQL catalog (``FOR UPDATE
SKIP LOCKED`` claims, leases), one of them killed with -9 mid-item; every item is claimed
by exactly one live worker (counted by a trigger on the real database), and ``omnifs
status`` lists the workers. A daemon whose PostgreSQL server stops mid-workload pauses
and resumes by itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from omnifs.catalog import Catalog
from omnifs.config import parse_config
from omnifs.providers import open_provider
from tests.integration.test_daemon import (
    FAST_DAEMON,
    _write_toml,
    assert_stores_identical,
    drained,
    table_of,
    user_keys,
    write_many,
)

#: counts every claim of every item (test-only: a trigger on the catalog's work table)
CLAIM_LOG = """
CREATE TABLE claim_log (item BIGINT NOT NULL, worker TEXT NOT NULL);
CREATE FUNCTION log_claim() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'claimed' AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by THEN
        INSERT INTO claim_log VALUES (NEW.id, NEW.claimed_by);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER work_claims AFTER UPDATE ON work FOR EACH ROW EXECUTE FUNCTION log_claim();
"""


def workers_of(conf) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "omnifs", "--config", str(conf), "status",
                           "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["workers"]


def test_three_daemons_drain_one_queue_once_with_a_worker_killed_mid_item(
        make_settings, postgres, tmp_path):
    url = postgres.database("scaleout")
    a, b = make_settings("file", name="one"), make_settings("file", name="two")
    raw = {
        "catalog": {"url": url},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {s.name: table_of(s) for s in (a, b)},
        # a short lease: the killed worker's items are taken over by the others, as they
        # would be from a host that died (no pid to check across hosts)
        "daemon": FAST_DAEMON | {"lease": 3.0, "workers": 2},
        "metrics": {"port": 0},
    }
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    cat = Catalog(cfg.catalog_target())
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(CLAIM_LOG)
    pa = open_provider(a)
    files = write_many(cat, pa, ["two"], 120, size=1024)
    queued = cat.work.pending_count()
    argv = [sys.executable, "-m", "omnifs", "daemon", "--config", str(conf)]
    # logs to files: a pipe nobody reads would stop a daemon that logs 64 KiB
    logs = [tmp_path / f"daemon{i}.log" for i in range(3)]
    procs = []
    for log in logs:
        with open(log, "wb") as sink:
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=sink))
    victim = procs[0]
    try:
        # kill -9 the first daemon while it holds a claim (mid-item)
        deadline = time.monotonic() + 60
        holder = f":{victim.pid}"
        while time.monotonic() < deadline:
            held = [w for w in cat.work.claim_holders("daemon:") if w.endswith(holder)]
            if held:
                break
            assert victim.poll() is None, logs[0].read_text()[-500:]
            time.sleep(0.005)
        else:
            pytest.fail("the first daemon never claimed an item")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not drained(2)(cat):
            time.sleep(0.1)
        assert drained(2)(cat), f"{cat.work.pending_count()} of {queued} still pending"
        alive = workers_of(conf)
        assert sorted(w["pid"] for w in alive) == sorted(p.pid for p in procs[1:])
    finally:
        for p in procs[1:]:
            p.send_signal(signal.SIGTERM)
        for p, log in zip(procs[1:], logs[1:], strict=True):
            assert p.wait(timeout=30) == 0, log.read_text()[-500:]
    with psycopg.connect(url, autocommit=True) as db:
        claims = db.execute("SELECT item, array_agg(worker ORDER BY worker) FROM claim_log "
                            "GROUP BY item").fetchall()
    assert len(claims) == queued  # every item was claimed ...
    victim_id = f"daemon:{_host()}:{victim.pid}"
    taken_over = [(item, ws) for item, ws in claims if len(ws) > 1]
    # ... by exactly one worker, except those the killed one held: taken over once each
    assert taken_over, "the killed worker held no claim that was taken over"
    for item, workers in taken_over:
        assert len(workers) == 2 and victim_id in workers, (item, workers)
    by_worker: dict[str, int] = {}
    for _, workers in claims:
        for w in workers:
            by_worker[w] = by_worker.get(w, 0) + 1
    assert len(by_worker) == 3 and all(n > 0 for n in by_worker.values()), by_worker
    assert_stores_identical(cat, {"one": pa, "two": open_provider(b)}, files)
    assert user_keys(open_provider(b)) == set(files)
    cat.close()


def _host() -> str:
    import socket
    return socket.gethostname()


@pytest.fixture(scope="module")
def own_cluster():
    """A cluster of this module's own: the outage test stops it."""
    from tests.servers import PostgresCluster, postgres_missing

    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster()
    yield cluster
    cluster.destroy()


def test_daemon_pauses_through_a_catalog_outage_and_resumes(make_settings, own_cluster,
                                                           tmp_path):
    url = own_cluster.database("outage")
    a, b = make_settings("file", name="one"), make_settings("file", name="two")
    raw = {"catalog": {"url": url}, "cache": {"dir": str(tmp_path / "cache")},
           "replication": {"copies": 2, "write_quorum": 1},
           "providers": {s.name: table_of(s) for s in (a, b)},
           "daemon": FAST_DAEMON | {"workers": 2}, "metrics": {"port": 0}}
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cat = Catalog(parse_config(raw).catalog_target())
    pa = open_provider(a)
    files = write_many(cat, pa, ["two"], 150, size=1024)
    queued = cat.work.pending_count()
    # its log goes to a file: a pipe nobody reads would stop a daemon that logs 64 KiB
    log = tmp_path / "daemon.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "omnifs", "daemon", "--config",
                                 str(conf)], stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while cat.work.pending_count() == queued and time.monotonic() < deadline:
            time.sleep(0.01)
        own_cluster.stop()  # mid-workload
        try:
            time.sleep(2.0)
            assert proc.poll() is None, "the daemon died with its catalog"
        finally:
            own_cluster.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not drained(2)(cat):
            time.sleep(0.1)
        if not drained(2)(cat):
            proc.kill()
            pytest.fail(f"{cat.work.pending_count()} of {queued} still pending: "
                        f"{log.read_text()[-6000:]}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert "catalog unreachable, paused" in err and "catalog reachable again: resumed" in err
    assert "Traceback" not in err, err[-2000:]
    assert_stores_identical(cat, {"one": pa, "two": open_provider(b)}, files)
    cat.close()
