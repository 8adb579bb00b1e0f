"""MinIO and other S3-compatible servers, through the ``minio`` SDK.

``import minio`` below is the SDK, not this module: this file is always
imported as ``providers.minio`` and absolute imports never see it as ``minio``.

One ``Minio`` client per provider over our own urllib3 pool, so that
``settings.timeout`` bounds connecting and every wait for bytes and only two
retries are made (the SDK's default is five retries with 5-minute timeouts).
An attempt that timed out is not retried at all (:class:`_Retry`): a store
silent for ``timeout`` seconds is down, and one call fails within ``timeout``.

Caveats:
* Tiers are MinIO's storage classes, ``STANDARD`` and ``REDUCED_REDUNDANCY``
  (set by a copy in place with ``x-amz-storage-class``); MinIO has no GLACIER.
* The listing does not carry user metadata, which the contract wants from
  ``list``: it is fetched with one HEAD per object, 16 at a time.
* A multipart upload whose part fails keeps reading the source until the SDK's
  pool reports the failure, then the upload is aborted (the SDK decides that).
* Requests whose answer waits on the server assembling an object (completing
  a multipart upload, copies) get a read timeout of ``ASSEMBLY_TIMEOUT``
  instead (:class:`_Pool`), as on the S3 provider.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import certifi
import urllib3
import urllib3.exceptions as ux
from minio import Minio
from minio.commonconfig import COPY, REPLACE, CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from .base import Capabilities, MiB, ObjectInfo, Provider, content_type_for
from .errors import InvalidInput, OmnifsError, Unavailable, timed_out, transport_error
from .s3api import (
    ASSEMBLY_TIMEOUT,
    STORAGE_CLASS,
    BucketCheck,
    MetadataFiller,
    answer_info,
    info_from_headers,
    listed_info,
    past_the_end,
    s3_error,
)
from .streams import TranslatingReader

if TYPE_CHECKING:
    from .registry import ProviderSettings

log = logging.getLogger(__name__)

GiB = 1024 * MiB
#: S3's limit for one CopyObject; the SDK switches to part copies above it
COPY_LIMIT = 5 * GiB
#: parts uploaded at once by one ``write`` (the SDK's pool bounds memory to about this)
PARALLEL_PARTS = 4
#: listed objects whose metadata is fetched (by parallel HEADs) before the next are read
LIST_BATCH = 1000


class _Pool(urllib3.PoolManager):
    """The SDK's connection pool, with a long read timeout where the server assembles.

    The SDK makes those requests itself (inside ``put_object`` and
    ``copy_object``) through this one pool, so they are told apart here: a
    POST with ``uploadId`` (CompleteMultipartUpload) and a PUT with a copy
    source (CopyObject, UploadPartCopy). With the usual short read timeout a
    completion that takes longer was retried on an upload the server had
    already finished, and failed.
    """

    def __init__(self, connect_timeout: float, **kw):
        super().__init__(**kw)
        self._assembling = urllib3.Timeout(connect=connect_timeout,
                                           read=max(connect_timeout, ASSEMBLY_TIMEOUT))

    def urlopen(self, method, url, redirect=True, **kw):
        headers = kw.get("headers") or {}
        if ((method == "POST" and "uploadId=" in urlsplit(url).query)
                or (method == "PUT" and any(k.lower() == "x-amz-copy-source" for k in headers))):
            kw["timeout"] = self._assembling
        return super().urlopen(method, url, redirect, **kw)


class _Retry(urllib3.Retry):
    """urllib3's retries (refused connections, dropped ones, 5xx) without retrying a timeout.

    urllib3 counts a read timeout as a read error and retries it, so three
    silent attempts made one call wait three times ``timeout``.
    """

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):
        if timed_out(error):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ux.HTTPError, http.client.HTTPException, ConnectionError, TimeoutError)
#: what the SDK raises (it checks names and arguments with ValueError); anything else
#: (a bug, the caller's stream failing) propagates
_SDK_ERRORS: tuple[type[BaseException], ...] = (MinioException, ValueError) + _TRANSPORT_ERRORS


def _s3_answer(exc: BaseException) -> tuple[str, int | None, str | None] | None:
    """The code, HTTP status and message of an error answer, or None for no answer."""
    if isinstance(exc, S3Error):
        return exc.code or "", getattr(exc.response, "status", None), exc.message
    if isinstance(exc, ServerError):  # an answer without an S3 error body
        return "", exc.status_code, None
    return None


class _Counting:
    """Counts what the SDK reads, so a write of unknown size can report its size."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.count += len(data)
        return data




