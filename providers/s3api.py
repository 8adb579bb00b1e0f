"""What every S3-API store shares (s3:// over boto3, minio:// over the minio SDK).

The protocol, whichever SDK speaks it: S3's error codes, the headers that
describe an object (user metadata as ``x-amz-meta-*``, the storage class, the
version), the records a listing or a write answers with, telling a missing
bucket from a missing key, filling in the metadata a listing lacks, and when
a copy is made and what it carries (:class:`S3ApiProvider`).
"""

from __future__ import annotations

import abc
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from .base import Capabilities, MiB, ObjectInfo, Provider
from .errors import Archived, NotFound, OmnifsError, RootMissing
from .http_status import RANGE_NOT_SATISFIABLE, status_error
from .streams import whole_size

if TYPE_CHECKING:
    from .registry import ProviderSettings

#: read timeout (s) for requests whose answer waits on the store assembling an object
#: (completing a multipart upload, server-side copies): seconds to minutes for big ones
ASSEMBLY_TIMEOUT = 600.0

_MD5_RE = re.compile(r"^[0-9a-f]{32}$")

#: HEADs in flight while filling in a listing's metadata
LIST_HEADS = 16

#: what every S3-API store can do; each provider adds its storage classes as ``tiers``
S3_CAPABILITIES = Capabilities(
    server_side_copy=True, native_checksums=("md5",), max_key_bytes=1024, versioning=False,
    multipart_threshold=16 * MiB, part_size=16 * MiB,
    metadata_update=True, self_copy_rewrites=True, conditional_writes=True)

META_PREFIX = "x-amz-meta-"
STORAGE_CLASS = "x-amz-storage-class"

