"""The daemon's own alerts: a store stopped fires ``provider_down``, started again resolves it.

The store is S3 behind a proxy the test freezes (the server hangs) and thaws;
the webhook is a real HTTP server that refuses the first call, so the
daemon's retry is exercised too.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from omnifs.config import parse_config
from omnifs.providers import ProviderSettings
from tests import servers as S
from tests.integration.test_daemon import FAST_DAEMON, run_daemon_until, table_of


class Hook:
    """Records the alerts POSTed to it; answers 500 to the first request."""

    def __init__(self) -> None:
        self.alerts: list[dict] = []
        self.calls = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls += 1
                if hook.calls == 1:
                    self.send_response(500)
                else:
                    hook.alerts += json.loads(body)["alerts"]
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self, provider: str) -> list[str]:
        return [a["state"] for a in self.alerts
                if a["alert"] == "provider_down" and a["provider"] == provider]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_provider_down_fires_and_resolves(servers, make_settings, tmp_path):
    one = make_settings("file", name="one")
    real = make_settings("s3", name="two")
    proxy = S.CuttableProxy(servers["s3"].port)
    two = ProviderSettings(name="two", uri=real.uri, endpoint=proxy.endpoint,
                           access_key=real.access_key, secret_key=real.secret_key,
                           region=real.region, timeout=1.0)
    hook = Hook()
    cfg = parse_config({
        "catalog": {"url": f"sqlite:///{tmp_path}/catalog.db"},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {s.name: table_of(s) for s in (one, two)},
        "daemon": FAST_DAEMON,
        "metrics": {"port": 0},
        "alerts": {"provider_down": 0.5, "error_rate": 0.5, "interval": 0.1,
                   "webhook": hook.url, "webhook_timeout": 2, "webhook_retries": 3},
    })
    seen: dict[str, float] = {}

    async def chaos(d, elapsed):
        if "frozen" not in seen and d.board.status("two") == "healthy":
            proxy.freeze()
            seen["frozen"] = elapsed
        elif "frozen" in seen and "thawed" not in seen and "firing" in hook.states("two"):
            proxy.thaw()
            seen["thawed"] = elapsed

    try:
        _, d = run_daemon_until(cfg, lambda c: hook.states("two")[-1:] == ["resolved"],
                                timeout=60, during=chaos)
    finally:
        proxy.thaw()
        proxy.close()
        hook.close()
    assert hook.states("two") == ["firing", "resolved"]
    assert hook.states("one") == []
    assert hook.calls >= 3  # the refused first call was retried
    assert d.alerts is not None and not d.alerts.firing
