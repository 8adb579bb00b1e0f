"""providers.s3.parse_timestamp: the formats S3 answers in, same instants as botocore's parser."""

from __future__ import annotations

import botocore.utils
import pytest

from omnifs.providers.s3 import parse_timestamp


@pytest.mark.parametrize("value", [
    "2026-11-30T07:48:01.000Z",          # XML bodies (ListObjectsV2, CopyObjectResult)
    "2026-11-30T07:48:01Z",
    "2026-11-30T07:48:01.123456+00:00",
    "Mon, 30 Nov 2026 07:48:01 GMT",     # Last-Modified headers (GET, HEAD)
    "1700000000",                        # epoch seconds: botocore's own parser
])
def test_same_instant_as_botocore(value):
    ours = parse_timestamp(value)
    assert ours.tzinfo is not None
    assert ours.timestamp() == botocore.utils.parse_timestamp(value).timestamp()


def test_garbage_is_botocore_s_error():
    with pytest.raises(ValueError):
        parse_timestamp("not a time")
