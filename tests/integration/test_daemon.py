"""The daemon against real servers: replication, outages, kill -9, conflicts, a lost store.

Files are recorded the way the mount's publisher records them (one upload to
the first provider, catalog rows, a queued ``replicate`` per other home), so
these tests need neither FUSE nor a mount process. The daemon runs either
in-process (``Daemon.run`` under trio, stopped when a condition holds) or as
``omnifs daemon`` subprocesses for the kill -9 test.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import trio

from omnifs.catalog import Catalog
from omnifs.config import parse_config
from omnifs.daemon.main import Daemon
from omnifs.daemon.reconcile import Reconciler
from omnifs.daemon.state import read_health
from omnifs.providers import META_MTIME, META_SHA256, ProviderSettings, open_provider
from omnifs.work import Delete, Move, Replicate, enqueue
from tests import servers as S
from tests.mount.conftest import fuse_missing

SLOW = os.environ.get("OMNIFS_SLOW") == "1"
FAST_DAEMON = {"probe_interval": 0.3, "probe_timeout": 1.0, "idle_poll": 0.05,
               "reconcile_interval": 0, "retry_base": 0.2, "retry_max": 2.0,
               "drain_timeout": 5.0}


# -- helpers -------------------------------------------------------------------

def table_of(s: ProviderSettings, **extra) -> dict:
    table = {"uri": s.uri, "timeout": s.timeout}
    for key in ("endpoint", "region", "access_key", "secret_key", "connection_string"):
        value = getattr(s, key)
        if value is not None:
            table[key] = value
    table.update(extra)
    return table


def make_config(tmp_path: Path, settings: list[ProviderSettings], *, catalog: str | None = None,
                copies: int = 2,
                conflict: str = "newest", daemon: dict | None = None, metrics_port: int = 0,
                tables: dict[str, dict] | None = None):
    providers = {s.name: table_of(s, **(tables or {}).get(s.name, {})) for s in settings}
    return parse_config({
        # a SQLite file unless a test asks for its catalog_url (both engines)
        "catalog": {"url": catalog or f"sqlite:///{tmp_path}/catalog.db"},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": copies, "write_quorum": 1, "conflict": conflict},
        "providers": providers,
        "daemon": FAST_DAEMON | (daemon or {}),
        "metrics": {"port": metrics_port},
    })


def write_file(cat: Catalog, provider, path: str, data: bytes, others: list[str],
               mtime: float | None = None) -> int:
    """Record a file as the mount's publisher does: upload to one store, queue the rest."""
    parent_path, _, name = path.rpartition("/")
    parent = cat.ns.ensure_dirs(parent_path)
    existing = cat.ns.lookup(parent, name)
    ino = existing.id if existing else cat.ns.create(parent, name, stat.S_IFREG | 0o644, 0, 0).id
    inode = cat.ns.get(ino)
    version = inode.version + 1
    sha = hashlib.sha256(data).hexdigest()
    t = int((mtime or time.time()) * 1e9)
    info = provider.write_bytes(path, data, {META_SHA256: sha, META_MTIME: f"{t / 1e9:.9f}"})
    with cat.transaction():
        cat.ns.update(ino, version=version, sha256=sha, size=len(data), mtime_ns=t)
        cat.replicas.set(ino, provider.name, path, version, "synced", info.etag)
        cat.replicas.mark_others_stale(ino, version)
        for other in others:
            enqueue(cat.work, Replicate(inode=ino, provider=other))
        cat.replicas.add_version(ino, version, sha, len(data), t)
    return ino


def write_many(cat: Catalog, provider, others: list[str], n: int, size: int = 2048,
               prefix: str = "d") -> dict[str, bytes]:
    rng = random.Random(n)
    files = {}
    for i in range(n):
        path = f"{prefix}/sub{i % 4}/f{i:04d}.bin"
        data = rng.randbytes(size + i)
        write_file(cat, provider, path, data, others)
        files[path] = data
    return files


