"""A store's server-side encryption setting (its ``encryption`` key): parsed and checked here.

The value is a string whose form depends on the store's kind:

* ``s3://``, ``minio://``: ``"AES256"`` (SSE-S3: keys the store manages),
  ``"aws:kms"`` (SSE-KMS with the account's default key) or
  ``"aws:kms:KEY"`` (SSE-KMS with that key id, alias or ARN);
* ``gs://``: a Cloud KMS key name (CMEK),
  ``"projects/P/locations/L/keyRings/R/cryptoKeys/K"``;
* ``az://``: an encryption scope name of the storage account (3-63 letters and digits);
* ``file://``: none (disk encryption, LUKS or fscrypt, is outside omnifs).

Every object write of the store carries it (each provider sends it from one
place); ``omnifs gov check`` reads back what the store reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: SSE-S3 (keys managed by the store)
AES256 = "AES256"
#: SSE-KMS
KMS = "aws:kms"

_GCS_KEY = re.compile(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+")
_AZ_SCOPE = re.compile(r"[A-Za-z0-9]{3,63}")

#: scheme -> what a valid setting looks like (error messages)
FORMS = {
    "s3": '"AES256", "aws:kms" or "aws:kms:KEY-ID"',
    "minio": '"AES256", "aws:kms" or "aws:kms:KEY-ID"',
    "gs": 'a KMS key name "projects/P/locations/L/keyRings/R/cryptoKeys/K"',
    "az": "an encryption scope name (3-63 letters and digits)",
}


@dataclass(frozen=True)
class Encryption:
    """One store's setting. S3: ``algorithm`` AES256 or aws:kms, ``key`` the KMS key or None;
    GCS: ``key`` the KMS key name; Azure: ``key`` the encryption scope."""

    algorithm: str
    key: str | None = None

    @property
    def s3_params(self) -> dict[str, str]:
        """PutObject / CreateMultipartUpload / CopyObject parameters (boto3's names)."""
        out = {"ServerSideEncryption": self.algorithm}
        if self.key:
            out["SSEKMSKeyId"] = self.key
        return out

    @property
    def s3_headers(self) -> dict[str, str]:
        """The same as HTTP request headers."""
        out = {"x-amz-server-side-encryption": self.algorithm}
        if self.key:
            out["x-amz-server-side-encryption-aws-kms-key-id"] = self.key
        return out


def parse(scheme: str, value: object) -> Encryption:
    """The setting ``value`` of a ``scheme`` store; ValueError saying what is wrong."""
    if scheme not in FORMS:
        raise ValueError(f"{scheme}:// stores have no server-side encryption "
                         "(encrypt the disk itself: LUKS, fscrypt)")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {FORMS[scheme]}, got {value!r}")
    if scheme in ("s3", "minio"):
        if value == AES256:
            return Encryption(AES256)
        if value == KMS:
            return Encryption(KMS)
        if value.startswith(KMS + ":") and value[len(KMS) + 1:].strip():
            return Encryption(KMS, value[len(KMS) + 1:])
    elif scheme == "gs" and _GCS_KEY.fullmatch(value):
        return Encryption("cmek", value)
    elif scheme == "az" and _AZ_SCOPE.fullmatch(value):
        return Encryption("scope", value)
    raise ValueError(f"expected {FORMS[scheme]}, got {value!r}")


def of(scheme: str, extra: dict | None) -> Encryption | None:
    """The setting in a provider's ``extra`` options (validated with the config), or None."""
    value = (extra or {}).get("encryption")
    return None if value is None else parse(scheme, value)
