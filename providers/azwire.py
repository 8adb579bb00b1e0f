"""Get Blob and a single Put Blob sent without the Azure SDK's pipeline, authorized by a SAS.

Why: copying and replicating small objects is CPU-bound in this process, and
the SDK's pipeline (a dozen policies, request/response logging objects,
per-request Shared Key signing, deserialization into model objects) costs
~1.4 ms of CPU per request on top of ~0.5 ms for the request itself
(time.process_time against Azurite, 64 KiB: Put Blob 1.8-1.9 ms through
``upload_blob``, 0.5 ms here; Get Blob 1.9-2.2 ms, 0.5 ms here).

How it stays correct: only a provider holding the account key uses it (the
SDK's own ``generate_container_sas`` signs a short-lived container SAS with
it, renewed long before it expires), and only where requests would not take
proxies or a netrc from the environment. Only success and a definite "no
such blob/container" are answered here; anything else (throttling, server
errors, an archived blob, auth problems, a dropped connection) makes the
caller repeat the call through the SDK, which has the retry policy and the
error parsing, so the fast path never reports an error the SDK would not.
A timeout is the exception: it is raised as it is (urllib3's own), since the
SDK does not retry one either and asking again would double the wait.
A body shorter than its Content-Length is an error (urllib3 enforces it).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import urllib3
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from .errors import timed_out

#: a SAS is valid this long, and renewed when half of it is gone
_SAS_LIFE = timedelta(hours=2)
#: its start is set back this much for clocks that run behind the store's
_SKEW = timedelta(minutes=15)


class Fallback(Exception):
    """The fast path cannot answer this one: ask the SDK."""


class AzWire:
    @classmethod
    def for_container(cls, container: Any, transport: dict, timeout: float,
                      pool_size: int) -> AzWire | None:
        """A fast path for ``container``, or None where one cannot be used safely."""
        cred = container.credential
        name, key = getattr(cred, "account_name", None), getattr(cred, "account_key", None)
        if not (name and key) or transport.get("use_env_settings") is not False:
            return None
        return cls(container, name, key, transport.get("connection_verify"), timeout, pool_size)

    def __init__(self, container: Any, account: str, account_key: str, ca_bundle: str | None,
                 timeout: float, pool_size: int):
        self._container = container.container_name
        self._account, self._key = account, account_key
        self._url = container.url.rstrip("/") + "/"
        self._version = container.api_version
        tls: dict[str, Any] = {"ca_certs": ca_bundle} if ca_bundle else {}
        self._pool = urllib3.PoolManager(
            maxsize=pool_size, retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout), **tls)
        self._lock = threading.Lock()
        self._sas, self._renew_at = "", 0.0

    def _token(self) -> str:
        with self._lock:
            if time.monotonic() >= self._renew_at:
                now = datetime.now(UTC)
                self._sas = generate_container_sas(
                    self._account, self._container, account_key=self._key,
                    permission=ContainerSasPermissions(read=True, write=True, create=True),
                    start=now - _SKEW, expiry=now + _SAS_LIFE)
                self._renew_at = time.monotonic() + _SAS_LIFE.total_seconds() / 2
            return self._sas

    def _send(self, method: str, name: str, headers: dict[str, str], body: bytes | None = None,
              stream: bool = False):
        url = f"{self._url}{quote(name, safe='~/')}?{self._token()}"
        headers["x-ms-version"] = self._version
        try:
            return self._pool.request(method, url, body=body, headers=headers,
                                      preload_content=not stream, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if timed_out(e):
                raise
            raise Fallback from e

    def get(self, name: str, start: int, length: int | None):
        """The response (headers, and the body as a stream) of a whole or ranged Get Blob."""
        headers = {}
        if start or length is not None:
            headers["Range"] = f"bytes={start}-{'' if length is None else start + length - 1}"
        r = self._send("GET", name, headers, stream=True)
        if r.status not in (200, 206):
            _check(r)
        return r

    def put(self, name: str, data: bytes, headers: dict[str, str]):
        """The response headers of a Put Blob of ``data`` (block blob, replacing any)."""
        r = self._send("PUT", name, {**headers, "x-ms-blob-type": "BlockBlob"}, data)
        if r.status != 201:
            _check(r)
        return r.headers

    def close(self) -> None:
        self._pool.clear()


class Missing(Exception):
    """A definite 404: ``container`` says whether the container itself is missing."""

    def __init__(self, container: bool):
        super().__init__("container" if container else "blob")
        self.container = container


def _check(r) -> None:
    body = r.data  # small error bodies; reading them to the end returns the connection
    if r.status == 404:
        raise Missing(container=b"ContainerNotFound" in body or
                      r.headers.get("x-ms-error-code") == "ContainerNotFound")
    raise Fallback(f"HTTP {r.status}")