def _endpoint(settings: ProviderSettings) -> tuple[str, bool]:
    """``host:port`` and whether to use TLS; ``http://`` means plain HTTP."""
    raw = settings.endpoint or os.environ.get("MINIO_ENDPOINT") or ""
    if not raw:
        raise InvalidInput("minio:// needs an endpoint (the `endpoint` setting or MINIO_ENDPOINT)",
                           provider=settings.name)
    if "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"endpoint {raw!r} must look like http(s)://host:port",
                               provider=settings.name)
        return parts.netloc, parts.scheme == "https"
    secure = os.environ.get("MINIO_SECURE", "1").lower() not in ("0", "false", "no", "off")
    return raw.strip("/"), secure


class MinioProvider(Provider):
    schemes = ("minio",)

    capabilities = Capabilities(
        server_side_copy=True,
        tiers=("STANDARD", "REDUCED_REDUNDANCY"),
        native_checksums=("md5",),
        max_key_bytes=1024,
        multipart_threshold=16 * MiB,
        part_size=16 * MiB,
        versioning=False,
        metadata_update=True,
        self_copy_rewrites=True,
    )
    sdk_errors = _SDK_ERRORS

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.bucket = self.location.bucket
        self._buckets = BucketCheck(self.name, self.bucket,
                                    lambda: self.client.bucket_exists(self.bucket), _SDK_ERRORS)
        self._heads = MetadataFiller("minio")
        host, secure = _endpoint(settings)
        extra = settings.extra or {}
        cert_check = str(extra.get("cert_check", "true")).lower() not in ("0", "false", "no")
        access = settings.access_key or os.environ.get("MINIO_ACCESS_KEY") \
            or os.environ.get("MINIO_ROOT_USER")
        secret = settings.secret_key or os.environ.get("MINIO_SECRET_KEY") \
            or os.environ.get("MINIO_ROOT_PASSWORD")
        self._http = _Pool(
            settings.timeout,
            timeout=urllib3.Timeout(connect=settings.timeout, read=settings.timeout),
            maxsize=32,
            cert_reqs="CERT_REQUIRED" if cert_check else "CERT_NONE",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            # final 5xx answers reach the SDK, which turns them into S3Error/ServerError
            retries=_Retry(total=2, backoff_factor=0.2, raise_on_status=False,
                           status_forcelist=[500, 502, 503, 504]),
        )
        try:
            self.client = Minio(host, access_key=access or None, secret_key=secret or None,
                                secure=secure, region=settings.region or os.environ.get(
                                    "MINIO_REGION") or None,
                                http_client=self._http, cert_check=cert_check)
        except ValueError as e:
            raise InvalidInput(f"cannot configure the MinIO client: {e}",
                               provider=self.name) from e

    # -- helpers ---------------------------------------------------------
    def _translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        """A minio/urllib3 error as an omnifs error."""
        where: dict[str, Any] = {"provider": self.name, "key": key}
        answer = _s3_answer(exc)
        if answer is not None:
            return s3_error(*answer, bucket=self.bucket, **where)
        if isinstance(exc, InvalidResponseError):
            return Unavailable("the endpoint's answer is not S3 (wrong endpoint?)", **where)
        if isinstance(exc, ValueError):
            return InvalidInput(str(exc), **where)
        if isinstance(exc, ux.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        return transport_error(exc, self.settings.timeout,
                               detail=" ".join(str(exc).split())[:200], **where)

    # -- primitives ------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        name = self.object_name(key)
        try:
            o = self.client.stat_object(self.bucket, name)
        except _SDK_ERRORS as e:
            raise self._buckets.explain(self.translate(e, key), key) from None
        return info_from_headers(key, o.metadata or {})

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        full = self.object_name(prefix)
        batch: list[ObjectInfo] = []
        with self.translating(prefix or None):
            for o in self.client.list_objects(self.bucket, prefix=full, recursive=recursive):
                key = self.key_of(o.object_name or "")
                if o.is_dir:
                    yield ObjectInfo(key=key, is_prefix=True)
                    continue
                if not key:  # the root's own "directory marker"
                    continue
                batch.append(listed_info(key, o.size, o.last_modified, o.etag,
                                         o.storage_class))
                if len(batch) >= LIST_BATCH:
                    yield from self._heads.fill(batch, self.head) if metadata else batch
                    batch = []
            yield from self._heads.fill(batch, self.head) if metadata else batch

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        name = self.object_name(key)
        start = max(0, start)
        if end is not None and end <= start:
            empty = io.BytesIO(b"")
            empty.info = self.head(key)  # type: ignore[attr-defined]  # still NotFound if missing
            return empty
        length = 0 if end is None else end - start
        try:
            r = self.client.get_object(self.bucket, name, offset=start, length=length)
        except _SDK_ERRORS as e:
            answer = _s3_answer(e)
            if answer is not None and past_the_end(*answer[:2]):
                return io.BytesIO(b"")  # start at or past the end: nothing to read
            raise self.translate(e, key) from None
        return TranslatingReader(r, _TRANSPORT_ERRORS, lambda e: self.translate(e, key),  # type: ignore[return-value]
                                 on_close=r.release_conn, info=info_from_headers(key, r.headers))

    def write(self, key: str, stream: BinaryIO, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None) -> ObjectInfo:
        name = self.object_name(key)
        if size is not None and size < 0:
            raise InvalidInput(f"negative size {size}", provider=self.name, key=key)
        counting = _Counting(stream)
        meta = dict(metadata or {})
        content_type = content_type_for(key, content_type)
        try:
            with self.translating(key):
                r = self.client.put_object(
                    self.bucket, name, counting, -1 if size is None else size,  # type: ignore[arg-type]
                    content_type=content_type, metadata=dict(meta), part_size=self.capabilities.part_size,
                    num_parallel_uploads=PARALLEL_PARTS)
        except OSError as e:  # the SDK's "stream having not enough data"
            if isinstance(e, _SDK_ERRORS) or "not enough data" not in str(e):
                raise
            raise InvalidInput(f"the data ended before the {size} bytes announced",
                               provider=self.name, key=key) from e
        return answer_info(key, counting.count if size is None else size, r.etag, r.version_id,
                           meta, content_type)

    def copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._copy(src_key, dst_key, metadata, None)

    def _copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None,
              tier: str | None) -> ObjectInfo:
        src = self.object_name(src_key)
        dst = self.object_name(dst_key)
        info = self.head(src_key)
        old_tier = info.tier or "STANDARD"
        new_tier = tier or old_tier
        if src == dst and metadata is None and new_tier == old_tier:
            return info  # nothing would change; S3 refuses such a copy
        meta = dict(info.metadata) if metadata is None else dict(metadata)
        headers: dict[str, str] = {}
        if new_tier != "STANDARD" or tier is not None:
            headers[STORAGE_CLASS] = new_tier
        # COPY keeps everything but needs a distinct target and a single-request copy;
        # otherwise REPLACE with what the source had (or the new metadata).
        if metadata is None and src != dst and info.size <= COPY_LIMIT:
            directive = COPY
        else:
            directive = REPLACE
            headers.update(meta)
            if info.content_type:
                headers["Content-Type"] = info.content_type
        with self.translating(dst_key):
            r = self.client.copy_object(self.bucket, dst, CopySource(self.bucket, src),
                                        metadata=headers or None, metadata_directive=directive)
        return answer_info(dst_key, info.size, r.etag, r.version_id, meta, info.content_type,
                           new_tier, getattr(r, "last_modified", None))

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        with self.translating(key):
            self.client.remove_object(self.bucket, name)

    def _set_tier(self, key: str, tier: str) -> None:
        self._copy(key, key, None, tier)

    def close(self) -> None:
        self._heads.close()
        self._http.clear()