def run_daemon_until(cfg, condition, timeout: float = 60.0, *, during=None, daemon_kw=None):
    """Run the daemon in-process until ``condition(cat)`` (or ``condition(cat, daemon)``)
    holds; return (elapsed, daemon)."""
    import inspect

    two = len(inspect.signature(condition).parameters) == 2
    watch = Catalog(cfg.catalog_target())
    result = {}

    async def main():
        d = Daemon(cfg, **(daemon_kw or {}))
        result["daemon"] = d
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run)
            start = time.monotonic()
            with trio.fail_after(timeout):
                while not (condition(watch, d) if two else condition(watch)):
                    if during is not None:
                        await during(d, time.monotonic() - start)
                    await trio.sleep(0.05)
            result["elapsed"] = time.monotonic() - start
            d.stop()

    try:
        trio.run(main)
    finally:
        watch.close()
    return result["elapsed"], result["daemon"]


def drained(copies: int):
    return lambda cat: (cat.work.pending_count() == 0 and cat.replicas.under_replicated(copies) == 0
                        and not cat.work.work_items("failed"))


def on(cat: Catalog, provider: str) -> int:
    """Replica rows still pointing at ``provider`` (a lost one's are re-placed, then dropped)."""
    return cat.db.execute("SELECT count(*) FROM replicas WHERE provider = ?",
                          (provider,)).fetchone()[0]


def assert_stores_identical(cat: Catalog, providers: dict, files: dict[str, bytes]) -> None:
    """Every store holds every file: same bytes, same SHA-256 and mtime metadata."""
    for path, data in files.items():
        inode = cat.ns.resolve(path)
        sha = hashlib.sha256(data).hexdigest()
        assert inode.sha256 == sha
        for name, p in providers.items():
            info = p.head(path)
            assert info.size == len(data), (name, path)
            assert info.sha256 == sha, (name, path)
            assert info.mtime == pytest.approx(inode.mtime_ns / 1e9, abs=1e-3), (name, path)
            assert p.read_bytes(path) == data, (name, path)
            rep = cat.replicas.get(inode.id, name)
            assert rep is not None and rep.state == "synced" and rep.version == inode.version


def user_keys(p) -> set[str]:
    return {o.key for o in p.list("") if not o.key.startswith(".omnifs/")}


# -- replication -------------------------------------------------------------------

@pytest.mark.parametrize("kinds", [("s3", "az"), ("gs", "file"), ("minio", "s3")],
                         ids=lambda k: "-".join(k))
def test_replicates_to_every_store_with_metrics(kinds, make_settings, catalog_url, tmp_path):
    a, b = make_settings(kinds[0], name="one"), make_settings(kinds[1], name="two")
    port = S.free_port()
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url, metrics_port=port)
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    files = write_many(cat, pa, ["two"], 30)
    files["big/one.bin"] = os.urandom(20 * 1024 * 1024 + 3)
    write_file(cat, pa, "big/one.bin", files["big/one.bin"], ["two"])
    scraped = {}

    async def scrape(d, elapsed):
        if "text" not in scraped and elapsed > 0.2:
            def get():
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            scraped["text"] = (await trio.to_thread.run_sync(get)).decode()

    _, d = run_daemon_until(cfg, lambda c: drained(2)(c) and "text" in scraped, during=scrape)
    assert_stores_identical(cat, {"one": pa, "two": pb}, files)
    # the bytes the executor reported moving: every file once, nothing for no-op items
    moved = d.metrics.registry.get_sample_value("omnifs_replicated_bytes_total",
                                                {"provider": "two"})
    assert moved == sum(len(v) for v in files.values())
    # written to one store directly, not through a mount: every copy came from that store
    assert d.metrics.registry.get_sample_value("omnifs_replica_copies_total",
                                               {"source": "store"}) == len(files)
    assert user_keys(pa) == user_keys(pb) == set(files)
    text = scraped["text"]
    for series in ("omnifs_queue_depth", "omnifs_replication_lag_seconds",
                   'omnifs_provider_up{provider="two"}', "omnifs_provider_latency_seconds",
                   "omnifs_replicated_bytes_total"):
        assert series in text
    health = read_health(cfg.catalog_target())
    assert {h.status for h in health.values()} == {"healthy"}


