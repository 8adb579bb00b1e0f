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

import dataclasses
import http.client
import io
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import certifi
import urllib3
import urllib3.exceptions as ux
from minio import Minio
from minio.commonconfig import COPY, REPLACE, CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.sse import Sse

from . import compat_cells, encryption, s3api
from .base import MiB, ObjectInfo, ReadStream, WriteSource, content_type_for
from .errors import InvalidInput, OmnifsError, Unavailable, timed_out, transport_error
from .metered import note_retry
from .streams import TranslatingReader, read_full

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
                                           read=max(connect_timeout, s3api.ASSEMBLY_TIMEOUT))

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
        again = super().increment(method, url, response, error, _pool, _stacktrace)
        note_retry()  # urllib3 raised MaxRetryError above when no retry is left
        return again


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


class _Prepend:
    """Bytes already read, then the rest of the stream."""

    def __init__(self, head: bytes, stream: WriteSource):
        self._head, self._stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(n)
        if n < 0:
            out, self._head = self._head + self._stream.read(), b""
            return out
        out, self._head = self._head[:n], self._head[n:]
        return out


class _Counting:
    """Counts what the SDK reads, so a write of unknown size can report its size."""

    def __init__(self, stream: WriteSource):
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


class _Encryption(Sse):
    """The store's ``encryption`` setting as the SDK's ``sse`` argument. Its headers are those
    of SSE-S3 / SSE-KMS; TLS is the endpoint's business (the SDK would refuse KMS over http)."""

    def __init__(self, setting: encryption.Encryption):
        self._headers = setting.s3_headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def tls_required(self) -> bool:
        return False


class MinioProvider(s3api.S3ApiProvider):
    schemes = ("minio",)

    capabilities = dataclasses.replace(s3api.S3_CAPABILITIES,
                                       tiers=("STANDARD", "REDUCED_REDUNDANCY"), object_lock=True)
    sdk_errors = _SDK_ERRORS
    compat = compat_cells.MINIO

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
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
        setting = encryption.of("minio", extra)
        #: the store's server-side encryption (providers/encryption.py), sent on every write
        self.sse: _Encryption | None = _Encryption(setting) if setting else None
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
            return s3api.s3_error(*answer, bucket=self.bucket, **where)
        if isinstance(exc, InvalidResponseError):
            return Unavailable("the endpoint's answer is not S3 (wrong endpoint?)", **where)
        if isinstance(exc, ux.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        return transport_error(exc, self.settings.timeout,
                               detail=" ".join(str(exc).split())[:200], **where)

    # -- primitives ------------------------------------------------------
    def _stat(self, name: str, key: str) -> ObjectInfo:
        return s3api.info_from_headers(key, self.client.stat_object(self.bucket, name).metadata
                                       or {})

    def _bucket_exists(self) -> bool:
        return self.client.bucket_exists(self.bucket)

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
                batch.append(s3api.listed_info(key, o.size, o.last_modified, o.etag,
                                               o.storage_class))
                if len(batch) >= LIST_BATCH:
                    yield from self._with_metadata(batch, metadata)
                    batch = []
            yield from self._with_metadata(batch, metadata)

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        name = self.object_name(key)
        start = max(0, start)
        if end is not None and end <= start:
            return self._empty_read(key)
        length = 0 if end is None else end - start
        try:
            r = self.client.get_object(self.bucket, name, offset=start, length=length)
        except _SDK_ERRORS as e:
            answer = _s3_answer(e)
            if answer is not None and s3api.past_the_end(*answer[:2]):
                return io.BytesIO(b"")  # start at or past the end: nothing to read
            raise self.translate(e, key) from None
        reader = TranslatingReader(r, _TRANSPORT_ERRORS, lambda e: self.translate(e, key),
                                   on_close=r.release_conn,
                                   info=s3api.info_from_headers(key, r.headers))
        return reader

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        name = self.object_name(key)
        if size is not None and size < 0:
            raise InvalidInput(f"negative size {size}", provider=self.name, key=key)
        meta = dict(metadata or {})
        content_type = content_type_for(key, content_type)
        with self.preconditioned(key, if_absent, if_match):
            if not if_absent and if_match is None:
                return self._put(key, name, stream, size, meta, content_type)
            head = read_full(stream, self.capabilities.part_size)
            if len(head) < self.capabilities.part_size:
                # one PUT: the condition goes on it (the SDK's public call sends no such header)
                headers: dict[str, str | list[str] | tuple[str]] = {
                    **{f"x-amz-meta-{k}": v for k, v in meta.items()},
                    "Content-Type": content_type,
                    **s3api.condition_headers(s3api.conditions(if_absent, if_match)),
                    **(self.sse.headers() if self.sse else {})}
                with self.translating(key):
                    r = self.client._put_object(self.bucket, name, head, headers)
                return s3api.answer_info(key, len(head), r.etag, r.version_id, meta,
                                         content_type)
            # the SDK completes multipart uploads without headers: compared first, by a HEAD
            self.check_unchanged(key, if_absent, if_match)
            return self._put(key, name, _Prepend(head, stream), size, meta, content_type)

    def _put(self, key: str, name: str, stream: WriteSource, size: int | None,
             meta: dict[str, str], content_type: str) -> ObjectInfo:
        counting = _Counting(stream)
        try:
            with self.translating(key):
                r = self.client.put_object(
                    # put_object's data is annotated BinaryIO; it only calls read()
                    self.bucket, name, counting,  # type: ignore[arg-type]
                    -1 if size is None else size,
                    content_type=content_type, metadata=dict(meta),
                    part_size=self.capabilities.part_size, sse=self.sse,
                    num_parallel_uploads=PARALLEL_PARTS)
        except OSError as e:  # the SDK's "stream having not enough data"
            if isinstance(e, _SDK_ERRORS) or "not enough data" not in str(e):
                raise
            raise InvalidInput(f"the data ended before the {size} bytes announced",
                               provider=self.name, key=key) from e
        return s3api.answer_info(key, counting.count if size is None else size, r.etag,
                                 r.version_id, meta, content_type)

    def _copy_object(self, plan: s3api.CopyPlan) -> ObjectInfo:
        info = plan.info
        # the SDK's type for headers: a value may be a list of values
        headers: dict[str, str | list[str] | tuple[str]] = {}
        if plan.send_tier:
            headers[s3api.STORAGE_CLASS] = plan.tier
        # COPY keeps everything but needs a distinct target and a single-request copy;
        # otherwise REPLACE with what the source had (or the new metadata).
        if plan.keep_metadata and info.size <= COPY_LIMIT:
            directive = COPY
        else:
            directive = REPLACE
            headers.update(plan.metadata)
            if info.content_type:
                headers["Content-Type"] = info.content_type
        with self.translating(plan.dst_key):
            r = self.client.copy_object(self.bucket, plan.dst,
                                        CopySource(self.bucket, plan.src),
                                        metadata=headers or None, metadata_directive=directive,
                                        sse=self.sse)
        return s3api.answer_info(plan.dst_key, info.size, r.etag, r.version_id, plan.metadata,
                                 info.content_type, plan.tier, getattr(r, "last_modified", None))

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        with self.translating(key):
            self.client.remove_object(self.bucket, name)

    def close(self) -> None:
        super().close()
        self._http.clear()
