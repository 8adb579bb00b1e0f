"""Store-side retention: WORM that the store itself enforces, where a store has it.

``omnifs gov apply`` sets, for every object under a ``retention`` rule, a
lock the store keeps even against root on the omnifs host (and a legal
hold for a ``legal_hold`` rule):

* S3 (``S3Provider``): Object Lock retention on the object, mode
  ``COMPLIANCE`` (no one can shorten it or delete the object version before
  the date). The bucket must have been created with Object Lock enabled; a
  bucket without it is refused with the store's own words.
* MinIO (``MinioProvider``): the same Object Lock calls through the minio SDK
  (tested on moto; the state read back from the object's headers).
* GCS: the bucket's retention policy (:func:`set_bucket_retention`): every
  object in the bucket is kept that long from its own creation, so only for
  stores the config lists in ``[governance] bucket_retention`` (a bucket that
  holds only such data). Set unlocked (Bucket Lock is irreversible: a user's
  own step). Object holds (legal hold) are not wired: the emulator keeps none.
  Tested on gcp-storage-emulator, which keeps the policy but enforces none.
* Azure: immutability policies are not wired: Azurite, the one Azure server
  omnifs is tested against, answers them with "not implemented".
* ``file://``: none possible (root on the host can always remove a file).

:func:`unsupported` says why a store has no lock (None when its capability
record says ``object_lock``); the reasons live here, as data, and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from .base import Provider

if TYPE_CHECKING:
    from .s3 import S3Provider

#: URI scheme -> why its stores hold no retention lock (through omnifs)
WHY_NOT: dict[str, str] = {
    "gs": ("a GCS retention policy holds the whole bucket: list the store in [governance] "
           "bucket_retention to have `gov apply` set one"),
    "az": ("Azure immutability policies are not wired (Azurite, the Azure server omnifs is "
           "tested against, does not implement them)"),
    "file": "a local directory cannot enforce retention (root can remove any file)",
}


#: why a GCS store holds no legal hold through omnifs
GCS_NO_HOLD = "GCS object holds are not wired (the emulator keeps none to test against)"


def unsupported(p: Provider) -> str | None:
    """Why ``p`` holds no retention lock, or None when it does (its capability record)."""
    if p.capabilities.object_lock:
        return None
    if "object_lock" in (p.settings.extra.get("disable") or ()):
        return f"object lock disabled by config ([providers.{p.name}] disable)"
    scheme = p.location.scheme
    return WHY_NOT.get(scheme, f"{scheme} stores have no retention lock")


def _s3(p: Provider) -> S3Provider:
    """``p`` (maybe behind a wrapper) as the S3 store its capability record says it is."""
    if not p.capabilities.object_lock:
        raise AssertionError(unsupported(p))
    return cast("S3Provider", p)


def set_retention(p: Provider, key: str, until: datetime) -> None:
    """Lock ``key`` until ``until`` (never shortened: a later date only)."""
    if p.location.scheme == "minio":
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention

        m: Any = p
        with m.translating(key):
            m.client.set_object_retention(m.bucket, m.object_name(key),
                                          Retention(COMPLIANCE, until.astimezone(UTC)))
        return
    s3 = _s3(p)
    with s3.translating(key):
        s3.client.put_object_retention(
            Bucket=s3.bucket, Key=s3.object_name(key),
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until.astimezone(UTC)})


def set_legal_hold(p: Provider, key: str) -> None:
    """Put ``key`` under the store's legal hold (no deletion until it is released)."""
    if p.location.scheme == "minio":
        m: Any = p
        with m.translating(key):
            m.client.enable_object_legal_hold(m.bucket, m.object_name(key))
        return
    s3 = _s3(p)
    with s3.translating(key):
        s3.client.put_object_legal_hold(Bucket=s3.bucket, Key=s3.object_name(key),
                                       LegalHold={"Status": "ON"})


def get_retention(p: Provider, key: str) -> datetime | None:
    """The date ``key`` is locked until, or None.

    Read from HeadObject's ``ObjectLockRetainUntilDate`` (one request, and moto's server
    answers GetObjectRetention with a 500: it does not implement that call)."""
    return _head(p, key).get("ObjectLockRetainUntilDate")


def lock_state(p: Provider, key: str) -> tuple[datetime | None, bool]:
    """(the date ``key`` is locked until or None, whether it is under legal hold): one HEAD."""
    r = _head(p, key)
    return r.get("ObjectLockRetainUntilDate"), r.get("ObjectLockLegalHoldStatus") == "ON"


def _head(p: Provider, key: str) -> dict[str, Any]:
    """``key``'s Object Lock state as HeadObject names it (the minio SDK: from the headers)."""
    if p.location.scheme == "minio":
        m: Any = p
        with m.translating(key):
            stat = m.client.stat_object(m.bucket, m.object_name(key))
        h = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        until = h.get("x-amz-object-lock-retain-until-date")
        return {"ObjectLockLegalHoldStatus": h.get("x-amz-object-lock-legal-hold"),
                "ObjectLockRetainUntilDate":
                    datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None}
    s3 = _s3(p)
    with s3.translating(key):
        return s3.client.head_object(Bucket=s3.bucket, Key=s3.object_name(key))


