"""A real Prometheus (Debian's ``prometheus`` package) for the metrics tests.

Started on a free loopback port with a generated config that scrapes the
given targets every 0.5 s; queried through its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.servers import free_port, wait_port


def binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: scripts/install-system.sh installs it"
    return found


class Prometheus:
    def __init__(self, root: Path, targets: dict[str, str]):
        """``targets``: job name -> host:port of a /metrics endpoint."""
        root.mkdir(parents=True, exist_ok=True)
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n"
                       f"      - targets: ['{target}']\n" for job, target in targets.items())
        config = root / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n"
                          f"scrape_configs:\n{jobs}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary(), f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(root / "prometheus.log", "w"))  # noqa: SIM115
        wait_port(self.port, 30.0, self.proc)
        self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> None:
        """The port opens before the storage is ready (503 until then)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def _get(self, path: str, **params: str) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The instant vector of ``expr``: [{"metric": labels, "value": [t, "v"]}, ...]."""
        return self._get("/api/v1/query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        """The single value of a scalar-like ``expr`` (a sum), None when it has no series."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, ok, timeout: float = 30.0) -> float:
        """Query ``expr`` until ``ok(value)``; returns the value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(expr)
            if value is not None and ok(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{expr}: still {value} after {timeout:g} s")

    def targets_up(self) -> dict[str, str]:
        return {t["labels"]["job"]: t["health"]
                for t in self._get("/api/v1/targets")["activeTargets"]}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
