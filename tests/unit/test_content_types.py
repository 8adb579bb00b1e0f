"""The one decision of an upload's content type (providers/base.py), without a store."""

from __future__ import annotations

import pytest

from omnifs.providers.base import DEFAULT_CONTENT_TYPE, content_type_for, guess_content_type


@pytest.mark.parametrize(("key", "expected"), [
    ("a/page.html", "text/html"),
    ("deep/dir.d/style.css", "text/css"),
    ("report.PDF", "application/pdf"),
    ("backup.tar.gz", "application/gzip"),  # the bytes are gzip, not a tar
    ("log.xz", "application/x-xz"),
    ("README", DEFAULT_CONTENT_TYPE),
    (".bashrc", DEFAULT_CONTENT_TYPE),
    ("a.no-such-extension", DEFAULT_CONTENT_TYPE),
    ("dir.html/file", DEFAULT_CONTENT_TYPE),  # only the last part of the key counts
    ("data:x.html", "text/html"),  # a key, never read as a URL
    ("http:x.css", "text/css"),
])
def test_the_type_comes_from_the_name(key, expected):
    assert content_type_for(key) == expected


def test_a_given_type_wins_and_unknown_names_guess_nothing():
    assert content_type_for("a/page.html", "text/plain") == "text/plain"
    assert guess_content_type("README") is None
    assert guess_content_type("x/y.json") == "application/json"
