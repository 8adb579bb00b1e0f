"""Everything that talks to a store, behind one small interface (see base.py).

Imports nothing else of omnifs. The modules:

* ``base``: the interface (primitives, ``Capabilities``, ``ObjectInfo``) and the
  one translation shape: ``translate(exc, key)`` returns the omnifs error for an
  SDK's, raised ``from None`` or through ``translating(key)``;
* ``errors``: the error vocabulary, and ``transport_error`` for calls the store
  never answered; ``http_status``: the one table of what an HTTP status means;
* ``registry``: URI scheme -> provider class, the settings they are built from;
* the stores: ``s3`` (boto3), ``minio`` (the minio SDK), both over ``s3api`` (the
  S3 protocol: error codes, headers, bucket checks, copies) and ``s3`` with
  ``s3wire`` (its GET/PUT fast path); ``gcs``; ``azure`` over ``azapi`` (Azure
  Blob's protocol: metadata encoding, records, error codes) and ``azwire`` (its
  fast path); ``local`` (``file://``) with ``sparse`` and ``diskspace``;
* ``capabilities``: the compatibility model (features x cells, quirks of emulators),
  ``compat_cells``: each store's declared cells (data), ``probe``: small
  self-cleaning probes of a live store (``omnifs compat --probe``);
* ``retention``: store-side retention locks (S3 Object Lock) and the stores'
  governance settings read back, and why a store has none; ``encryption``: a
  store's server-side encryption setting (its ``encryption`` key), parsed;
* ``streams``: full reads and SDK bodies as plain files; ``faulty``: a wrapper
  that makes any store slow, flaky or down on cue; ``metered``: the wrapper
  ``open_provider`` puts around every store, measuring each request
  (Prometheus series and ``tally()``), with ``metered_streams`` (its counted
  read stream, upload source and listing).
"""

from . import metered
from .base import (
    META_MTIME,
    META_SHA256,
    RESERVED_PREFIX,
    Capabilities,
    ObjectInfo,
    Provider,
    ReadStream,
    WriteSource,
)
from .errors import (
    Archived,
    Conflict,
    IntegrityError,
    InvalidInput,
    NoSpace,
    NotFound,
    OmnifsError,
    PermissionDenied,
    PreconditionFailed,
    RootMissing,
    Throttled,
    TimedOut,
    Unavailable,
)
from .registry import SCHEMES, Location, ProviderSettings, open_provider, parse_uri

__all__ = [
    "META_MTIME", "META_SHA256", "RESERVED_PREFIX", "SCHEMES", "Archived", "Capabilities",
    "Conflict", "IntegrityError", "InvalidInput", "Location", "NoSpace", "NotFound", "ObjectInfo",
    "OmnifsError", "PermissionDenied", "PreconditionFailed", "Provider", "ProviderSettings",
    "ReadStream", "RootMissing", "Throttled",
    "TimedOut", "Unavailable", "WriteSource",
    "metered", "open_provider", "parse_uri",
]
