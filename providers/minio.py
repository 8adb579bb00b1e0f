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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import certifi
import urllib3
import urllib3.exceptions as ux
from minio import Minio
from minio.commonconfig import COPY, REPLACE, CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from .base import Capabilities, MiB, ObjectInfo, Provider, content_type_for
from .errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OmnifsError,
    PermissionDenied,
    Throttled,
    TimedOut,
    Unavailable,
    timed_out,
)
from .s3api import (
    ASSEMBLY_TIMEOUT,
    MetadataFiller,
    info_from_headers,
    md5_checksums,
    version_of,
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
#: HEADs in flight while ``list`` gathers user metadata, and keys per batch
LIST_BATCH = 1000
_STORAGE_CLASS = "x-amz-storage-class"
_META_PREFIX = "x-amz-meta-"

_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchUpload", "ResourceNotFound"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "InvalidToken", "ExpiredToken", "AccountProblem"}
_THROTTLED = {"SlowDown", "SlowDownRead", "SlowDownWrite", "Throttling", "TooManyRequests",
              "RequestLimitExceeded", "ServiceUnavailable", "XMinioServerNotInitialized"}
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "OperationAborted",
             "ResourceConflict", "InvalidObjectState"}
_INVALID = {"InvalidArgument", "KeyTooLong", "KeyTooLongError", "InvalidStorageClass",
            "EntityTooLarge", "EntityTooSmall", "InvalidRequest", "InvalidBucketName",
            "MetadataTooLarge", "InvalidPart", "InvalidPartOrder", "XMinioInvalidObjectName",
            "InvalidObjectName"}


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
#: what ``_errors`` catches; anything else (a bug, the caller's stream failing) propagates
_SDK_ERRORS: tuple[type[BaseException], ...] = (MinioException,) + _TRANSPORT_ERRORS


