"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from omnifs.catalog import Catalog


@pytest.fixture
def cat(catalog_target):
    """A fresh catalog, on SQLite and on PostgreSQL (tests/conftest.py catalog_target)."""
    c = Catalog(catalog_target)
    yield c
    c.close()
