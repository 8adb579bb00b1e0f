"""Amazon S3 (and S3-compatible stores reached through boto3).

One boto3 client per provider, shared by every thread (boto3 clients are
thread-safe); its connection pool is sized for the mount's worker threads.
``settings.timeout`` is how long the store may stay silent (connecting, or no
byte for that long); an attempt that timed out is not repeated (the store is
treated as down, see :func:`_no_retry_after_timeout`), so a store that does
not answer fails an operation within ``timeout``. Quick failures (refused
connections, throttling, 5xx) are still retried: ``max_attempts`` in all
(default 3), with botocore's short backoff.

Caveats:
* S3's listing does not carry user metadata, which the contract wants from
  ``list``: it is fetched with one HEAD per object, 16 at a time. That makes
  listing cost ~N requests; ``list(metadata=False)`` skips it (a copy takes
  the metadata from its GET's response headers instead, see ``open_read``).
* ``write`` returns the etag/version S3 answered with; ``last_modified`` is
  left None there rather than guessed (``head`` has the store's value).
* moto answers ``VersionId: "null"`` on unversioned buckets; it is treated as
  no version at all, since passing it back fails.
* GET Object and a single PUT Object take a fast path (providers/s3wire.py):
  signed by botocore's signer, sent through the client's pool, ~0.7 ms less
  CPU each; anything but success or a 404 is repeated through the client.
* Flexible checksums (CRC32 on every PUT/GET) are off by default: omnifs keeps
  its own SHA-256 and the CPU cost shows in throughput. Set the option
  ``checksums = "when_supported"`` to turn them back on.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions as bx
import botocore.session
import botocore.utils
import urllib3.exceptions as ux
from botocore.config import Config

from . import compat_cells, encryption, s3api
from .base import MiB, ObjectInfo, ReadStream, WriteSource, content_type_for
from .errors import InvalidInput, OmnifsError, PermissionDenied, timed_out, transport_error
from .metered import note_retry
from .s3wire import Fallback, S3Wire
from .streams import TranslatingReader, read_full, whole_size

if TYPE_CHECKING:
    from .registry import ProviderSettings

GiB = 1024 * MiB

#: the requests that create an object: each carries the store's encryption setting
_WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")

#: S3 refuses a single CopyObject above this; bigger objects are copied by parts
COPY_LIMIT = 5 * GiB
#: part size for server-side part copies (S3 allows up to 5 GiB per part)
COPY_PART = 512 * MiB
#: parts uploaded at once by one ``write`` (bounds memory: ~this many parts buffered)
PARALLEL_PARTS = 4

log = logging.getLogger(__name__)

def _call_started(**_: Any) -> None:
    """botocore's ``before-call`` hook (once per API call): with ``before-send`` (once per
    attempt), what :func:`note_retry` adds up is the call's retries."""
    note_retry(-1)


def _attempt_sent(**_: Any) -> None:
    note_retry(1)