#: S3 error codes (AWS's and MinIO's) -> the HTTP status whose meaning each carries, which
#: decides over the status it came with
CODE_STATUS: dict[str, int] = {
    **dict.fromkeys(("NoSuchKey", "NotFound", "NoSuchVersion", "NoSuchUpload",
                     "ResourceNotFound"), 404),
    **dict.fromkeys(("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                     "AllAccessDisabled", "InvalidToken", "ExpiredToken", "AccountProblem"), 403),
    **dict.fromkeys(("SlowDown", "SlowDownRead", "SlowDownWrite", "Throttling",
                     "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
                     "ServiceUnavailable", "RequestThrottled", "XMinioServerNotInitialized"), 503),
    "PreconditionFailed": 412,
    **dict.fromkeys(("ConditionalRequestConflict", "OperationAborted",
                     "ResourceConflict"), 409),
    **dict.fromkeys(("InvalidArgument", "KeyTooLong", "KeyTooLongError", "InvalidStorageClass",
                     "EntityTooLarge", "EntityTooSmall", "InvalidRequest", "InvalidBucketName",
                     "MetadataTooLarge", "InvalidPart", "InvalidPartOrder",
                     "XMinioInvalidObjectName", "InvalidObjectName"), 400),
}


def bucket_missing(bucket: str, provider: str, key: str | None) -> RootMissing:
    return RootMissing(f"bucket {bucket!r} does not exist", provider=provider, key=key)


def s3_error(code: str, status: int | None, message: str | None, *, bucket: str,
             provider: str, key: str | None) -> OmnifsError:
    """The omnifs error for an S3 error answer: its code first, else its HTTP status."""
    if code == "NoSuchBucket":
        return bucket_missing(bucket, provider, key)
    if code == "InvalidObjectState":  # answered with 403: not a matter of credentials
        return Archived("the object is archived (GLACIER/DEEP_ARCHIVE): restore it first",
                        provider=provider, key=key)
    detail = f"{code}: {message}" if code and message and message != code else code
    return status_error(CODE_STATUS.get(code, status), detail, provider=provider, key=key)


def past_the_end(code: str | None, status: int | None) -> bool:
    """A read's range starts at or past the object's end (nothing to read, not an error)."""
    return status == RANGE_NOT_SATISFIABLE or code == "InvalidRange"


def conditions(if_absent: bool, if_match: str | None) -> dict[str, str]:
    """A conditional write's parameters for PutObject / CompleteMultipartUpload."""
    if if_absent:
        return {"IfNoneMatch": "*"}
    if if_match is not None:
        return {"IfMatch": f'"{clean_etag(if_match)}"'}
    return {}


def condition_headers(cond: dict[str, str]) -> dict[str, str]:
    """:func:`conditions` as HTTP headers (the fast path's PUT)."""
    names = {"IfNoneMatch": "If-None-Match", "IfMatch": "If-Match"}
    return {names[k]: v for k, v in cond.items()}


def clean_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def version_of(v: str | None) -> str | None:
    """An unversioned bucket answers VersionId "null", which is no version at all."""
    return None if not v or v == "null" else v


def md5_checksums(etag: str | None) -> dict[str, str]:
    """An etag is the MD5 only for single-part, non-KMS uploads (32 hex digits, no "-N")."""
    return {"md5": etag} if etag and _MD5_RE.match(etag) else {}


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
        metadata={k[len(META_PREFIX):]: v for k, v in h.items() if k.startswith(META_PREFIX)},
        tier=h.get(STORAGE_CLASS) or "STANDARD", content_type=h.get("content-type"))


def listed_info(key: str, size: int | None, last_modified: datetime | None, etag: str | None,
                storage_class: str | None) -> ObjectInfo:
    """A listing's entry: no user metadata or content type (S3 listings lack them)."""
    etag = clean_etag(etag)
    return ObjectInfo(key=key, size=int(size or 0),
                      last_modified=last_modified.timestamp() if last_modified else None,
                      etag=etag, checksums=md5_checksums(etag),
                      tier=storage_class or "STANDARD", metadata_known=False)


def answer_info(key: str, size: int, etag: str | None, version: str | None,
                metadata: Mapping[str, str], content_type: str | None, tier: str = "STANDARD",
                last_modified: datetime | None = None) -> ObjectInfo:
    """The object a PUT, a completed upload or a copy made, from the store's answer."""
    etag = clean_etag(etag)
    return ObjectInfo(key=key, size=size,
                      last_modified=last_modified.timestamp() if last_modified else None,
                      etag=etag, version=version_of(version), checksums=md5_checksums(etag),
                      metadata=dict(metadata), tier=tier, content_type=content_type)


class BucketCheck:
    """A HEAD's 404 has no body to tell a missing bucket from a missing key: ask once.

    ``exists()`` asks the store whether the bucket is there; once it was,
    a 404 means "no such key" for the provider's life.
    """

    def __init__(self, provider: str, bucket: str, exists: Callable[[], bool],
                 errors: tuple[type[BaseException], ...]):
        self._provider, self._bucket = provider, bucket
        self._exists, self._errors = exists, errors
        self._seen = False

    def explain(self, err: OmnifsError, key: str | None) -> OmnifsError:
        """``err``, or the missing bucket's NotFound when the bucket is why."""
        if self._seen or not isinstance(err, NotFound):
            return err
        try:
            there = self._exists()
        except self._errors:
            return err  # only a better message is at stake
        if not there:
            return bucket_missing(self._bucket, self._provider, key)
        self._seen = True
        return err


class MetadataFiller:
    """Fills in user metadata, which S3 listings lack, with parallel HEADs.

    The contract promises metadata from ``list``. ``head(key)`` is the
    provider's; an object deleted since the listing (NotFound) is skipped, as
    if listed a moment later.
    """

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def fill(self, found: list[ObjectInfo],
             head: Callable[[str], ObjectInfo]) -> Iterator[ObjectInfo]:
        if not found:
            return

        def one(info: ObjectInfo) -> ObjectInfo | None:
            try:
                full = head(info.key)
            except NotFound:
                return None
            info.metadata, info.content_type = full.metadata, full.content_type
            info.version = full.version
            info.metadata_known = True
            return info

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(LIST_HEADS, thread_name_prefix=f"{self._name}-head")
            pool = self._pool
        for info in pool.map(one, found):
            if info is not None:
                yield info

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


@dataclass(frozen=True)
class CopyPlan:
    """A server-side copy as S3 makes it: object names, what it carries, how."""

    src_key: str
    dst_key: str
    src: str
    dst: str
    #: the source, as a HEAD found it
    info: ObjectInfo
    #: the copy's user metadata: the caller's, or the source's
    metadata: dict[str, str]
    tier: str
    #: the caller gave no metadata and the copy goes elsewhere: the store may copy the
    #: source's own (``x-amz-metadata-directive: COPY``)
    keep_metadata: bool
    #: the storage class is sent (a tier was asked for, or it is not STANDARD)
    send_tier: bool


class S3ApiProvider(Provider):
    """What s3:// (boto3) and minio:// (the minio SDK) do alike above their SDKs.

    Subclasses send the requests: ``_stat`` (HEAD Object), ``_bucket_exists``
    (HEAD Bucket) and ``_copy_object`` (CopyObject, or part copies when big).
    """

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.bucket = self.location.bucket
        self._buckets = BucketCheck(self.name, self.bucket, self._bucket_exists, self.sdk_errors)
        self._heads = MetadataFiller(self.schemes[0])

    @abc.abstractmethod
    def _stat(self, name: str, key: str) -> ObjectInfo:
        """HEAD Object ``name``, described as ``key`` (SDK errors raised as they are)."""

    @abc.abstractmethod
    def _bucket_exists(self) -> bool:
        """HEAD Bucket: False for a definite 404 (other SDK errors raised as they are)."""

    @abc.abstractmethod
    def _copy_object(self, plan: CopyPlan) -> ObjectInfo:
        """Make the copy ``plan`` says, server-side."""

    def head(self, key: str) -> ObjectInfo:
        name = self.object_name(key)
        try:
            return self._stat(name, key)
        except self.sdk_errors as e:
            raise self._buckets.explain(self.translate(e, key), key) from None

    def _with_metadata(self, found: list[ObjectInfo], metadata: bool) -> Iterable[ObjectInfo]:
        """Listed objects, their user metadata filled in when the caller wants it."""
        return self._heads.fill(found, self.head) if metadata else found

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._copy(src_key, dst_key, metadata, None)

    def _set_tier(self, key: str, tier: str) -> None:
        self._copy(key, key, None, tier)  # a copy in place with the new storage class

    def _copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None,
              tier: str | None) -> ObjectInfo:
        src, dst = self.object_name(src_key), self.object_name(dst_key)
        info = self.head(src_key)
        old_tier = info.tier or "STANDARD"
        new_tier = tier or old_tier
        if src == dst and metadata is None and new_tier == old_tier:
            return info  # nothing would change; S3 refuses such a copy
        return self._copy_object(CopyPlan(
            src_key, dst_key, src, dst, info,
            dict(info.metadata) if metadata is None else dict(metadata), new_tier,
            keep_metadata=metadata is None and src != dst,
            send_tier=new_tier != "STANDARD" or tier is not None))

    def close(self) -> None:
        self._heads.close()
