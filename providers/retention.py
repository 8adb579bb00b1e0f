"""Store-side retention: WORM that the store itself enforces, where a store has it.

``omnifs gov apply`` sets, for every object under a ``retention`` rule, a
lock the store keeps even against root on the omnifs host (and a legal
hold for a ``legal_hold`` rule):

* S3 (``S3Provider``): Object Lock retention on the object, mode
  ``COMPLIANCE`` (no one can shorten it or delete the object version before
  the date). The bucket must have been created with Object Lock enabled; a
  bucket without it is refused with the store's own words.
* MinIO: not wired (its SDK has its own retention calls, not done yet).
* GCS: bucket retention policies are not wired: the local emulator
  (gcp-storage-emulator) has no retention API to test them against.
* Azure: immutability policies are not wired: Azurite does not implement them.
* ``file://``: none possible (root on the host can always remove a file).

:func:`unsupported` says why a store has no lock (None when it has one); the
quirks live here, as data, and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .base import Provider
from .s3 import S3Provider

#: provider class -> why it cannot hold a retention lock (through omnifs)
WHY_NOT: dict[str, str] = {
    "MinioProvider": "MinIO object retention is not wired in omnifs yet",
    "GCSProvider": "GCS retention policies are not wired (the emulator has no retention API)",
    "AzureProvider": "Azure immutability policies are not wired (Azurite does not implement "
                     "them)",
    "LocalProvider": "a local directory cannot enforce retention (root can remove any file)",
}


def unsupported(p: Provider) -> str | None:
    if isinstance(p, S3Provider):
        return None
    return WHY_NOT.get(type(p).__name__, f"{type(p).__name__} has no retention lock")


def set_retention(p: Provider, key: str, until: datetime) -> None:
    """Lock ``key`` until ``until`` (never shortened: a later date only)."""
    assert isinstance(p, S3Provider), unsupported(p)
    with p.translating(key):
        p.client.put_object_retention(
            Bucket=p.bucket, Key=p.object_name(key),
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until.astimezone(UTC)})


def set_legal_hold(p: Provider, key: str) -> None:
    """Put ``key`` under the store's legal hold (no deletion until it is released)."""
    assert isinstance(p, S3Provider), unsupported(p)
    with p.translating(key):
        p.client.put_object_legal_hold(Bucket=p.bucket, Key=p.object_name(key),
                                       LegalHold={"Status": "ON"})


def get_legal_hold(p: Provider, key: str) -> bool:
    assert isinstance(p, S3Provider), unsupported(p)
    with p.translating(key):
        r = p.client.head_object(Bucket=p.bucket, Key=p.object_name(key))
    return r.get("ObjectLockLegalHoldStatus") == "ON"


def get_retention(p: Provider, key: str) -> datetime | None:
    """The date ``key`` is locked until, or None.

    Read from HeadObject's ``ObjectLockRetainUntilDate`` (one request, and moto's server
    answers GetObjectRetention with a 500: it does not implement that call)."""
    assert isinstance(p, S3Provider), unsupported(p)
    with p.translating(key):
        r = p.client.head_object(Bucket=p.bucket, Key=p.object_name(key))
    return r.get("ObjectLockRetainUntilDate")


def read_settings(p: Provider) -> dict[str, str]:
    """The store's governance settings as the store itself reports them (report evidence):
    ``object_lock`` and ``encryption`` for S3; an explanation for the others."""
    if not isinstance(p, S3Provider):
        return {"read back": unsupported(p) or "nothing to read"}
    out = {}
    with p.translating(None):
        try:
            conf = p.client.get_object_lock_configuration(Bucket=p.bucket)
            out["object_lock"] = conf.get("ObjectLockConfiguration", {}).get(
                "ObjectLockEnabled", "Disabled").lower()
        except p.client.exceptions.ClientError as e:
            out["object_lock"] = _missing(e, "disabled")
        try:
            enc = p.client.get_bucket_encryption(Bucket=p.bucket)
            rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            out["encryption"] = ", ".join(
                r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "?")
                for r in rules) or "none"
        except p.client.exceptions.ClientError as e:
            out["encryption"] = _missing(e, "none")
    return out


def _missing(e, none: str) -> str:
    """A ``...NotFound...`` answer is the setting's absence; anything else is said as is."""
    code = str(e.response.get("Error", {}).get("Code", ""))
    return none if "NotFound" in code else f"unreadable ({code or e})"
