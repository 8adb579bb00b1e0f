"""What every S3-API store shares (s3:// over boto3, minio:// over the minio SDK)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

from .base import ObjectInfo
from .streams import whole_size

#: read timeout (s) for requests whose answer waits on the store assembling an object
#: (completing a multipart upload, server-side copies): seconds to minutes for big ones
ASSEMBLY_TIMEOUT = 600.0

_MD5_RE = re.compile(r"^[0-9a-f]{32}$")

#: HEADs in flight while filling in a listing's metadata
LIST_HEADS = 16


def clean_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def version_of(v: str | None) -> str | None:
    """An unversioned bucket answers VersionId "null", which is no version at all."""
    return None if not v or v == "null" else v


def md5_checksums(etag: str | None) -> dict[str, str]:
    """An etag is the MD5 only for single-part, non-KMS uploads (32 hex digits, no "-N")."""
    return {"md5": etag} if etag and _MD5_RE.match(etag) else {}


_META_PREFIX = "x-amz-meta-"


def info_from_headers(key: str, headers: Mapping[str, str]) -> ObjectInfo:
    """An object's info from the raw headers of a GET or HEAD response (whole size,
    user metadata, content type): what a read learns about the object for free."""
    h = {k.lower(): v for k, v in headers.items()}
    etag = clean_etag(h.get("etag"))
    lm = None
    if h.get("last-modified"):
        try:
            lm = parsedate_to_datetime(h["last-modified"]).timestamp()
        except (TypeError, ValueError):
            lm = None
    return ObjectInfo(
        key=key, size=whole_size(h.get("content-range"), h.get("content-length")) or 0,
        last_modified=lm, etag=etag, version=version_of(h.get("x-amz-version-id")),
        checksums=md5_checksums(etag),
        metadata={k[len(_META_PREFIX):]: v for k, v in h.items() if k.startswith(_META_PREFIX)},
        tier=h.get("x-amz-storage-class") or "STANDARD", content_type=h.get("content-type"))


class MetadataFiller:
    """Fills in user metadata, which S3 listings lack, with parallel HEADs.

    The contract promises metadata from ``list``. ``fetch(info)`` returns the
    completed info, or None for an object deleted since the listing (it is
    skipped, as if listed a moment later).
    """

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def fill(self, found: list[ObjectInfo],
             fetch: Callable[[ObjectInfo], ObjectInfo | None]) -> Iterator[ObjectInfo]:
        if not found:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(LIST_HEADS, thread_name_prefix=f"{self._name}-head")
            pool = self._pool
        for info in pool.map(fetch, found):
            if info is not None:
                yield info

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
