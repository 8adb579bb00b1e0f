"""A store's ``encryption`` key (providers/encryption.py): each kind's forms, and the refusals."""

from __future__ import annotations

import pytest

from omnifs.providers.encryption import Encryption, parse

GCS_KEY = "projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k"


@pytest.mark.parametrize(("scheme", "value", "want"), [
    ("s3", "AES256", Encryption("AES256")),
    ("minio", "aws:kms", Encryption("aws:kms")),
    ("s3", "aws:kms:arn:aws:kms:eu-west-1:1:key/abc", Encryption("aws:kms",
                                                                 "arn:aws:kms:eu-west-1:1:key/abc")),
    ("gs", GCS_KEY, Encryption("cmek", GCS_KEY)),
    ("az", "scope1", Encryption("scope", "scope1")),
])
def test_forms(scheme, value, want):
    assert parse(scheme, value) == want


def test_what_s3_sends():
    kms = parse("s3", "aws:kms:k1")
    assert kms.s3_params == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    assert kms.s3_headers == {"x-amz-server-side-encryption": "aws:kms",
                              "x-amz-server-side-encryption-aws-kms-key-id": "k1"}
    assert parse("s3", "AES256").s3_params == {"ServerSideEncryption": "AES256"}


@pytest.mark.parametrize(("scheme", "value", "said"), [
    ("s3", "SSE-S3", 'expected "AES256", "aws:kms" or "aws:kms:KEY-ID", got \'SSE-S3\''),
    ("s3", "aws:kms:", "got 'aws:kms:'"),
    ("s3", True, "got True"),
    ("gs", "my-key", "expected a KMS key name"),
    ("az", "a-b", "an encryption scope name"),
    ("file", "AES256", "file:// stores have no server-side encryption"),
])
def test_refused(scheme, value, said):
    with pytest.raises(ValueError) as e:
        parse(scheme, value)
    assert said in str(e.value)
