"""`timeout` bounds every operation against a store that does not answer.

A silent store (a listener that accepts connections and never says a byte, or a
real server behind a frozen proxy) must make each operation fail within
``timeout`` + 2 s, SDK retries included, for every kind: through the provider
API, the CLI, a mount's close and the daemon (a probe, a replicate item).
The mount's close is tested in tests/mount/test_stall.py.
"""

from __future__ import annotations

import dataclasses
import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import trio

from omnifs.cached_content import open_cache
from omnifs.catalog import Catalog
from omnifs.cli import main as cli
from omnifs.daemon.health import probe_once
from omnifs.daemon.main import Daemon, default_executor
from omnifs.daemon.metrics import Metrics
from omnifs.providers import Unavailable, open_provider
from tests import servers as S
from tests.cli import write_config
from tests.integration.test_daemon import make_config, write_file
from tests.poll import wait_until

TIMEOUT = 2.0
BOUND = TIMEOUT + 2.0
CLOUD_KINDS = ("s3", "minio", "gs", "az")
MiB = 1 << 20


@pytest.fixture
def silent_endpoint():
    """``http://127.0.0.1:P`` of a listener that accepts every connection and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)  # kept open, never read from or written to

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
    for c in held:
        c.close()


def silent_settings(kind: str, endpoint: str, name: str = "silent"):
    s = dataclasses.replace(S.settings_for(kind, endpoint, "omnifs-silent", name=name),
                            timeout=TIMEOUT)
    if kind == "az":  # staged blocks from 4 MiB, so the big write below is a block upload
        s = dataclasses.replace(s, extra={"multipart_threshold": 4 * MiB, "part_size": MiB})
    return s


def timed(fn) -> tuple[float, BaseException | None]:
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - returned to the test
        return time.monotonic() - t0, e
    return time.monotonic() - t0, None


@pytest.mark.parametrize("kind", CLOUD_KINDS)
def test_every_provider_operation_fails_within_timeout(kind, silent_endpoint):
    p = open_provider(silent_settings(kind, silent_endpoint))
    big = b"b" * (17 * MiB)  # past every kind's single-request limit: parts, blocks, resumable
    ops = {
        "head": lambda: p.head("k"),
        "list": lambda: list(p.list("")),
        "write": lambda: p.write_bytes("k", b"small"),
        "big write": lambda: p.write("big", io.BytesIO(big), len(big), {}),
        "read": lambda: p.open_read("k").read(),
        "copy": lambda: p.copy("k", "k2"),
        "delete": lambda: p.delete("k"),
    }
    try:
        # at once: each on its own connection, so the bound holds for each alike
        with ThreadPoolExecutor(len(ops)) as pool:
            results = dict(zip(ops, pool.map(timed, ops.values()), strict=True))
    finally:
        p.close()
    for op, (took, err) in results.items():
        assert isinstance(err, Unavailable), f"{kind} {op}: {err!r}"
        assert took < BOUND, f"{kind} {op} took {took:.1f} s (timeout {TIMEOUT} s)"
        assert "\n" not in str(err)


@pytest.mark.parametrize("kind", CLOUD_KINDS)
def test_a_read_that_stalls_midway_fails_within_timeout(kind, servers):
    bucket = S.unique_bucket()
    S.create_bucket(kind, servers[kind].endpoint, bucket)
    direct = open_provider(S.settings_for(kind, servers[kind].endpoint, bucket))
    proxy = S.CuttableProxy(servers[kind].port)
    via = open_provider(dataclasses.replace(S.settings_for(kind, proxy.endpoint, bucket),
                                            timeout=TIMEOUT))
    try:
        direct.write_bytes("big", b"r" * (24 * MiB))
        f = via.open_read("big")
        assert len(f.read(64 * 1024)) == 64 * 1024
        proxy.freeze()
        t0 = time.monotonic()
        with pytest.raises(Unavailable):
            while f.read(256 * 1024):
                pass
        assert time.monotonic() - t0 < BOUND
    finally:
        proxy.close()
        via.close()
        direct.close()


@pytest.mark.parametrize("kind", CLOUD_KINDS)
def test_cli_commands_fail_within_timeout(kind, silent_endpoint, tmp_path, capsys):
    """``omnifs ls/stat/put``, run in this process: the interpreter's start-up (0.5-1.5 s on a
    busy host) is not the store's time."""
    cfg = write_config(tmp_path / "omnifs.toml", [silent_settings(kind, silent_endpoint)])
    src = tmp_path / "data.txt"
    src.write_bytes(b"data")
    open_provider(silent_settings(kind, silent_endpoint)).close()  # the SDK's import, once
    for argv in (["ls", "silent:/"], ["stat", "silent:/k"], ["put", str(src), "silent:/k"]):
        t0 = time.monotonic()
        rc = cli(["--config", str(cfg), *argv])
        took = time.monotonic() - t0
        err = capsys.readouterr().err
        assert rc == 1, (argv, err)
        assert took < BOUND, f"omnifs {' '.join(argv)} ({kind}) took {took:.1f} s"
        assert "timed out" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("kind", CLOUD_KINDS)
def test_daemon_probe_and_replicate_fail_within_timeout(kind, silent_endpoint, servers,
                                                        make_settings, tmp_path):
    took = trio.run(_probe_in_thread, open_provider(silent_settings(kind, silent_endpoint)))
    assert took < BOUND, f"probe of a silent {kind} store took {took:.1f} s"

    # a replicate item to a store that hangs after the daemon's probe found it healthy
    good = make_settings("file", name="good")
    bucket = S.unique_bucket()
    S.create_bucket(kind, servers[kind].endpoint, bucket)
    proxy = S.CuttableProxy(servers[kind].port)
    target = dataclasses.replace(S.settings_for(kind, proxy.endpoint, bucket, name="target"),
                                 timeout=TIMEOUT)
    # no second probe round while the item runs: the board still says healthy
    cfg = make_config(tmp_path, [good, target], daemon={"probe_interval": 600.0})
    inner = default_executor(open_cache(cfg), Metrics())
    runs: list[tuple[float, BaseException | None]] = []

    def executor(catalog, providers, item):
        result: list = []
        runs.append(timed(lambda: result.append(inner(catalog, providers, item))))
        if runs[-1][1] is not None:
            raise runs[-1][1]
        return result[0]

    def queue_a_copy():
        cat = Catalog(cfg.catalog_path())
        try:
            write_file(cat, open_provider(good), "a.txt", b"to copy", ["target"])
        finally:
            cat.close()

    async def main():
        d = Daemon(cfg, executor=executor)
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run)
            assert d.board.usable("target")
            proxy.freeze()
            await trio.to_thread.run_sync(queue_a_copy)
            with trio.fail_after(60):
                await wait_until(lambda: runs, every=0.05)
            d.stop()

    try:
        trio.run(main)
    finally:
        proxy.close()
    took, err = runs[0]
    assert isinstance(err, Unavailable), repr(err)
    assert took < BOUND, f"replicating to a hung {kind} store took {took:.1f} s"


async def _probe_in_thread(provider) -> float:
    t0 = time.monotonic()
    try:
        await trio.to_thread.run_sync(probe_once, provider)
    except Unavailable:
        pass
    finally:
        provider.close()
    return time.monotonic() - t0