def translate_error(exc: BaseException, provider: str, key: str | None,
                    bucket: str) -> OmnifsError:
    """The one place where a minio/urllib3 error becomes an omnifs error."""
    if isinstance(exc, OmnifsError):
        return exc
    if isinstance(exc, S3Error):
        code = exc.code or ""
        status = getattr(exc.response, "status", None)
        msg = exc.message or code or f"HTTP {status}"
        if code == "NoSuchBucket":
            return NotFound(f"bucket {bucket!r} does not exist", provider=provider, key=key)
        if code in _NOT_FOUND or status == 404:
            return NotFound("no such object", provider=provider, key=key)
        if code == "InvalidObjectState":  # answered with 403: check before "denied"
            return Conflict("the object is archived: restore it first", provider=provider, key=key)
        if code in _DENIED or status == 403:
            return PermissionDenied(f"access denied ({code or status}; wrong credentials?)",
                                    provider=provider, key=key)
        if code in _THROTTLED or status in (429, 503):
            return Throttled(f"the store asks to slow down ({code or status})",
                             provider=provider, key=key)
        if code in _CONFLICT or status in (409, 412):
            return Conflict(f"{code}: {msg}", provider=provider, key=key)
        if code in _INVALID or status == 400:
            return InvalidInput(f"{code}: {msg}", provider=provider, key=key)
        return Unavailable(f"{code or status}: {msg}", provider=provider, key=key)
    if isinstance(exc, ServerError):
        status = exc.status_code
        if status in (429, 503):
            return Throttled(f"the store asks to slow down (HTTP {status})",
                             provider=provider, key=key)
        if status == 403:
            return PermissionDenied("access denied (wrong credentials?)", provider=provider, key=key)
        return Unavailable(f"server error (HTTP {status})", provider=provider, key=key)
    if isinstance(exc, InvalidResponseError):
        return Unavailable("the endpoint's answer is not S3 (wrong endpoint?)",
                           provider=provider, key=key)
    if isinstance(exc, ux.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if timed_out(exc):
        return TimedOut("timed out waiting for the store", provider=provider, key=key)
    if isinstance(exc, (ux.NewConnectionError, ConnectionRefusedError)):
        return Unavailable("cannot reach the endpoint", provider=provider, key=key)
    text = " ".join(str(exc).split())[:200]
    return Unavailable(f"connection problem: {type(exc).__name__}: {text}",
                       provider=provider, key=key)


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

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.bucket = self.location.bucket
        self._bucket_seen = False
        self._lock = threading.Lock()
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
    def _err(self, exc: BaseException, key: str | None) -> OmnifsError:
        return translate_error(exc, self.name, key, self.bucket)

    @contextmanager
    def _errors(self, key: str | None):
        try:
            yield
        except _SDK_ERRORS as e:
            raise self._err(e, key) from e
        except ValueError as e:  # the SDK validates names and arguments with ValueError
            raise InvalidInput(str(e), provider=self.name, key=key) from e

    def _info_from_stat(self, key: str, o: Any) -> ObjectInfo:
        headers = o.metadata or {}
        meta = {k.lower()[len(_META_PREFIX):]: v for k, v in headers.items()
                if k.lower().startswith(_META_PREFIX)}
        etag = (o.etag or "").strip('"') or None
        return ObjectInfo(
            key=key, size=int(o.size or 0),
            last_modified=o.last_modified.timestamp() if o.last_modified else None,
            etag=etag, version=version_of(o.version_id), checksums=md5_checksums(etag),
            metadata=meta, tier=headers.get(_STORAGE_CLASS) or "STANDARD",
            content_type=o.content_type,
        )

    def _check_bucket(self, key: str) -> OmnifsError | None:
        """A HEAD's 404 has no body: tell a missing bucket apart once, then trust it."""
        try:
            exists = self.client.bucket_exists(self.bucket)
        except Exception:  # noqa: BLE001 - only a better message is at stake
            return None
        if not exists:
            return NotFound(f"bucket {self.bucket!r} does not exist", provider=self.name, key=key)
        self._bucket_seen = True
        return None

    # -- primitives ------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        name = self.object_name(key)
        try:
            o = self.client.stat_object(self.bucket, name)
        except _SDK_ERRORS as e:
            err = self._err(e, key)
            if isinstance(err, NotFound) and not self._bucket_seen:
                err = self._check_bucket(key) or err
            raise err from e
        return self._info_from_stat(key, o)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        full = self.object_name(prefix)
        batch: list[ObjectInfo] = []
        with self._errors(prefix or None):
            for o in self.client.list_objects(self.bucket, prefix=full, recursive=recursive):
                key = self.key_of(o.object_name or "")
                if o.is_dir:
                    yield ObjectInfo(key=key, is_prefix=True)
                    continue
                if not key:  # the root's own "directory marker"
                    continue
                etag = (o.etag or "").strip('"') or None
                batch.append(ObjectInfo(key=key, size=int(o.size or 0),
                                        last_modified=o.last_modified.timestamp()
                                        if o.last_modified else None,
                                        etag=etag, checksums=md5_checksums(etag),
                                        tier=o.storage_class or "STANDARD",
                                        metadata_known=False))
                if len(batch) >= LIST_BATCH:
                    yield from self._with_metadata(batch) if metadata else batch
                    batch = []
            yield from self._with_metadata(batch) if metadata else batch

    def _with_metadata(self, found: list[ObjectInfo]) -> Iterator[ObjectInfo]:
        """Fill in user metadata, which the listing lacks, with parallel HEADs.

        (MinIO's ``metadata=true`` listing extension is not used: other
        S3-compatible servers ignore it silently.) An object deleted since the
        listing is skipped, as if listed a moment later.
        """
        if not found:
            return

        def fill(info: ObjectInfo) -> ObjectInfo | None:
            try:
                o = self.client.stat_object(self.bucket, self.object_name(info.key))
            except S3Error as e:
                if e.code in _NOT_FOUND:
                    return None
                raise
            full = self._info_from_stat(info.key, o)
            info.metadata, info.content_type = full.metadata, full.content_type
            info.version = full.version
            info.metadata_known = True
            return info

        for info in self._heads.fill(found, fill):
            if info is not None:
                yield info

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
        except S3Error as e:
            if e.code == "InvalidRange" or getattr(e.response, "status", None) == 416:
                return io.BytesIO(b"")  # start at or past the end: nothing to read
            raise self._err(e, key) from e
        except _SDK_ERRORS as e:
            raise self._err(e, key) from e
        return TranslatingReader(r, _TRANSPORT_ERRORS, lambda e: self._err(e, key),  # type: ignore[return-value]
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
            with self._errors(key):
                r = self.client.put_object(
                    self.bucket, name, counting, -1 if size is None else size,  # type: ignore[arg-type]
                    content_type=content_type, metadata=dict(meta), part_size=self.capabilities.part_size,
                    num_parallel_uploads=PARALLEL_PARTS)
        except OSError as e:  # the SDK's "stream having not enough data"
            if isinstance(e, _SDK_ERRORS) or "not enough data" not in str(e):
                raise
            raise InvalidInput(f"the data ended before the {size} bytes announced",
                               provider=self.name, key=key) from e
        etag = (r.etag or "").strip('"') or None
        return ObjectInfo(key=key, size=counting.count if size is None else size, etag=etag,
                          version=version_of(r.version_id), checksums=md5_checksums(etag),
                          metadata=meta, tier="STANDARD", content_type=content_type)

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
            headers[_STORAGE_CLASS] = new_tier
        # COPY keeps everything but needs a distinct target and a single-request copy;
        # otherwise REPLACE with what the source had (or the new metadata).
        if metadata is None and src != dst and info.size <= COPY_LIMIT:
            directive = COPY
        else:
            directive = REPLACE
            headers.update(meta)
            if info.content_type:
                headers["Content-Type"] = info.content_type
        with self._errors(dst_key):
            r = self.client.copy_object(self.bucket, dst, CopySource(self.bucket, src),
                                        metadata=headers or None, metadata_directive=directive)
        etag = (r.etag or "").strip('"') or None
        lm = getattr(r, "last_modified", None)
        return ObjectInfo(key=dst_key, size=info.size,
                          last_modified=lm.timestamp() if lm else None, etag=etag,
                          version=version_of(r.version_id), checksums=md5_checksums(etag),
                          metadata=meta, tier=new_tier, content_type=info.content_type)

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        with self._errors(key):
            self.client.remove_object(self.bucket, name)

    def _set_tier(self, key: str, tier: str) -> None:
        self._copy(key, key, None, tier)

    def close(self) -> None:
        self._heads.close()
        self._http.clear()
