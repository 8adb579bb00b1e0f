"""Fixtures the integration tests share."""

import pytest

from omnifs.providers import open_provider
from tests.cli import write_config


@pytest.fixture
def pair(request, make_settings, tmp_path):
    """(config naming them src and dst, src provider, dst provider) for one
    (src kind, dst kind) given by indirect parametrization."""
    src_kind, dst_kind = request.param
    a, b = make_settings(src_kind, name="src"), make_settings(dst_kind, name="dst")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    pa, pb = open_provider(a), open_provider(b)
    yield cfg, pa, pb
    pa.close()
    pb.close()
