"""Tier names translated between stores by access class (policy/tiers.py)."""

import pytest

from omnifs.policy.tiers import CLASSES, tier_class, translate

S3 = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
      "DEEP_ARCHIVE")
GCS = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
AZ = ("Hot", "Cool", "Cold", "Archive")
MINIO = ("STANDARD", "REDUCED_REDUNDANCY")


@pytest.mark.parametrize(("tier", "dst", "expected"), [
    ("STANDARD_IA", AZ, "Cool"),
    ("GLACIER_IR", GCS, "COLDLINE"),
    ("DEEP_ARCHIVE", AZ, "Archive"),
    ("Cool", S3, "STANDARD_IA"),
    ("Cold", S3, "GLACIER_IR"),
    ("Archive", GCS, "ARCHIVE"),
    ("NEARLINE", AZ, "Cool"),
    ("Hot", GCS, "STANDARD"),
    ("INTELLIGENT_TIERING", AZ, "Hot"),
])
def test_same_class_across_stores(tier, dst, expected):
    assert translate(tier, dst) == expected


def test_same_name_is_kept_as_the_destination_spells_it():
    assert translate("ONEZONE_IA", S3) == "ONEZONE_IA"  # not folded into STANDARD_IA
    assert translate("cool", AZ) == "Cool"
    assert translate("archive", GCS) == "ARCHIVE"


def test_missing_class_falls_back_to_a_warmer_one_never_colder():
    assert translate("COLDLINE", MINIO) == "STANDARD"  # cold -> hot: readable at once
    assert translate("Cold", ("Hot", "Archive")) == "Hot"
    assert translate("Hot", ("Cool", "Archive")) is None  # never colder than asked


def test_unknown_names_and_stores_without_tiers():
    assert translate("WEIRD", AZ) is None
    assert translate("STANDARD", ()) is None
    assert tier_class("weird") is None


def test_every_tier_a_provider_offers_has_a_class():
    from omnifs.providers.azure import TIERS as az
    from omnifs.providers.gcs import TIERS as gs
    from omnifs.providers.minio import MinioProvider
    from omnifs.providers.s3 import S3Provider

    for tiers in (az, gs, S3Provider.capabilities.tiers, MinioProvider.capabilities.tiers):
        for t in tiers:
            assert tier_class(t) in CLASSES, t
