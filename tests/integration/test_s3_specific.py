"""What only the S3-API providers (s3://, minio://) do, on moto's real server.

The shared contract is in test_conformance.py; these cover the paths it cannot
reach cheaply: aborting a failed multipart upload, part-wise server-side copy
(normally above 5 GiB, here with the limit lowered), archived objects, and how
minio:// reads its endpoint.
"""

from __future__ import annotations

import io
import os

import boto3
import pytest

import omnifs.providers.minio as pminio
import omnifs.providers.s3 as ps3
from omnifs.providers import (
    Archived,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProviderSettings,
    Unavailable,
    open_provider,
)
from tests import servers as S
from tests.fastpath import check_readinto, check_short_body_unavailable

MiB = 1024 * 1024


class FailingStream:
    """Gives ``good`` bytes, then fails like a disk or pipe error."""

    def __init__(self, good: int):
        self.left = good

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("source went away")
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def raw_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1")


@pytest.mark.parametrize("kind", ["s3", "minio"])
def test_failed_multipart_upload_leaves_nothing(kind, make_provider, servers):
    p = make_provider(kind)
    with pytest.raises(OSError, match="source went away"):
        p.write("big", FailingStream(40 * MiB), None)  # type: ignore[arg-type]
    assert not p.exists("big")
    uploads = raw_client(servers[kind].endpoint).list_multipart_uploads(Bucket=p.bucket)
    assert not uploads.get("Uploads"), "the multipart upload was not aborted"


@pytest.mark.parametrize("kind", ["s3", "minio"])
def test_short_stream_is_invalid_input_and_invisible(kind, make_provider):
    p = make_provider(kind)
    with pytest.raises(InvalidInput, match="ended"):
        p.write("short", io.BytesIO(b"x" * 100), 200)
    assert not p.exists("short")


def test_copy_by_parts_above_the_single_copy_limit(make_provider, monkeypatch):
    p = make_provider("s3", prefix="root")
    data = os.urandom(12 * MiB + 7)
    p.write_bytes("src", data, {"omnifs_sha256": "abc"}, content_type="text/x-thing")
    monkeypatch.setattr(ps3, "COPY_LIMIT", 5 * MiB)
    monkeypatch.setattr(ps3, "COPY_PART", 5 * MiB)  # moto refuses smaller parts
    info = p.copy("src", "dst")
    assert info.etag and info.etag.endswith("-3")  # three part copies
    head = p.head("dst")
    assert head.metadata == {"omnifs_sha256": "abc"}
    assert head.content_type == "text/x-thing"
    assert p.read_bytes("dst") == data
    p.copy("src", "dst2", {"k": "v"})
    assert p.head("dst2").metadata == {"k": "v"}


def test_archived_object_read_is_a_one_line_conflict(make_provider):
    p = make_provider("s3")
    p.write_bytes("cold", b"frozen", {"a": "1"})
    p.set_tier("cold", "GLACIER")
    info = p.head("cold")
    assert info.tier == "GLACIER" and info.metadata == {"a": "1"}
    with pytest.raises(Archived, match="restore") as e:
        p.read_bytes("cold")
    assert "\n" not in str(e.value)