def _no_retry_after_timeout(caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` hook, run before its retry handler: a timed-out attempt ends
    the call.

    botocore retries a timeout like any transient error, so ``max_attempts``
    silent attempts made one call wait ``max_attempts`` x ``timeout`` (31 s at
    the default 10 s). Raising here ends the retry loop with the timeout
    itself, which the caller translates as usual.
    """
    if caught_exception is not None and timed_out(caught_exception):
        raise caught_exception


#: what the SDK and its transport raise; anything else (a bug, the caller's stream failing)
#: propagates
_SDK_ERRORS: tuple[type[BaseException], ...] = (bx.BotoCoreError, bx.ClientError,
                                                ConnectionError, TimeoutError, ux.HTTPError)


def parse_timestamp(value: str) -> datetime:
    """botocore's timestamps (ISO 8601 in XML bodies, RFC 1123 in headers) without dateutil."""
    try:
        if "T" in value and value[:4].isdigit():
            return datetime.fromisoformat(value)
        if value[:3].isalpha():
            return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        pass
    return botocore.utils.parse_timestamp(value)


class S3Provider(s3api.S3ApiProvider):
    schemes = ("s3",)

    capabilities = dataclasses.replace(s3api.S3_CAPABILITIES, tiers=(
        "STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
        "DEEP_ARCHIVE"), object_lock=True)
    sdk_errors = _SDK_ERRORS
    compat = compat_cells.AWS_S3

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self._lock = threading.Lock()
        self._assembling = None
        extra = settings.extra or {}
        #: the store's server-side encryption (providers/encryption.py), sent on every write
        self.encryption = encryption.of("s3", extra)
        attempts = int(extra.get("max_attempts", 3))
        checksums = str(extra.get("checksums", "when_required"))
        style = extra.get("addressing_style") or ("path" if settings.endpoint else "auto")
        config = Config(
            connect_timeout=settings.timeout,
            read_timeout=settings.timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            max_pool_connections=max(32, PARALLEL_PARTS * 8),
            s3={"addressing_style": style},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
            tcp_keepalive=True,
        )
        try:
            core = botocore.session.get_session()
            # botocore parses every Last-Modified with dateutil: ~0.5 ms of CPU per
            # request, a quarter of what a small GET costs us
            core.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=parse_timestamp)
            session = boto3.session.Session(profile_name=extra.get("profile") or None,
                                            botocore_session=core)

            def make_client(read_timeout: float):
                # None values fall through to boto3's own chain (env, profile, IMDS...)
                client = session.client(
                    "s3",
                    endpoint_url=settings.endpoint or None,
                    region_name=settings.region or None,
                    aws_access_key_id=settings.access_key or None,
                    aws_secret_access_key=settings.secret_key or None,
                    config=config.merge(Config(read_timeout=read_timeout)),
                )
                client.meta.events.register_first("needs-retry.s3", _no_retry_after_timeout)
                client.meta.events.register("before-call.s3", _call_started)
                client.meta.events.register("before-send.s3", _attempt_sent)
                if self.encryption is not None:
                    sse = self.encryption.s3_params
                    for op in _WRITES:  # the one place every object write gets the setting
                        client.meta.events.register(
                            f"before-parameter-build.s3.{op}",
                            lambda params, **_: params.update(sse))
                return client

            self.client = make_client(settings.timeout)
            self._make_client = make_client
            self._wire = S3Wire(self.client, self.bucket,
                                self.encryption.s3_headers if self.encryption else None)
        except (bx.BotoCoreError, ValueError) as e:
            raise InvalidInput(f"cannot configure the S3 client: {' '.join(str(e).split())}",
                               provider=self.name) from e

    # -- helpers ---------------------------------------------------------
    @property
    def assembling(self):
        """The client for requests whose answer waits on the store assembling an object.

        CompleteMultipartUpload and the copies: S3 warns they may take
        minutes; moto needs ~20 s for 1 GiB. With ``timeout``'s read timeout
        such a request timed out and was retried after the store had
        finished, which then failed as "no such upload" (moto: 500), and a
        1 GiB ``cp`` into the mount ended in EIO. Same settings otherwise;
        made on first use.
        """
        with self._lock:
            if self._assembling is None:
                self._assembling = self._make_client(
                    max(self.settings.timeout, s3api.ASSEMBLY_TIMEOUT))
            return self._assembling

    def _translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        """A boto3/botocore/urllib3 error as an omnifs error."""
        where: dict[str, Any] = {"provider": self.name, "key": key}
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            return s3api.s3_error(str(err.get("Code") or ""),
                                  exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                                  err.get("Message"), bucket=self.bucket, **where)
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return PermissionDenied("no credentials found (set access_key/secret_key, "
                                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
                                    **where)
        if isinstance(exc, bx.ProfileNotFound):
            return InvalidInput(str(exc), **where)
        if isinstance(exc, bx.ParamValidationError):
            return InvalidInput(" ".join(str(exc).split()), **where)
        return transport_error(exc, self.settings.timeout,
                               detail=" ".join(str(exc).split())[:200], **where)

    def _info(self, key: str, r: dict) -> ObjectInfo:
        """The object a HeadObject or GetObject answer describes."""
        return s3api.answer_info(key, int(r.get("ContentLength") or 0), r.get("ETag"),
                                 r.get("VersionId"),
                                 {k.lower(): v for k, v in (r.get("Metadata") or {}).items()},
                                 r.get("ContentType"), r.get("StorageClass") or "STANDARD",
                                 r.get("LastModified"))

    def restore(self, key: str, days: int = 1) -> bool:
        """RestoreObject, standard retrieval; one already under way is no error."""
        try:
            self.client.restore_object(Bucket=self.bucket, Key=self.object_name(key),
                                       RestoreRequest={"Days": days, "GlacierJobParameters":
                                                       {"Tier": "Standard"}})
        except _SDK_ERRORS as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if code != "RestoreAlreadyInProgress":
                raise self.translate(e, key) from None
        return True

    # -- primitives ------------------------------------------------------
    def _stat(self, name: str, key: str) -> ObjectInfo:
        return self._info(key, self.client.head_object(Bucket=self.bucket, Key=name))

    def _bucket_exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except bx.ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise
        return True

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        full = self.object_name(prefix) if prefix else self.object_name("")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
        if not recursive:
            kwargs["Delimiter"] = "/"
        while True:
            with self.translating(prefix or None):
                page = self.client.list_objects_v2(**kwargs)
            found = []
            for o in page.get("Contents", ()):
                key = self.key_of(o["Key"])
                if not key:  # the root's own "directory marker"
                    continue
                found.append(s3api.listed_info(key, o.get("Size"), o.get("LastModified"),
                                               o.get("ETag"), o.get("StorageClass")))
            yield from self._with_metadata(found, metadata)
            for p in page.get("CommonPrefixes", ()):
                yield ObjectInfo(key=self.key_of(p["Prefix"]), is_prefix=True)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        name = self.object_name(key)
        start = max(0, start)
        if end is not None and end <= start:
            return self._empty_read(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            try:
                headers, body = self._wire.get(name, kwargs.get("Range"))
                info = s3api.info_from_headers(key, headers)
            except Fallback:
                r = self.client.get_object(**kwargs)
                body, info = r["Body"], self._info(key, r)
                info.size = whole_size(r.get("ContentRange"), r.get("ContentLength")) or 0
        except _SDK_ERRORS as e:
            if isinstance(e, bx.ClientError) and s3api.past_the_end(
                    e.response.get("Error", {}).get("Code"),
                    e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")):
                return io.BytesIO(b"")  # start at or past the end: nothing to read
            raise self.translate(e, key) from None
        reader = TranslatingReader(body, _SDK_ERRORS, lambda e: self.translate(e, key), info=info)
        return reader

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        name = self.object_name(key)
        caps = self.capabilities
        content_type = content_type_for(key, content_type)
        extra: dict[str, Any] = {"Metadata": dict(metadata or {}), "ContentType": content_type}
        cond = s3api.conditions(if_absent, if_match)
        if size is not None and size < 0:
            raise InvalidInput(f"negative size {size}", provider=self.name, key=key)
        want = caps.multipart_threshold if size is None else min(size, caps.multipart_threshold)
        first = read_full(stream, want)
        if size is not None and len(first) < want:
            raise InvalidInput(f"the data ended after {len(first)} of {size} bytes",
                               provider=self.name, key=key)
        with self.preconditioned(key, if_absent, if_match):
            if len(first) < caps.multipart_threshold:
                with self.translating(key):
                    try:
                        r = self._wire.put(name, first, extra["Metadata"], content_type,
                                           s3api.condition_headers(cond))
                    except Fallback:
                        r = self.client.put_object(Bucket=self.bucket, Key=name, Body=first,
                                                   **extra, **cond)
                return s3api.answer_info(key, len(first), r.get("ETag"), r.get("VersionId"),
                                         extra["Metadata"], content_type)
            return self._multipart(key, name, first, stream, size, extra, cond)

    def _multipart(self, key: str, name: str, first: bytes, stream: WriteSource,
                   size: int | None, extra: dict[str, Any],
                   cond: dict[str, str] | None = None) -> ObjectInfo:
        """Upload parts in parallel; abort on any failure so nothing partial appears."""
        part_size = self.capabilities.part_size
        slots = threading.BoundedSemaphore(PARALLEL_PARTS)
        failed = threading.Event()
        futures: list[Future] = []
        total = 0

        def finished(f: Future) -> None:
            if not f.cancelled() and f.exception() is not None:
                failed.set()
            slots.release()

        def send(upload_id: str) -> list[dict]:
            nonlocal total
            with ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="s3-part") as pool:
                try:
                    for number, chunk in enumerate(self._chunks(first, stream, part_size), 1):
                        total += len(chunk)
                        if size is not None and total > size:
                            raise InvalidInput(
                                f"the data is longer than the {size} bytes announced",
                                provider=self.name, key=key)
                        slots.acquire()  # at most PARALLEL_PARTS parts buffered
                        if failed.is_set():
                            slots.release()
                            break
                        fut = pool.submit(self._upload_part, name, upload_id, number, chunk)
                        fut.add_done_callback(finished)
                        futures.append(fut)
                        del chunk
                finally:
                    wait(futures, return_when=FIRST_EXCEPTION)
                    if failed.is_set():
                        for f in futures:
                            f.cancel()
            for f in futures:
                err = None if f.cancelled() else f.exception()
                if err is not None:
                    raise err
            if size is not None and total != size:
                raise InvalidInput(f"the data ended after {total} of {size} bytes",
                                   provider=self.name, key=key)
            return [f.result() for f in futures]

        r = self._multipart_upload(name, key, extra, send, cond or {})
        return s3api.answer_info(key, total, r.get("ETag"), r.get("VersionId"),
                                 extra["Metadata"], extra.get("ContentType"))

    @staticmethod
    def _chunks(first: bytes, stream: WriteSource, part_size: int) -> Iterator[bytes]:
        """Parts of ``part_size`` (the last may be shorter), the already-read head first."""
        buf = first
        while True:
            while len(buf) >= part_size:
                yield buf[:part_size]
                buf = buf[part_size:]
            more = read_full(stream, part_size - len(buf))
            if not more:
                if buf:
                    yield buf
                return
            buf = buf + more if buf else more

    def _upload_part(self, name: str, upload_id: str, number: int, chunk: bytes) -> dict:
        r = self.client.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                    PartNumber=number, Body=chunk)
        return {"ETag": r["ETag"], "PartNumber": number}

    def _multipart_upload(self, name: str, err_key: str, extra: dict[str, Any],
                          send: Callable[[str], builtins.list[dict]],
                          cond: dict[str, str] | None = None) -> dict:
        """Create an upload, let ``send(upload_id)`` upload the parts, complete it.

        Any failure aborts the upload, so nothing partial ever becomes visible.
        ``cond`` (If-None-Match / If-Match) goes on the completion; an If-Match
        is also compared with a HEAD first, since moto ignores it there (a quirk).
        """
        cond = cond or {}
        with self.translating(err_key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, **extra)["UploadId"]
        try:
            parts = send(upload_id)
            if "IfMatch" in cond:
                self.check_unchanged(err_key, False, cond["IfMatch"].strip('"'))
            return self.assembling.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts},
                **cond)
        except BaseException as e:
            if timed_out(e):
                # the store is silent: the caller must not wait another timeout for the abort
                threading.Thread(target=self._abort, args=(name, upload_id), daemon=True,
                                 name="s3-abort").start()
            else:
                self._abort(name, upload_id)
            if isinstance(e, _SDK_ERRORS):
                raise self.translate(e, err_key) from None
            raise

    def _abort(self, name: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except Exception as e:  # noqa: BLE001 - best effort; a lifecycle rule cleans up leftovers
            log.warning("%s: could not abort the multipart upload of %s: %s", self.name, name, e)

    def _copy_object(self, plan: s3api.CopyPlan) -> ObjectInfo:
        info = plan.info
        if info.size > COPY_LIMIT:
            return self._copy_parts(plan)
        extra: dict[str, Any] = {"MetadataDirective": "COPY"}
        if not plan.keep_metadata:
            extra = {"Metadata": plan.metadata, "MetadataDirective": "REPLACE"}
            if info.content_type:
                extra["ContentType"] = info.content_type
        if plan.send_tier:
            extra["StorageClass"] = plan.tier
        with self.translating(plan.dst_key):
            r = self.assembling.copy_object(Bucket=self.bucket, Key=plan.dst,
                                            CopySource={"Bucket": self.bucket, "Key": plan.src},
                                            **extra)
        res = r.get("CopyObjectResult", {})
        return s3api.answer_info(plan.dst_key, info.size, res.get("ETag"), r.get("VersionId"),
                                 plan.metadata, info.content_type, plan.tier,
                                 res.get("LastModified"))

    def _copy_parts(self, plan: s3api.CopyPlan) -> ObjectInfo:
        """Server-side copy of an object too big for one CopyObject (UploadPartCopy)."""
        info, src, dst = plan.info, plan.src, plan.dst
        extra: dict[str, Any] = {"Metadata": plan.metadata, "StorageClass": plan.tier}
        if info.content_type:
            extra["ContentType"] = info.content_type
        part = max(COPY_PART, -(-info.size // 10000))
        ranges = [(i, off, min(off + part, info.size) - 1)
                  for i, off in enumerate(range(0, info.size, part), 1)]

        def send(upload_id: str) -> list[dict]:
            def one(item: tuple[int, int, int]) -> dict:
                return self._copy_part(src, dst, upload_id, item, info.etag)

            with ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="s3-copy") as pool:
                return list(pool.map(one, ranges))

        r = self._multipart_upload(dst, plan.src_key, extra, send)
        return s3api.answer_info(plan.dst_key, info.size, r.get("ETag"), r.get("VersionId"),
                                 plan.metadata, info.content_type, plan.tier)

    def _copy_part(self, src: str, dst: str, upload_id: str, item: tuple[int, int, int],
                   etag: str | None) -> dict:
        number, first, last = item
        r = self.assembling.upload_part_copy(
            Bucket=self.bucket, Key=dst, UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": src},
            CopySourceRange=f"bytes={first}-{last}",
            CopySourceIfMatch=f'"{etag}"' if etag else "*")
        return {"ETag": r["CopyPartResult"]["ETag"], "PartNumber": number}

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        with self.translating(key):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def close(self) -> None:
        super().close()
        for client in (self.client, self._assembling):
            try:
                if client is not None:
                    client.close()
            except Exception as e:  # noqa: BLE001 - closing must not fail
                log.debug("%s: closing the client: %s", self.name, e)