@pytest.mark.parametrize("catalog_backend", S.CATALOG_BACKENDS)
def test_rename_and_delete_carried_to_every_store(make_settings, catalog_url, tmp_path):
    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url)
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    files = write_many(cat, pa, ["two"], 6)
    run_daemon_until(cfg, drained(2))
    # what the mount records for `rm d/sub0/f0000.bin` and `mv d/sub1/f0001.bin moved.bin`
    gone = cat.ns.resolve("d/sub0/f0000.bin")
    moved = cat.ns.resolve("d/sub1/f0001.bin")
    with cat.transaction():
        for r in cat.replicas.of(gone.id):
            enqueue(cat.work, Delete(provider=r.provider, key=r.key))
        cat.ns.delete(gone.id)
        cat.ns.move_entry(moved.id, 1, "moved.bin")
        for r in cat.replicas.of(moved.id):
            enqueue(cat.work, Move(inode=moved.id, provider=r.provider, src=r.key))
    run_daemon_until(cfg, drained(2))
    files.pop("d/sub0/f0000.bin")
    files["moved.bin"] = files.pop("d/sub1/f0001.bin")
    assert_stores_identical(cat, {"one": pa, "two": pb}, files)
    assert user_keys(pa) == user_keys(pb) == set(files)


def test_placement_rules_choose_the_targets(make_settings, catalog_url, tmp_path):
    """A provider lost with /eu/ files: their copies go only to EU providers."""
    us = make_settings("s3", name="us")
    eu1 = make_settings("file", name="eu1")
    eu2 = make_settings("file", name="eu2")
    dead = ProviderSettings(name="eu-dead", uri="s3://nowhere-bucket", endpoint=
                            f"http://127.0.0.1:{S.free_port()}", access_key="t", secret_key="t",
                            region="eu-west-3", timeout=1.0)
    cfg = make_config(tmp_path, [eu1, dead, us, eu2], catalog=catalog_url, copies=2,
                      daemon={"lost_after": 1.0},
                      tables={"us": {"region": "us-east-1"}, "eu1": {"region": "eu-west-1"},
                              "eu2": {"region": "europe-west1"}})
    cfg.governance_rules = [{"paths": ["/eu/**"], "regions": ["eu*", "europe*"]}]
    cat = Catalog(cfg.catalog_target())
    p1 = open_provider(eu1)
    ino = write_file(cat, p1, "eu/data.csv", b"secret,eu\n", [])
    cat.replicas.set(ino, "eu-dead", "eu/data.csv", 1, "synced")
    run_daemon_until(cfg, lambda c, d: d.board.status("eu-dead") == "lost"
                     and not on(c, "eu-dead") and drained(2)(c), timeout=30)
    holders = {r.provider for r in cat.replicas.of(ino) if r.state == "synced"}
    assert holders == {"eu1", "eu2"}


# -- outages ---------------------------------------------------------------------