def test_minio_endpoint_from_environment(servers, monkeypatch):
    endpoint = servers["minio"].endpoint
    monkeypatch.setenv("MINIO_ENDPOINT", endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", "test")
    monkeypatch.setenv("MINIO_SECRET_KEY", "test")
    p = open_provider(ProviderSettings(name="m", uri="minio://omnifs-no-such-bucket",
                                       region="us-east-1", timeout=5))
    try:
        with pytest.raises(NotFound, match="bucket 'omnifs-no-such-bucket' does not exist"):
            p.head("x")
    finally:
        p.close()
    assert pminio._endpoint(ProviderSettings(name="m", uri="minio://b", endpoint="http://h:9")) \
        == ("h:9", False)
    assert pminio._endpoint(ProviderSettings(name="m", uri="minio://b", endpoint="https://h")) \
        == ("h", True)
    monkeypatch.delenv("MINIO_ENDPOINT")
    with pytest.raises(InvalidInput, match="needs an endpoint"):
        open_provider(ProviderSettings(name="m", uri="minio://bucket"))


def _client_calls_forbidden(p, monkeypatch, names=("get_object", "put_object")):
    def refuse(*args, **kwargs):
        raise AssertionError("the fast path should have answered")

    for n in names:
        monkeypatch.setattr(p.client, n, refuse)


@pytest.mark.parametrize("key", ["plain", "dir/ünïcødé ☃ name.bin", "a+b=c&d%20e~f", "x//y/./z",
                                 "sp ace/(1)[2]{3}!$'*,;:@"])
def test_fast_path_serves_gets_and_small_puts(key, make_provider, monkeypatch):
    """GET and single PUT go out without the client's call layer, signed and encoded as it would."""
    p = make_provider("s3")
    _client_calls_forbidden(p, monkeypatch)
    out = p.write_bytes(key, b"0123456789", {"color": "blue"}, "text/plain")
    assert out.etag
    with p.open_read(key) as f:
        assert f.read() == b"0123456789"
        assert f.info.metadata == {"color": "blue"}
        assert f.info.content_type == "text/plain" and f.info.size == 10
        assert f.info.last_modified and f.info.etag == out.etag
    with p.open_read(key, 3, 7) as f:
        assert f.read() == b"3456" and f.info.size == 10
    assert p.head(key).metadata == {"color": "blue"}  # what another tool sees
    with pytest.raises(NotFound, match="no such object"):
        p.open_read(key + ".missing")


def test_fast_path_hands_unusual_answers_to_the_client(make_provider, servers):
    p = make_provider("s3")
    p.write_bytes("k", b"abc")
    with p.open_read("k", 10) as f:  # 416 from the fast path: the client's answer is "nothing"
        assert f.read() == b""
    gone = open_provider(S.settings_for("s3", servers["s3"].endpoint, "no-such-bucket-here"))
    try:
        with pytest.raises(NotFound, match="bucket"):
            gone.open_read("k")
        with pytest.raises(NotFound, match="bucket"):
            gone.write_bytes("k", b"x")
    finally:
        gone.close()


def test_without_credentials_opens_and_fails_clearly_on_use(servers, monkeypatch):
    """The fast path needs credentials to build its URL: a provider without any must still open."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    p = open_provider(ProviderSettings(name="nocreds", uri="s3://some-bucket/p",
                                       endpoint=servers["s3"].endpoint, timeout=2.0))
    try:
        with pytest.raises(PermissionDenied, match="no credentials"):
            p.read_bytes("k")
        with pytest.raises(PermissionDenied, match="no credentials"):
            p.write_bytes("k", b"x")
    finally:
        p.close()


def test_fast_path_reads_into_the_callers_buffer(make_provider, monkeypatch):
    """The mount's cold reads fill cache blocks with readinto.

    No intermediate copies, same bytes.
    """
    p = make_provider("s3")
    _client_calls_forbidden(p, monkeypatch)
    data = os.urandom(3 * 1024 * 1024 + 7)
    p.write_bytes("big", data)
    check_readinto(p, "big", data)


def test_fast_path_body_shorter_than_its_length_is_unavailable():
    """A server that closes early: the reader gets Unavailable, never a short block as whole."""
    with S.short_body_server() as endpoint:
        p = open_provider(S.settings_for("s3", endpoint, "bkt"))
        try:
            check_short_body_unavailable(p, "k")
            with pytest.raises(Unavailable):
                p.open_read("k").read()
        finally:
            p.close()


@pytest.mark.parametrize("kind", ["s3", "minio"])
def test_slow_multipart_completion_outwaits_the_request_timeout(make_settings, kind):
    """moto takes seconds to assemble a big upload; the short per-request timeout must not
    turn that into a retried CompleteMultipartUpload on a finished upload (an error).

    The timeout is shorter than moto's assembly of 160 MiB (3-4 s here) but longer than
    its pauses while taking four 16 MiB parts at once: a timed-out part is not retried
    (the store counts as down)."""
    import dataclasses

    p = open_provider(dataclasses.replace(make_settings(kind), timeout=2.5))
    try:
        data = os.urandom(1024 * 1024) * 160  # ten 16 MiB parts
        out = p.write("big", io.BytesIO(data), len(data))
        assert out.size in (0, len(data))
        assert p.head("big").size == len(data)
    finally:
        p.close()
