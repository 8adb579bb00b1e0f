"""botocore's private parts used by providers/s3.py and providers/s3wire.py.

* ``client._request_signer._credentials``: the credentials the S3 fast path signs with;
* ``client._endpoint.http_session.send(prepared)``: the client's own pool, which the fast
  path sends through, streaming when ``AWSRequest.stream_output`` is set;
* ``S3SigV4Auth(credentials, "s3", region).add_auth(request)``: the SigV4 signer;
* the session's ``response_parser_factory`` component and its
  ``set_parser_defaults(timestamp_parser=...)``: the cheap timestamp parser;
* the ``needs-retry.s3`` event, whose handlers get ``caught_exception``: raising it there
  ends the retries after a timed-out attempt.

No server is needed: requests go to loopback sockets that refuse or never answer.
"""

from __future__ import annotations

import inspect
import re
import socket
import time
from datetime import UTC, datetime

import botocore.auth
import botocore.awsrequest
import botocore.exceptions as bx
import botocore.httpsession
import botocore.session
import botocore.utils
import pytest

from omnifs.providers import ProviderSettings, open_provider
from omnifs.providers.errors import OmnifsError
from tests.servers import free_port

KEY_ID, SECRET = "AKIDCONTRACT", "contract-secret"


@pytest.fixture
def s3():
    """An S3 provider as omnifs builds it, pointed at a loopback port nothing listens on."""
    p = open_provider(ProviderSettings(
        name="s3c", uri="s3://contract-bucket", endpoint=f"http://127.0.0.1:{free_port()}",
        access_key=KEY_ID, secret_key=SECRET, region="eu-west-1", timeout=0.5,
        extra={"max_attempts": 3}))
    yield p
    p.close()


def test_request_signer_keeps_the_clients_credentials(s3):
    creds = s3.client._request_signer._credentials
    frozen = creds.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == (KEY_ID, SECRET)


def test_endpoint_http_session_sends_a_prepared_request(s3):
    session = s3.client._endpoint.http_session
    assert isinstance(session, botocore.httpsession.URLLib3Session)
    assert list(inspect.signature(session.send).parameters) == ["request"]
    req = botocore.awsrequest.AWSRequest(method="GET", url="http://127.0.0.1:9/k", headers={})
    req.stream_output = True
    prepared = req.prepare()
    assert isinstance(prepared, botocore.awsrequest.AWSPreparedRequest)
    assert prepared.stream_output is True  # the pool streams the body instead of reading it


def test_sigv4_signer_adds_the_s3_authorization_headers(s3):
    creds = s3.client._request_signer._credentials.get_frozen_credentials()
    req = botocore.awsrequest.AWSRequest(method="PUT", url="http://127.0.0.1:9/b/k",
                                         headers={"x-amz-meta-a": "1"}, data=b"body")
    botocore.auth.S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(req)
    auth = req.headers["Authorization"]
    stamp = req.headers["X-Amz-Date"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", stamp)
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{stamp[:8]}/eu-west-1/s3/"
                           "aws4_request, SignedHeaders=")
    assert "x-amz-meta-a" in auth and "Signature=" in auth
    assert "X-Amz-Content-SHA256" in req.headers


def test_session_parser_defaults_take_our_timestamp_parser():
    core = botocore.session.get_session()
    seen: list[str] = []

    def parse(value: str) -> datetime:
        seen.append(value)
        return botocore.utils.parse_timestamp(value)

    factory = core.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse)
    client = core.create_client("s3", region_name="us-east-1", aws_access_key_id="a",
                                aws_secret_access_key="b")
    try:
        shape = client.meta.service_model.operation_model("HeadObject").output_shape
        parsed = factory.create_parser("rest-xml").parse(
            {"status_code": 200, "body": b"",
             "headers": {"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}}, shape)
    finally:
        client.close()
    assert seen == ["Wed, 21 Oct 2015 07:28:00 GMT"]
    assert parsed["LastModified"] == datetime(2015, 10, 21, 7, 28, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2015-10-21T07:28:00.000Z", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_our_timestamp_parser_agrees_with_botocores(value):
    from omnifs.providers.s3 import parse_timestamp

    assert parse_timestamp(value) == botocore.utils.parse_timestamp(value)


def test_needs_retry_handlers_get_the_caught_exception(s3):
    seen: list[BaseException | None] = []

    def record(caught_exception=None, **_):
        seen.append(caught_exception)

    s3.client.meta.events.register_first("needs-retry.s3", record)
    with pytest.raises(OmnifsError):
        s3.head("k")  # connection refused on every attempt
    assert seen and all(isinstance(e, bx.EndpointConnectionError) for e in seen)


def test_a_timed_out_attempt_ends_the_retries(s3):
    """A store that accepts connections and never answers costs one timeout, not three."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel's backlog; nothing is ever read
    try:
        p = open_provider(ProviderSettings(
            name="s3s", uri="s3://contract-bucket",
            endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}", access_key=KEY_ID,
            secret_key=SECRET, region="eu-west-1", timeout=0.5, extra={"max_attempts": 3}))
        try:
            t0 = time.monotonic()
            with pytest.raises(OmnifsError):
                p.head("k")
            took = time.monotonic() - t0
        finally:
            p.close()
    finally:
        silent.close()
    assert took < 3 * 0.5, took
