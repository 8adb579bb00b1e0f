"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from omnifs.catalog import Catalog


@pytest.fixture
def cat(tmp_path):
    """A fresh catalog in the test's own directory."""
    c = Catalog(tmp_path / "c.db")
    yield c
    c.close()