def test_server_down_mid_replication_then_back(servers, make_settings, catalog_url, tmp_path):
    """A store that hangs is marked down within 10 s, its work waits, and catches up."""
    a = make_settings("s3", name="one")
    b = make_settings("az", name="two")
    proxy = S.CuttableProxy(servers["az"].port)
    b_proxied = ProviderSettings(name="two", uri=b.uri, timeout=2.0,
                                 connection_string=S.azure_connection_string(proxy.endpoint))
    cfg = make_config(tmp_path, [a, b_proxied], catalog=catalog_url,
                      daemon={"per_provider": 2, "workers": 2})
    cat = Catalog(cfg.catalog_target())
    pa = open_provider(a)
    files = write_many(cat, pa, ["two"], 60, size=64 * 1024)
    seen: dict[str, float] = {}

    async def chaos(d, elapsed):
        synced = cat.db.execute("SELECT count(*) FROM replicas WHERE provider = 'two' AND "
                                "state = 'synced'").fetchone()[0]
        if "frozen" not in seen and synced >= 5:
            proxy.freeze()
            seen["frozen"] = elapsed
        elif "frozen" in seen and "down" not in seen and d.board.status("two") == "down":
            seen["down"] = elapsed
            seen["synced_at_down"] = synced
        elif "down" in seen and "thawed" not in seen and elapsed - seen["down"] > 1.5:
            proxy.thaw()
            seen["thawed"] = elapsed

    try:
        run_daemon_until(cfg, lambda c: "thawed" in seen and drained(2)(c), timeout=120,
                         during=chaos)
    finally:
        proxy.thaw()
    assert seen["down"] - seen["frozen"] < 10
    assert seen["synced_at_down"] < len(files)
    pb = open_provider(b)
    assert_stores_identical(cat, {"one": pa, "two": pb}, files)
    proxy.close()


def test_lost_provider_copies_restored_on_the_others(make_settings, catalog_url, tmp_path):
    a, c = make_settings("s3", name="one"), make_settings("file", name="three")
    dead = ProviderSettings(name="two", uri="s3://gone-bucket", access_key="t", secret_key="t",
                            endpoint=f"http://127.0.0.1:{S.free_port()}", timeout=1.0)
    cfg = make_config(tmp_path, [a, dead, c], catalog=catalog_url, copies=2,
                      daemon={"lost_after": 1.5})
    cat = Catalog(cfg.catalog_target())
    pa = open_provider(a)
    files = write_many(cat, pa, [], 12)
    for path in files:  # as if "two" held them before it died
        ino = cat.ns.resolve(path).id
        cat.replicas.set(ino, "two", path, 1, "synced")
    t0 = time.monotonic()
    run_daemon_until(cfg, lambda c, d: d.board.status("two") == "lost"
                     and not on(c, "two") and drained(2)(c), timeout=60)
    pc = open_provider(c)
    assert_stores_identical(cat, {"one": pa, "three": pc}, files)
    assert all(cat.replicas.get(cat.ns.resolve(p).id, "two") is None for p in files)
    assert time.monotonic() - t0 < 30
    assert read_health(cfg.catalog_target())["two"].status == "lost"


# -- kill -9 ------------------------------------------------------------------------

def _write_toml(path: Path, cfg_dict: dict) -> None:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for section, table in cfg_dict.items():
        if section == "providers":
            for name, t in table.items():
                lines.append(f"[providers.{name}]")
                lines += [f"{k} = {value(v)}" for k, v in t.items()]
        else:
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def ready_since(cfg, t: float) -> bool:
    """The daemon published health after ``t``: it is up and handles signals."""
    rows = read_health(cfg.catalog_target())
    return bool(rows) and all(r.updated_at > t for r in rows.values())


