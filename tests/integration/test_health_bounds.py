"""Health follows reality quickly, with a real daemon and real servers.

A store that hangs (its server SIGSTOPped) must be ``down`` in what ``omnifs
status`` reads within the probe deadline (``probe_timeout``, or the store's
``timeout`` if shorter) plus one ``probe_interval``; once it answers again
(SIGCONT) it must be ``healthy`` within 30 s, not ``degraded`` for minutes.
A dead one (killed: connections refused) must be down within the same bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time

import pytest
import trio

from omnifs.catalog import Catalog
from omnifs.cli.daemon import gather
from omnifs.daemon.health import probe_once
from omnifs.daemon.main import Daemon
from omnifs.mountfs.stores import counts_against
from omnifs.providers import RootMissing, open_provider
from tests import servers as S
from tests.integration.test_daemon import make_config
from tests.poll import wait_until

INTERVAL = 2.0
PROBE_TIMEOUT = 3.0
#: round bookkeeping and this test's polling
SLACK = 1.0


def status_of(cat: Catalog, name: str) -> str | None:
    row = cat.health.verdicts().get(name)
    return row.status if row else None


@pytest.mark.parametrize("kind", ["s3", "gs", "az"])
def test_status_is_down_soon_after_a_hang_and_healthy_soon_after_it_ends(kind, tmp_path,
                                                                          make_settings):
    server = S.start(kind)  # our own: SIGSTOP must not stall the session's server
    try:
        bucket = S.unique_bucket()
        S.create_bucket(kind, server.endpoint, bucket)
        store = dataclasses.replace(S.settings_for(kind, server.endpoint, bucket, name="store"),
                                    timeout=10.0)
        cfg = make_config(tmp_path, [store, make_settings("file", name="local")],
                          daemon={"probe_interval": INTERVAL, "probe_timeout": PROBE_TIMEOUT})
        watch = Catalog(cfg.catalog_path())
        seen: dict[str, float] = {}

        async def until(status: str, limit: float) -> float:
            """Seconds until what `omnifs status` reads says ``status``."""
            t0 = time.monotonic()
            with trio.fail_after(limit):
                await wait_until(lambda: status_of(watch, "store") == status, every=0.1)
            return time.monotonic() - t0

        async def main():
            d = Daemon(cfg)
            async with trio.open_nursery() as nursery:
                await nursery.start(d.run)
                await until("healthy", 30)
                os.killpg(server.proc.pid, signal.SIGSTOP)
                seen["down"] = await until("down", 60)
                os.killpg(server.proc.pid, signal.SIGCONT)
                seen["healthy"] = await until("healthy", 90)
                # what `omnifs status` prints comes from the same rows
                info = await trio.to_thread.run_sync(gather, cfg)
                seen["status"] = info["providers"]["store"]["status"]
                server.stop()  # dead: connections refused
                seen["dead"] = await until("down", 60)
                d.stop()

        try:
            trio.run(main)
        finally:
            watch.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGCONT)
        server.stop()
    assert seen["down"] <= PROBE_TIMEOUT + INTERVAL + SLACK, seen
    assert seen["dead"] <= PROBE_TIMEOUT + INTERVAL + SLACK, seen
    assert seen["healthy"] <= 30, seen
    assert seen["status"] == "healthy"


@pytest.mark.parametrize("kind", S.KINDS)
def test_a_store_whose_bucket_is_missing_fails_its_probe(kind, servers, tmp_path):
    """Not found is a healthy probe answer, unless the bucket itself is what is missing."""
    endpoint = None if kind == "file" else servers[kind].endpoint
    gone = S.settings_for(kind, endpoint, "omnifs-no-such-bucket",
                          local_root=str(tmp_path / "no-such-dir"))
    provider = open_provider(gone)
    try:
        with pytest.raises(RootMissing) as err:
            probe_once(provider)
        assert counts_against(err.value)  # the mount counts it as a failure too
    finally:
        provider.close()


def test_the_daemon_says_down_for_a_store_whose_bucket_is_missing(servers, tmp_path,
                                                                    make_settings):
    gone = S.settings_for("s3", servers["s3"].endpoint, "omnifs-no-such-bucket", name="gone")
    cfg = make_config(tmp_path, [make_settings("file", name="local"), gone],
                      daemon={"probe_interval": INTERVAL, "probe_timeout": PROBE_TIMEOUT})
    watch = Catalog(cfg.catalog_path())

    async def main():
        d = Daemon(cfg)
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run)
            with trio.fail_after(PROBE_TIMEOUT + 2 * INTERVAL + SLACK):
                await wait_until(lambda: status_of(watch, "gone") == "down", every=0.1)
            assert status_of(watch, "local") == "healthy"
            d.stop()

    try:
        trio.run(main)
    finally:
        watch.close()
