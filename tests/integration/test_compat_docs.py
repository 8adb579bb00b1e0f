"""docs/compat.md is what scripts/compat_docs.py generates now (declared cells + probes)."""

from __future__ import annotations

from tests import servers as S
from tests.compat_docs import generate


def test_committed_compat_page_is_up_to_date(servers):
    committed = (S.ROOT / "docs" / "compat.md").read_text()
    fresh = generate(servers)
    assert "Probes that could not run" not in fresh
    assert fresh == committed, ("docs/compat.md is out of date: run "
                                ".venv/bin/python scripts/compat_docs.py and commit it")
