"""URI scheme -> provider class, and the settings every provider is built from.

Classes are imported lazily so that ``omnifs ls file:///x`` does not pay for
importing four cloud SDKs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .base import Provider
from .errors import InvalidInput

#: scheme -> (class, the config keys it understands beyond the common ones).
#: Kept as data here so that validating a config imports no SDK.
_REGISTRY: dict[str, tuple[str, tuple[str, ...]]] = {
    "s3": ("omnifs.providers.s3:S3Provider",
           ("endpoint", "access_key", "secret_key", "profile", "addressing_style",
            "max_attempts", "checksums")),
    "gs": ("omnifs.providers.gcs:GCSProvider",
           ("endpoint", "credentials_file", "project", "part_size")),
    "az": ("omnifs.providers.azure:AzureProvider",
           ("connection_string", "account_url", "account_key", "sas_token", "part_size",
            "max_concurrency", "multipart_threshold", "content_md5")),
    "minio": ("omnifs.providers.minio:MinioProvider",
              ("endpoint", "access_key", "secret_key", "cert_check")),
    "file": ("omnifs.providers.local:LocalProvider", ("fsync", "free_space_ratio")),
}

SCHEMES = tuple(_REGISTRY)

#: keys every provider table may hold
COMMON_OPTIONS = ("uri", "timeout", "region")


@dataclass
class ProviderSettings:
    """One ``[providers.NAME]`` table, or what a bare URI implies.

    Absent values fall back to each SDK's own environment conventions inside
    the provider, so a cloud's users need nothing new.
    """

    name: str
    uri: str
    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    connection_string: str | None = None
    account_url: str | None = None
    credentials_file: str | None = None
    #: seconds to wait to connect and between bytes before a store counts as unreachable
    timeout: float = 10.0
    #: anything else from the table that the scheme's provider understands (registry)
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # never print secrets
        return f"ProviderSettings(name={self.name!r}, uri={self.uri!r}, endpoint={self.endpoint!r})"


@dataclass(frozen=True)
class Location:
    scheme: str
    #: bucket or container; empty for file://
    bucket: str
    #: prefix inside the bucket (no leading or trailing "/"), or the directory for file://
    path: str


def parse_uri(uri: str) -> Location:
    """Split ``scheme://bucket/prefix``; raise InvalidInput with a fix-it hint."""
    if "://" not in uri:
        raise InvalidInput(
            f"{uri!r} is not a URI: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
            + " or a configured provider name as NAME:/path"
        )
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _REGISTRY:
        raise InvalidInput(
            f"unknown URI scheme {scheme!r} in {uri!r}: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"{uri!r}: write local paths as file:///absolute/path")
        path = unquote(parts.path) or "/"
        return Location(scheme, "", path)
    bucket = parts.netloc
    if len(bucket) < 3:
        raise InvalidInput(
            f"{uri!r}: bucket/container name {bucket!r} must have at least 3 characters")
    # keep '#', '?' and '%' literal: object keys may contain them
    rest = uri.split("://", 1)[1][len(bucket):]
    return Location(scheme, bucket, rest.strip("/"))


def provider_options(scheme: str) -> tuple[str, ...]:
    """The config keys a scheme's provider understands beyond the common ones."""
    if scheme not in _REGISTRY:
        raise InvalidInput(f"unknown URI scheme {scheme!r}: use one of " + ", ".join(SCHEMES))
    return _REGISTRY[scheme][1]


def provider_class(scheme: str) -> type[Provider]:
    if scheme not in _REGISTRY:
        raise InvalidInput(f"unknown URI scheme {scheme!r}: use one of " + ", ".join(SCHEMES))
    module, _, cls = _REGISTRY[scheme][0].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:  # a missing SDK: say which package to install
        raise InvalidInput(f"the {scheme}:// provider cannot be loaded ({e}); "
                           "reinstall omnifs with its dependencies: pip install omnifs") from e


def open_provider(settings: ProviderSettings) -> Provider:
    """The store ``settings`` name, measured (providers/metered.py) unless metrics are off,
    without the abilities its ``disable`` key turns off (capabilities.DISABLE)."""
    from .capabilities import forced_off
    from .metered import metered

    loc = parse_uri(settings.uri)
    provider = provider_class(loc.scheme)(settings)
    disabled = settings.extra.get("disable") or ()
    return metered(forced_off(provider, *disabled) if disabled else provider)
