"""What the GCS and Azure providers send for a store's ``encryption`` setting.

The GCS emulator and Azurite accept a CMEK key name / encryption scope but keep
none (providers/capabilities.py quirks), so a recording proxy in front of each
real server checks every write request carries it: small and staged uploads,
and server-side copies.
"""

from __future__ import annotations

import http.client
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from omnifs.providers import open_provider
from tests import servers as S

KEY = "projects/p/locations/eu/keyRings/r/cryptoKeys/k"
#: response headers the proxy does not pass on (it answers with the whole body)
_HOP = {"transfer-encoding", "connection", "content-length", "keep-alive"}


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str):
        self.target = urlsplit(target).netloc
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _Forward)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        self.server.seen.append((self.command, self.path, {k.lower(): v
                                                           for k, v in headers.items()}))
        conn = http.client.HTTPConnection(self.server.target, timeout=30)
        conn.request(self.command, self.path, body=body or None,
                     headers={**headers, "Host": self.server.target})
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _any

    def log_message(self, *args) -> None:
        pass


def _recording(target: str) -> _Recorder:
    rec = _Recorder(target)
    threading.Thread(target=rec.serve_forever, daemon=True).start()
    return rec


def _writes(p) -> None:
    p.write_bytes("a.txt", b"small")
    big = p.capabilities.multipart_threshold + 10
    p.write("b.bin", io.BytesIO(b"x" * big), big)
    p.copy("a.txt", "c.txt")


def test_gcs_sends_the_kms_key_name(servers):
    bucket = S.unique_bucket()
    S.create_bucket("gs", servers["gs"].endpoint, bucket)
    rec = _recording(servers["gs"].endpoint)
    try:
        settings = S.settings_for("gs", rec.endpoint, bucket)
        settings.extra["encryption"] = KEY
        settings.timeout = 30.0  # the proxy holds each answer whole
        p = open_provider(settings)
        _writes(p)
        p.close()
    finally:
        rec.shutdown()
    writes = [(m, path) for m, path, _ in rec.seen
              if m in ("POST", "PUT") and ("/upload/" in path or "/rewriteTo/" in path)]
    assert any("rewriteTo" in path for _, path in writes)
    starts = [path for m, path in writes if m == "POST"]
    assert len(starts) >= 3, rec.seen
    for path in starts:
        q = parse_qs(urlsplit(path).query)
        assert KEY in q.get("kmsKeyName", []) + q.get("destinationKmsKeyName", []), path


def test_azure_sends_the_encryption_scope(servers):
    bucket = S.unique_bucket()
    S.create_bucket("az", servers["az"].endpoint, bucket)
    rec = _recording(servers["az"].endpoint)
    try:
        settings = S.settings_for("az", rec.endpoint, bucket)
        settings.extra["encryption"] = "scope1"
        settings.timeout = 30.0  # the proxy holds each answer whole
        p = open_provider(settings)
        _writes(p)
        p.close()
    finally:
        rec.shutdown()
    puts = [(path, h) for m, path, h in rec.seen if m == "PUT"]
    comps = {parse_qs(urlsplit(path).query).get("comp", [""])[0] for path, _ in puts}
    assert {"", "block", "blocklist"} <= comps, comps
    assert any("x-ms-copy-source" in h for _, h in puts)
    for path, h in puts:
        assert h.get("x-ms-encryption-scope") == "scope1", path
