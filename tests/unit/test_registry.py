"""URI parsing and the lazy scheme -> class registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnifs.providers import InvalidInput, Location, ProviderSettings, open_provider, parse_uri
from omnifs.providers.base import Provider
from omnifs.providers.registry import SCHEMES, provider_class

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket", Location("s3", "bucket", "")),
        ("s3://bucket/", Location("s3", "bucket", "")),
        ("s3://my-bucket/data/sub/", Location("s3", "my-bucket", "data/sub")),
        ("S3://bucket/x", Location("s3", "bucket", "x")),
        ("gs://bkt/a/b", Location("gs", "bkt", "a/b")),
        ("az://container/pre fix", Location("az", "container", "pre fix")),
        ("minio://bucket/p", Location("minio", "bucket", "p")),
        # '#', '?' and '%' are legal in object keys: kept literally, never decoded
        ("s3://bucket/a#b", Location("s3", "bucket", "a#b")),
        ("s3://bucket/a?b=c", Location("s3", "bucket", "a?b=c")),
        ("s3://bucket/a%20b", Location("s3", "bucket", "a%20b")),
        ("file:///srv/data", Location("file", "", "/srv/data")),
        ("file://localhost/srv/data", Location("file", "", "/srv/data")),
        ("file:///srv/with%20space", Location("file", "", "/srv/with space")),
        ("file:///", Location("file", "", "/")),
    ],
)
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("ftp://host/x", "unknown URI scheme 'ftp'"),
        ("nfs://server/export", "unknown URI scheme"),
        ("/just/a/path", "is not a URI"),
        ("bucket/prefix", "is not a URI"),
        ("", "is not a URI"),
        ("s3://ab/x", "at least 3 characters"),
        ("gs://a", "at least 3 characters"),
        ("az:///x", "at least 3 characters"),
        ("file://host/path", "file:///absolute/path"),
    ],
)
def test_parse_uri_errors_are_one_clear_line(uri, needle):
    with pytest.raises(InvalidInput) as err:
        parse_uri(uri)
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(InvalidInput) as err:
        parse_uri("ftp://host/x")
    for scheme in SCHEMES:
        assert f"{scheme}://" in str(err.value)


def test_provider_class_for_file():
    from omnifs.providers.local import LocalProvider

    cls = provider_class("file")
    assert cls is LocalProvider
    assert issubclass(cls, Provider)
    assert "file" in cls.schemes


def test_provider_class_unknown():
    with pytest.raises(InvalidInput, match="unknown URI scheme 'nope'"):
        provider_class("nope")


def test_every_scheme_is_registered():
    assert set(SCHEMES) == {"s3", "gs", "az", "minio", "file"}


def test_provider_class_is_lazy():
    """Importing the registry, or opening a file:// store, must not import a cloud SDK."""
    code = (
        "import sys\n"
        "import providers\n"
        "from providers import ProviderSettings, open_provider\n"
        "import tempfile\n"
        "p = open_provider(ProviderSettings(name='x', uri='file://' + tempfile.mkdtemp()))\n"
        "p.write_bytes('k', b'v')\n"
        "heavy = [m for m in ('boto3', 'botocore', 'google.cloud.storage', 'azure.storage.blob',"
        " 'minio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_open_provider_builds_from_settings(tmp_path):
    p = open_provider(ProviderSettings(name="disk", uri=f"file://{tmp_path}"))
    assert p.name == "disk"
    assert p.location == Location("file", "", str(tmp_path))


def test_settings_repr_hides_secrets():
    s = ProviderSettings(name="n", uri="s3://bucket", access_key="AKIA-SECRET-ID",
                         secret_key="very-secret", connection_string="AccountKey=abc")
    text = repr(s)
    assert "very-secret" not in text and "AKIA-SECRET-ID" not in text and "abc" not in text
