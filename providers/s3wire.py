"""The two hot S3 requests, GET Object and a single PUT Object, without botocore's client layer.

Why: copying and replicating small objects is CPU-bound in this process, and
for a 256 KiB object botocore's per-call machinery (parameter validation,
event hooks, endpoint rules, response parsing into dicts) costs ~1 ms of CPU
per request on top of ~1 ms for the request itself (measured with
time.process_time against moto: GET 1.7-2.6 ms through the client, 0.9-1.1 ms
here; PUT 2.2 ms, 1.2 ms here).

What stays botocore's: the request is signed by botocore's own SigV4 signer
with the client's credentials and region, and sent through the client's own
connection pool (its TLS verification, proxies, timeouts), to the URL the
client itself builds for the bucket (addressing style included). Only the
happy path and "no such key" are handled here: any other answer (redirects,
throttling, server errors, auth problems, a dropped connection) makes the
caller repeat the call through the full client, which has the retry policy,
the region redirector and the error parsing. So the fast path can never
report an error the client would not have. A timeout is the exception: it is
raised as it is, since the client does not retry one either (a store silent
for ``timeout`` seconds is down) and asking it again would double the wait.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import botocore.exceptions as bx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

from .errors import timed_out
from .streams import WireBody

_CODE = re.compile(rb"<Code>([^<]*)</Code>")


class Fallback(Exception):
    """The fast path cannot answer this one: ask the full client."""


class S3Wire:
    def __init__(self, client: Any, bucket: str, put_headers: dict[str, str] | None = None):
        self._client = client
        self._bucket = bucket
        #: headers every PUT carries (the store's server-side encryption)
        self._put_headers = dict(put_headers or {})
        # private but long-stable botocore attributes: the client's signer state and pool
        self._signer_state = client._request_signer
        self._http = client._endpoint.http_session
        self._region = client.meta.region_name or "us-east-1"
        self._base: str | None = None

    def _bucket_url(self) -> str:
        """The bucket's URL as the client builds it (addressing style included), ending in "/".

        Made on first use, not at construction: presigning needs credentials,
        and a provider without them must still open (and fail on use, clearly).
        """
        if self._base is None:
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": "k"}, ExpiresIn=60)
            self._base = url.split("?", 1)[0][:-1]  # ".../k" -> ".../"
        return self._base

    def _send(self, method: str, name: str, headers: dict[str, str], body: bytes | None = None):
        creds = self._signer_state._credentials
        if creds is None:
            raise Fallback  # the client raises its own NoCredentialsError
        try:
            base = self._bucket_url()
        except bx.BotoCoreError as e:
            raise Fallback from e
        req = AWSRequest(method=method, url=base + quote(name, safe="/~"),
                         headers=headers, data=body)
        req.stream_output = method == "GET"
        S3SigV4Auth(creds.get_frozen_credentials(), "s3", self._region).add_auth(req)
        try:
            return self._http.send(req.prepare())
        except (bx.BotoCoreError, OSError) as e:
            if timed_out(e):
                raise
            raise Fallback from e

    def get(self, name: str, range_header: str | None) -> tuple[Any, WireBody]:
        """The response headers and the body (a body shorter than its length is an error)."""
        r = self._send("GET", name, {"Range": range_header} if range_header else {})
        if r.status_code not in (200, 206):
            _raise_for(r, "GetObject")
        return r.headers, WireBody(r.raw, r.headers.get("Content-Length"), _short)

    def put(self, name: str, body: bytes, metadata: dict[str, str],
            content_type: str | None, conditions: dict[str, str] | None = None) -> dict:
        """PUT a whole object; put_object's answer shape (ETag, VersionId).

        ``conditions``: If-None-Match / If-Match headers; a refusal (412) falls
        back to the client, which raises it as the store's error.
        """
        headers = {f"x-amz-meta-{k}": v for k, v in metadata.items()}
        headers.update(self._put_headers)
        headers.update(conditions or {})
        if content_type:
            headers["Content-Type"] = content_type
        r = self._send("PUT", name, headers, body)
        if r.status_code != 200:
            _raise_for(r, "PutObject")
        return {"ETag": r.headers.get("ETag"), "VersionId": r.headers.get("x-amz-version-id")}


def _short(got: int, expected: int) -> BaseException:
    return bx.IncompleteReadError(actual_bytes=got, expected_bytes=expected)


def _raise_for(r, operation: str) -> None:
    """A definite "no such key/bucket" as the client would raise it; anything else falls back.

    Reading the (small) error body to its end hands the connection back to the pool.
    """
    m = _CODE.search(r.content or b"")
    if r.status_code == 404 and m:
        code = m.group(1).decode(errors="replace")
        raise bx.ClientError({"Error": {"Code": code, "Message": code},
                              "ResponseMetadata": {"HTTPStatusCode": 404}}, operation)
    raise Fallback(f"HTTP {r.status_code}")

