"""The one HTTP-status table: every provider reads a status the same way, whatever its SDK.

Each SDK's own error for a status (botocore's ClientError, minio's S3Error and
ServerError, google-api-core's and requests' errors, azure-core's classes) goes
through the provider's ``translate``; no server is needed to build them.
"""

from __future__ import annotations

import types

import botocore.exceptions as bx
import pytest
import requests
import urllib3.exceptions as ux
from azure.core import exceptions as aexc
from google.api_core import exceptions as gexc
from minio.error import S3Error, ServerError

from omnifs.providers import (
    Archived,
    Conflict,
    InvalidInput,
    NotFound,
    OmnifsError,
    PermissionDenied,
    PreconditionFailed,
    ProviderSettings,
    Throttled,
    TimedOut,
    Unavailable,
    open_provider,
)
from omnifs.providers.http_status import STATUS_ERRORS, status_class, status_error

#: nothing listens here: building a client does not connect
DEAD = "http://127.0.0.1:9"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")

#: what each status means, for every store
EXPECTED = {
    400: InvalidInput, 401: PermissionDenied, 403: PermissionDenied, 404: NotFound,
    405: Unavailable, 408: Unavailable, 409: Conflict, 411: InvalidInput, 412: PreconditionFailed,
    413: InvalidInput, 416: InvalidInput, 429: Throttled, 500: Unavailable, 501: Unavailable,
    502: Unavailable, 503: Throttled, 504: Unavailable,
}


@pytest.fixture(scope="module")
def providers():
    settings = {
        "s3": ProviderSettings(name="s3", uri="s3://bucket-x", endpoint=DEAD, access_key="a",
                               secret_key="b", region="us-east-1"),
        "minio": ProviderSettings(name="minio", uri="minio://bucket-x", endpoint=DEAD,
                                  access_key="a", secret_key="b"),
        "gs": ProviderSettings(name="gs", uri="gs://bucket-x", endpoint=DEAD),
        "az": ProviderSettings(
            name="az", uri="az://bucket-x",
            connection_string=("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                               f"AccountKey={AZURITE_KEY};"
                               f"BlobEndpoint={DEAD}/devstoreaccount1;")),
    }
    opened = {kind: open_provider(s) for kind, s in settings.items()}
    yield opened
    for p in opened.values():
        p.close()


def _azure(status: int) -> aexc.HttpResponseError:
    """The class the Blob SDK raises for ``status`` (azure-core's map), with the status."""
    cls = {401: aexc.ClientAuthenticationError, 404: aexc.ResourceNotFoundError,
           409: aexc.ResourceExistsError, 412: aexc.ResourceModifiedError}.get(
        status, aexc.HttpResponseError)
    e = cls(message=f"status {status}")
    e.status_code = status
    return e


def _requests(status: int) -> requests.HTTPError:
    resp = requests.Response()
    resp.status_code = status
    return requests.HTTPError("", response=resp)


def sdk_errors(kind: str, status: int) -> list[BaseException]:
    """Every shape in which ``kind``'s SDK reports an answer with ``status``."""
    if kind == "s3":
        return [bx.ClientError({"Error": {"Code": code, "Message": ""},
                                "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
                for code in ("", str(status))]  # a HEAD's error has the status as its code
    if kind == "minio":
        response = types.SimpleNamespace(status=status, headers={}, data=b"")
        return [S3Error(response, "", "", "/bucket-x/k", "id", "host"),
                ServerError(f"status {status}", status)]
    if kind == "gs":
        return [gexc.from_http_status(status, "refused"), _requests(status)]
    return [_azure(status)]


@pytest.mark.parametrize("status", sorted(EXPECTED))
@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az"])
def test_every_provider_reads_a_status_alike(providers, kind, status):
    p = providers[kind]
    for exc in sdk_errors(kind, status):
        err = p.translate(exc, "a/k")
        assert type(err) is EXPECTED[status], (kind, status, exc, err)
        assert err.provider == kind and err.key == "a/k"
        assert str(err).startswith(f"{kind}: a/k: ")


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_the_table_says_the_same(status):
    assert status_class(status) is EXPECTED[status]
    err = status_error(status, provider="p", key="k")
    assert type(err) is EXPECTED[status]
    assert err.transient == (EXPECTED[status] in (Throttled, Unavailable))


def test_the_table_has_no_5xx_but_busy():
    """Server errors are Unavailable by rule; only 503 (slow down) is named."""
    assert [s for s in STATUS_ERRORS if s >= 500] == [503]


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az"])
def test_a_timeout_is_timed_out_everywhere(providers, kind):
    exc = {"s3": bx.ReadTimeoutError(endpoint_url=DEAD),
           "minio": ux.ReadTimeoutError(None, DEAD, "Read timed out."),
           "gs": requests.ReadTimeout(),
           "az": aexc.ServiceResponseTimeoutError("Read timed out.")}[kind]
    err = providers[kind].translate(exc, "k")
    assert isinstance(err, TimedOut) and not err.retry_now


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az"])
def test_translating_raises_the_omnifs_error_and_hides_the_sdk_text(providers, kind):
    p = providers[kind]
    exc = sdk_errors(kind, 403)[0]
    with pytest.raises(PermissionDenied) as caught, p.translating("k"):
        raise exc
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.__context__ is exc
    mine = Conflict("already", provider=kind, key="k")
    assert p.translate(mine, "other") is mine
    with pytest.raises(KeyError), p.translating("k"):  # not the SDK's: a bug, as it is
        raise KeyError("k")


def test_a_missing_bucket_is_said_so(providers):
    """A vendor's code says more than its 404."""
    missing = {
        "s3": bx.ClientError({"Error": {"Code": "NoSuchBucket", "Message": ""},
                              "ResponseMetadata": {"HTTPStatusCode": 404}}, "ListObjectsV2"),
        "minio": S3Error(types.SimpleNamespace(status=404, headers={}, data=b""),
                         "NoSuchBucket", "", "/bucket-x", "id", "host"),
        "gs": gexc.NotFound("The specified bucket does not exist."),
        "az": _azure(404),
    }
    missing["az"].error_code = "ContainerNotFound"
    for kind, exc in missing.items():
        err = providers[kind].translate(exc, "k")
        assert isinstance(err, NotFound) and "'bucket-x' does not exist" in str(err), kind


def test_every_error_is_an_omnifs_error():
    assert all(issubclass(c, OmnifsError) for c in STATUS_ERRORS.values())


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("SlowDown", 503, Throttled), ("XMinioServerNotInitialized", 503, Throttled),
    ("NoSuchKey", 404, NotFound), ("NoSuchUpload", 404, NotFound),
    ("AccessDenied", 403, PermissionDenied), ("ExpiredToken", 400, PermissionDenied),
    ("InvalidObjectState", 403, Archived),  # archived: not a matter of credentials
    ("OperationAborted", 409, Conflict), ("KeyTooLongError", 400, InvalidInput),
    ("PreconditionFailed", 412, PreconditionFailed),
    ("InternalError", 500, Unavailable),
])
def test_s3_codes_mean_the_same_through_boto3_and_minio(providers, code, status, expected):
    """boto3 and the minio SDK read one S3 protocol: a code says the same through both."""
    errors = {
        "s3": bx.ClientError({"Error": {"Code": code, "Message": "m"},
                              "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"),
        "minio": S3Error(types.SimpleNamespace(status=status, headers={}, data=b""), code, "m",
                         "/bucket-x/k", "id", "host"),
    }
    for kind, exc in errors.items():
        err = providers[kind].translate(exc, "k")
        assert type(err) is expected, (kind, err)
