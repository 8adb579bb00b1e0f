"""A real Prometheus scrapes a real mount and the daemon during a workload.

The mount serves /metrics on ``[metrics] mount_port``, the daemon on
``[metrics] port``; the test asks Prometheus's HTTP API whether our series
arrived with plausible values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from omnifs.mountfs.metrics import SERIES
from tests.mount.conftest import ROOT, omnifs
from tests.prometheus import Prometheus
from tests.servers import free_port, wait_port

MiB = 1024 * 1024
FILES = 4
#: bigger than half the cache: not kept in the cache after upload, so reading it back
#: fetches it from the store again (mountfs/written.py)
SIZE = 3 * MiB


def test_prometheus_scrapes_mount_and_daemon(make_mount, tmp_path):
    m = make_mount(("file",), mount=False, cache={"size": "5MiB", "block_size": "1MiB"})
    mount_port, daemon_port = free_port(), free_port()
    with m.config.open("a") as f:
        f.write(f"\n[metrics]\nport = {daemon_port}\nmount_port = {mount_port}\n"
                '[daemon]\nprobe_interval = 0.3\nidle_poll = 0.05\n')
    m.mount()
    daemon = subprocess.Popen([sys.executable, "-m", "omnifs", "--config", str(m.config),
                               "daemon"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    prom = None
    try:
        wait_port(mount_port, 10)
        wait_port(daemon_port, 30, daemon)
        prom = Prometheus(tmp_path / "prom", {"mount": f"127.0.0.1:{mount_port}",
                                              "daemon": f"127.0.0.1:{daemon_port}"})
        # the first scrape sees the counters at rest, so increase() covers the workload
        prom.wait_for('count(omnifs_store_requests_total{job="mount",op="get"})',
                      lambda v: v > 0)
        payload = [os.urandom(SIZE) for _ in range(FILES)]
        for i, data in enumerate(payload):
            (m.mp / f"f{i}").write_bytes(data)
        # the page cache would answer: drop it, then read every file back through the mount
        subprocess.run(["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"], check=False)
        for i, data in enumerate(payload):
            assert (m.mp / f"f{i}").read_bytes() == data
        total = FILES * SIZE
        name = m.names[0]
        put = f'omnifs_store_written_bytes_total{{job="mount",provider="{name}",op="put"}}'
        got = f'omnifs_store_read_bytes_total{{job="mount",provider="{name}",op="get"}}'
        written = prom.wait_for(put, lambda v: v >= total)
        read = prom.wait_for(got, lambda v: v >= 0.9 * total)
        assert written == total
        assert 0.9 * written <= read <= 1.5 * written
        assert prom.value('sum(omnifs_store_requests_total{job="mount",op="put"})') >= FILES
        assert prom.wait_for('sum(omnifs_fuse_op_seconds_count{job="mount",op="write"})',
                             lambda v: v > 0)
        assert prom.wait_for('omnifs_file_writes_total{job="mount"}', lambda v: v >= FILES)
        assert prom.wait_for('omnifs_file_read_bytes_total{job="mount"}', lambda v: v >= total)
        assert prom.wait_for('omnifs_cache_misses_total{job="mount"}', lambda v: v > 0)
        assert prom.value('omnifs_staging_files{job="mount"}') is not None
        assert prom.query(f'omnifs_cost_usd_total{{job="mount",provider="{name}"}}')
        # the daemon: its own series, kept, and its probes measured as store requests
        assert prom.wait_for('omnifs_queue_depth{job="daemon"}', lambda v: v >= 0) == 0
        assert prom.wait_for(f'omnifs_provider_up{{job="daemon",provider="{name}"}}',
                             lambda v: v == 1)
        assert prom.wait_for(f'sum(omnifs_store_requests_total{{job="daemon",'
                             f'provider="{name}"}})', lambda v: v > 0)
        assert prom.wait_for(f'omnifs_stored_bytes{{job="daemon",provider="{name}"}}',
                             lambda v: v >= total, timeout=45)
        assert prom.targets_up() == {"mount": "up", "daemon": "up"}
        for series in SERIES:  # everything the dashboards may ask the mount for
            assert prom.query(f'{series}{{job="mount"}}'), series
        # compare reads the same history back from Prometheus
        cfg = m.root / "with-prometheus.toml"
        cfg.write_text(m.config.read_text().replace(
            "[metrics]\n", f'[metrics]\nprometheus_url = "{prom.url}"\n'))
        cfg.chmod(0o600)
        out = omnifs("metrics", "compare", "--since", "5m", "--json", config=cfg).stdout
        body = json.loads(out)
        assert body["source"] == prom.url
        rows = {(r["provider"], r["op"]): r for r in body["rows"]}
        assert rows[(name, "get")]["p95_ms"] is not None
        assert rows[(name, "put")]["requests"] >= FILES
    finally:
        if prom is not None:
            prom.stop()
        daemon.terminate()
        daemon.wait(20)