def bucket_retention(p: Provider) -> int | None:
    """The seconds a GCS bucket's retention policy keeps each object, or None (no policy)."""
    bucket: Any = p.bucket  # type: ignore[attr-defined]  # a GCSProvider's bucket
    with p.translating(None):
        bucket.reload()
    period = bucket.retention_period
    return int(period) if period else None


def set_bucket_retention(p: Provider, seconds: int) -> None:
    """Keep every object of the GCS bucket ``seconds`` from its creation (unlocked policy)."""
    bucket: Any = p.bucket  # type: ignore[attr-defined]
    with p.translating(None):
        bucket.retention_period = seconds
        bucket.patch()


def read_settings(p: Provider) -> dict[str, str]:
    """The store's governance settings as the store itself reports them (report evidence):
    who enforces retention (``retention``: the store, or omnifs only and why);
    ``object_lock`` and ``encryption`` for S3 and MinIO, ``retention_policy`` for GCS."""
    why = unsupported(p)
    if p.location.scheme == "gs":
        period = bucket_retention(p)
        return {"retention": "enforced by the store (bucket retention policy)" if period
                else f"enforced by omnifs only ({why or 'no bucket retention policy'})",
                "retention_policy": f"{period} s" if period else "none"}
    if why is not None:
        return {"retention": f"enforced by omnifs only ({why})"}
    out = _minio_settings(p) if p.location.scheme == "minio" else _s3_settings(p)
    return {"retention": "enforced by the store (Object Lock)" if out["object_lock"] == "enabled"
            else "enforced by omnifs only (the bucket has no Object Lock)", **out}


def _s3_settings(p: Provider) -> dict[str, str]:
    """``read_settings`` of an S3 store: its Object Lock and default encryption."""
    s3 = _s3(p)
    out = {}
    with s3.translating(None):
        try:
            conf = s3.client.get_object_lock_configuration(Bucket=s3.bucket)
            out["object_lock"] = conf.get("ObjectLockConfiguration", {}).get(
                "ObjectLockEnabled", "Disabled").lower()
        except s3.client.exceptions.ClientError as e:
            out["object_lock"] = _missing(e, "disabled")
        try:
            enc = s3.client.get_bucket_encryption(Bucket=s3.bucket)
            rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            out["encryption"] = ", ".join(
                r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "?")
                for r in rules) or "none"
        except s3.client.exceptions.ClientError as e:
            out["encryption"] = _missing(e, "none")
    return out


def _minio_settings(p: Provider) -> dict[str, str]:
    """``read_settings`` of a MinIO store, through the minio SDK."""
    from minio.error import S3Error

    m: Any = p  # a MinioProvider, maybe behind the metering wrapper
    out = {}
    with m.translating(None):
        try:
            m.client.get_object_lock_config(m.bucket)
            out["object_lock"] = "enabled"
        except S3Error as e:
            out["object_lock"] = "disabled" if "NotFound" in str(e.code) else (
                f"unreadable ({e.code})")
        enc = m.client.get_bucket_encryption(m.bucket)
        rule = enc.rule if enc is not None else None
        out["encryption"] = rule.sse_algorithm if rule is not None else "none"
    return out


def _missing(e, none: str) -> str:
    """A ``...NotFound...`` answer is the setting's absence; anything else is said as is."""
    code = str(e.response.get("Error", {}).get("Code", ""))
    return none if "NotFound" in code else f"unreadable ({code or e})"


#: URI schemes whose objects' server-side encryption is read back by a HEAD
ENCRYPTION_READ_BACK = ("s3", "minio")


def object_encryption(p: Provider, key: str) -> str | None:
    """What the store reports ``key`` encrypted with: ``"AES256"``, ``"aws:kms KEY"``, or
    ``""`` for none; None where this kind's read-back is not wired (GCS, Azure: their
    emulators keep no setting to test it against). One HEAD."""
    scheme = p.location.scheme
    if scheme not in ENCRYPTION_READ_BACK:
        return None
    s3: Any = p  # an S3Provider or MinioProvider, maybe behind the metering wrapper
    with s3.translating(key):
        if scheme == "s3":
            r = s3.client.head_object(Bucket=s3.bucket, Key=s3.object_name(key))
        else:  # the minio SDK: the answer's headers
            stat = s3.client.stat_object(s3.bucket, s3.object_name(key))
            h = {k.lower(): v for k, v in (stat.metadata or {}).items()}
            r = {"ServerSideEncryption": h.get("x-amz-server-side-encryption"),
                 "SSEKMSKeyId": h.get("x-amz-server-side-encryption-aws-kms-key-id")}
    algorithm = r.get("ServerSideEncryption") or ""
    kms = r.get("SSEKMSKeyId")
    return f"{algorithm} {kms}" if algorithm and kms else algorithm