def test_kill_9_repeatedly_during_replication(make_settings, catalog_url, tmp_path):
    n = 500 if SLOW else 100
    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    c = make_settings("az", name="three")
    raw = {
        "catalog": {"url": catalog_url},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 3, "write_quorum": 1},
        "providers": {s.name: table_of(s) for s in (a, b, c)},
        "daemon": FAST_DAEMON | {"lease": 600.0, "workers": 2},
        "metrics": {"port": 0},
    }
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    cat = Catalog(cfg.catalog_target())
    pa = open_provider(a)
    files = write_many(cat, pa, ["two", "three"], n, size=64 * 1024)
    omnifs = [sys.executable, "-m", "omnifs", "daemon", "--config", str(conf)]
    rng = random.Random(9)
    kills = 0
    for _ in range(6):
        started = time.time()
        proc = subprocess.Popen(omnifs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not ready_since(cfg, started) and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"daemon exited: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.02)
        # kill at a random point of the work: mid-upload, mid-catalog-update, or idle
        time.sleep(rng.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        print(f"kill -9 #{kills}: {cat.work.pending_count()} item(s) left")
        if cat.work.pending_count() == 0:
            break
    assert kills >= 2
    left = cat.work.pending_count()
    started = time.time()
    proc = subprocess.Popen(omnifs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                drained(3)(cat) and ready_since(cfg, started)):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()[-500:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert drained(3)(cat), f"{cat.work.pending_count()} still pending ({left} after the kills)"
    providers = {"one": pa, "two": open_provider(b), "three": open_provider(c)}
    assert_stores_identical(cat, providers, files)
    for p in providers.values():
        assert user_keys(p) == set(files)
    assert cat.work.work_items("failed") == []


# -- conflicts ---------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["newest", "primary", "keep-both"])
def test_out_of_band_changes_resolved_by_policy(policy, make_settings, catalog_url, tmp_path):
    a, b = make_settings("s3", name="one"), make_settings("gs", name="two")
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url, conflict=policy)
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    past = time.time() - 3600
    files = {p: os.urandom(3000) for p in ("x/newer.txt", "x/older.txt", "x/primary.txt",
                                           "x/deleted.txt")}
    for path, data in files.items():
        write_file(cat, pa, path, data, ["two"], mtime=past)
    run_daemon_until(cfg, drained(2))

    def tamper(p, path, data, mtime):
        p.write_bytes(path, data, {META_SHA256: hashlib.sha256(data).hexdigest(),
                                   META_MTIME: f"{mtime:.9f}"})

    new_on_two = b"changed on two, later\n"
    old_on_two = b"changed on two, but with an old mtime\n"
    new_on_one = b"changed on the primary\n"
    tamper(pb, "x/newer.txt", new_on_two, time.time())
    tamper(pb, "x/older.txt", old_on_two, past - 7200)
    tamper(pa, "x/primary.txt", new_on_one, past - 7200)
    pb.delete("x/deleted.txt")

    rounds = {}

    async def one_round(d, elapsed):
        if "out" not in rounds:
            rounds["out"] = await Reconciler(d).round()

    run_daemon_until(cfg, lambda c: "out" in rounds and drained(2)(c), during=one_round)
    out = rounds["out"]
    expect = dict(files)
    if policy == "newest":
        expect["x/newer.txt"] = new_on_two          # the store's later mtime wins
        assert out.adopted == 1                      # older.txt and primary.txt are rewritten
    elif policy == "primary":
        expect["x/primary.txt"] = new_on_one        # the primary's change is adopted
        assert out.adopted == 1
    else:
        assert out.kept_both == 3 and out.adopted == 0
        names = [e.name for e in cat.ns.children(cat.ns.resolve("x").id)]
        kept = sorted(n for n in names if ".conflict-" in n)
        assert len(kept) == 3
        assert any(n.startswith("newer.txt.conflict-two-") for n in kept)
        assert any(n.startswith("primary.txt.conflict-one-") for n in kept)
        for name in kept:
            path = f"x/{name}"
            original = name.split(".conflict-")[0]
            expect[path] = {"newer.txt": new_on_two, "older.txt": old_on_two,
                            "primary.txt": new_on_one}[original]
    assert out.restored >= 1                         # deleted.txt at least
    # the tampered-but-losing sides were rewritten; deleted.txt is back
    got = {}
    for path in expect:
        got[path] = (pa.read_bytes(path), pb.read_bytes(path))
    for path, data in expect.items():
        assert got[path] == (data, data), (policy, path)
        assert cat.ns.get(cat.ns.resolve(path).id).sha256 == hashlib.sha256(data).hexdigest()


# -- the process under systemd's protocol ------------------------------------------

def test_sd_notify_sighup_reload_and_sigterm_drain(catalog_url, tmp_path):
    """READY/WATCHDOG/RELOADING/STOPPING over a real NOTIFY_SOCKET; a bad reload is refused."""
    import socket

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    raw = {
        "catalog": {"url": catalog_url},
        "replication": {"copies": 2},
        "providers": {"a": {"uri": f"file://{tmp_path}/a"}, "b": {"uri": f"file://{tmp_path}/b"}},
        "daemon": FAST_DAEMON,
        "metrics": {"port": 0},
    }
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    proc = subprocess.Popen([sys.executable, "-m", "omnifs", "daemon", "--config", str(conf)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_for(word: str) -> list[str]:
        seen = []
        while True:
            msg = sock.recv(4096).decode()
            seen.append(msg)
            if word in msg.split("\n"):
                return seen

    try:
        assert any("READY=1" in m for m in wait_for("READY=1"))
        wait_for("WATCHDOG=1")
        conf.write_text(conf.read_text() + "\n[daemon.oops]\n")   # broken: refused, keeps running
        proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        assert proc.poll() is None
        raw["daemon"] = FAST_DAEMON | {"workers": 2}
        _write_toml(conf, raw)
        proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        wait_for("STOPPING=1")
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read().decode()
        assert "reload refused" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


@pytest.mark.parametrize("catalog_backend", S.CATALOG_BACKENDS)
def test_status_shows_health_queue_and_under_replication(make_settings, catalog_url, tmp_path,
                                                         capsys):
    import json

    from omnifs.cli import main as cli

    a, b = make_settings("s3", name="one"), make_settings("file", name="two")
    raw = {
        "catalog": {"url": catalog_url},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 2},
        "providers": {"one": table_of(a), "two": table_of(b)},
        "daemon": FAST_DAEMON,
        "metrics": {"port": 0},
    }
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    cat = Catalog(cfg.catalog_target())
    write_many(cat, open_provider(a), ["two"], 5)

    assert cli(["status", "--json", "--config", str(conf)]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["daemon"] == "not running"
    assert before["queue"]["depth"] == 5 and before["under_replicated"] == 5
    assert before["queue"]["oldest_pending_age"] >= 0
    assert {p["status"] for p in before["providers"].values()} == {"healthy"}

    from omnifs.cli.daemon import gather

    during = []

    def drained_then_status(cat):
        if not drained(2)(cat):
            return False
        during.append(gather(cfg)["daemon"])
        return True

    run_daemon_until(cfg, drained_then_status)
    assert during == ["running"]
    # what a mount measured on its reads, saved beside its cache
    from omnifs.mountfs.replicas import SNAPSHOT_NAME, StatsRegistry

    reads = StatsRegistry()
    reads.get("one")
    (tmp_path / "cache").mkdir(exist_ok=True)
    reads.save(tmp_path / "cache" / SNAPSHOT_NAME)
    assert cli(["status", "--config", str(conf)]) == 0
    text = capsys.readouterr().out
    assert "daemon: not running" in text  # it stopped, though its health rows are fresh
    assert "work queue: 0 pending" in text and "under-replicated: 0" in text
    assert text.count("healthy") == 2
    assert "measured by the mount's reads:" in text and "  one " in text


def test_status_knows_a_daemon_killed_with_9_is_gone(make_settings, catalog_url, tmp_path, capsys):
    import json

    from omnifs.cli import main as cli

    a = make_settings("file", name="one")
    raw = {"catalog": {"url": catalog_url},
           "cache": {"dir": str(tmp_path / "cache")}, "replication": {"copies": 1},
           "providers": {"one": table_of(a)}, "daemon": FAST_DAEMON, "metrics": {"port": 0}}
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    proc = subprocess.Popen([sys.executable, "-m", "omnifs", "daemon", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def daemon_state() -> str:
        if cli(["status", "--json", "--config", str(conf)]) != 0:
            assert "no catalog yet" in capsys.readouterr().err  # status makes none
            return "starting"
        return json.loads(capsys.readouterr().out)["daemon"]

    try:
        deadline = time.monotonic() + 30
        while daemon_state() != "running":
            assert time.monotonic() < deadline and proc.poll() is None, "daemon never ran"
            time.sleep(0.1)
        proc.kill()
        proc.wait(timeout=30)
        assert daemon_state() == "not running"  # at once, not when its health rows go stale
    finally:
        if proc.poll() is None:
            proc.kill()


# -- through a real FUSE mount ----------------------------------------------------------

@pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))
@pytest.mark.parametrize("catalog_backend", S.CATALOG_BACKENDS)
def test_written_through_the_mount_replicated_renamed_deleted(make_settings, catalog_url, tmp_path):
    a, b = make_settings("s3", name="one"), make_settings("az", name="two")
    raw = {
        "catalog": {"url": catalog_url},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {"one": table_of(a), "two": table_of(b)},
        "daemon": FAST_DAEMON,
        "metrics": {"port": 0},
    }
    conf = tmp_path / "omnifs.toml"
    _write_toml(conf, raw)
    cfg = parse_config(raw)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    omnifs = [sys.executable, "-m", "omnifs"]
    subprocess.run([*omnifs, "mount", str(mnt), "--config", str(conf)], check=True,
                   capture_output=True, timeout=60)
    try:
        rng = random.Random(6)
        files = {f"tree/d{i % 3}/f{i}.bin": rng.randbytes(1000 * i + 1) for i in range(12)}
        for path, data in files.items():
            (mnt / path).parent.mkdir(parents=True, exist_ok=True)
            (mnt / path).write_bytes(data)
        cat = Catalog(cfg.catalog_target())
        run_daemon_until(cfg, drained(2))
        pa, pb = open_provider(a), open_provider(b)
        assert_stores_identical(cat, {"one": pa, "two": pb}, files)
        os.rename(mnt / "tree/d0/f0.bin", mnt / "tree/renamed.bin")
        os.unlink(mnt / "tree/d1/f1.bin")
        files["tree/renamed.bin"] = files.pop("tree/d0/f0.bin")
        files.pop("tree/d1/f1.bin")
        run_daemon_until(cfg, drained(2))
        assert_stores_identical(cat, {"one": pa, "two": pb}, files)
        assert user_keys(pa) == user_keys(pb) == set(files)
    finally:
        subprocess.run([*omnifs, "umount", str(mnt)], check=False, capture_output=True,
                       timeout=60)


def test_repair_converges_without_queued_work(make_settings, catalog_url, tmp_path):
    """No item covers a missing copy (e.g. it was parked as failed): the daemon still restores
    ``copies``; a stale replica beyond ``copies`` is dropped and deleted from its store."""
    a, b, c = (make_settings(k, name=n) for k, n in (("s3", "one"), ("file", "two"),
                                                      ("gs", "three")))
    cfg = make_config(tmp_path, [a, b, c], catalog=catalog_url, copies=2)
    cat = Catalog(cfg.catalog_target())
    pa, pc = open_provider(a), open_provider(c)
    files = write_many(cat, pa, [], 8)                       # one copy each, nothing queued
    ino = cat.ns.resolve("d/sub0/f0000.bin").id
    pc.write_bytes("d/sub0/f0000.bin", b"old bytes")
    cat.replicas.set(ino, "three", "d/sub0/f0000.bin", 0, "stale")
    # a file already on two providers, with a stale leftover on the third: surplus
    extra = write_file(cat, pa, "extra.bin", b"current", [])
    open_provider(b).write_bytes("extra.bin", b"current")
    cat.replicas.set(extra, "two", "extra.bin", 1, "synced")
    pc.write_bytes("extra.bin", b"leftover")
    cat.replicas.set(extra, "three", "extra.bin", 0, "stale")

    def converged(c: Catalog) -> bool:
        stale = c.db.execute("SELECT count(*) FROM replicas WHERE state != 'synced'").fetchone()[0]
        return drained(2)(c) and stale == 0

    run_daemon_until(cfg, converged, timeout=60)
    for path in files:
        inode = cat.ns.resolve(path)
        synced = [r.provider for r in cat.replicas.of(inode.id)
                  if r.state == "synced" and r.version == inode.version]
        assert len(synced) == 2, (path, synced)
    assert cat.replicas.get(extra, "three") is None and not pc.exists("extra.bin")
    rep = cat.replicas.get(ino, "three")
    if rep is None:       # dropped as surplus: its old object is deleted
        assert not pc.exists("d/sub0/f0000.bin")
    else:                 # chosen as the second copy: rewritten with the current bytes
        assert pc.read_bytes("d/sub0/f0000.bin") == files["d/sub0/f0000.bin"]


# -- the copy engine under the executor ------------------------------------------------

def test_replica_verified_against_the_catalog_sha256(make_settings, catalog_url, tmp_path):
    """Bytes that do not match the catalog's SHA-256 never become a synced replica.

    moto stores whatever it is given, so the corruption is made here: the
    source object is rewritten behind omnifs' back with other bytes of the
    same size and the same metadata (its own SHA-256 claim included).
    """
    from omnifs import replication
    from omnifs.providers import IntegrityError

    a, b = make_settings("s3", name="one"), make_settings("az", name="two")
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url)
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    providers = {"one": pa, "two": pb}
    good = os.urandom(300 * 1024)
    ino = write_file(cat, pa, "v/file.bin", good, ["two"])
    meta = pa.head("v/file.bin").metadata
    pa.write_bytes("v/file.bin", os.urandom(len(good)), meta)
    (item,) = cat.work.claim("test", kinds=("replicate",), limit=10, lease=60)
    with pytest.raises(IntegrityError):
        replication.execute(cat, providers, item)
    assert "v/file.bin" not in user_keys(pb)
    rep = cat.replicas.get(ino, "two")
    assert rep is None or rep.state != "synced"
    # the good bytes back at the source: the retried item copies them, reporting what it moved
    pa.write_bytes("v/file.bin", good, meta)
    assert replication.execute(cat, providers, item) == len(good)
    assert pb.read_bytes("v/file.bin") == good
    assert cat.replicas.get(ino, "two").state == "synced"
    assert replication.execute(cat, providers, item) == 0  # done already: nothing moved


def test_replica_within_one_store_copied_server_side(servers, catalog_url, tmp_path):
    """Two providers over one bucket: the engine's server-side copy, same bytes and metadata."""
    from omnifs import replication

    bucket = S.unique_bucket()
    S.create_bucket("s3", servers["s3"].endpoint, bucket)
    a = S.settings_for("s3", servers["s3"].endpoint, bucket, name="one", prefix="main")
    b = S.settings_for("s3", servers["s3"].endpoint, bucket, name="two", prefix="mirror")
    cfg = make_config(tmp_path, [a, b], catalog=catalog_url)
    cat = Catalog(cfg.catalog_target())
    pa, pb = open_provider(a), open_provider(b)
    data = os.urandom(100 * 1024)
    write_file(cat, pa, "x/y.bin", data, ["two"])
    meta = pa.head("x/y.bin").metadata
    copied = replication.copy_object(pa, "x/y.bin", pb, "x/y.bin", len(data), meta)
    assert copied.server_side and copied.nbytes == len(data)
    info = pb.head("x/y.bin")
    assert pb.read_bytes("x/y.bin") == data and info.sha256 == meta[META_SHA256]
