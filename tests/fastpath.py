"""Checks every provider's GET fast path must pass (S3's and Azure's, providers/streams.py)."""

from __future__ import annotations

import pytest

from omnifs.providers import Unavailable


def check_readinto(p, key: str, data: bytes) -> None:
    """Whole and ranged reads with ``readinto`` in odd-sized pieces give the stored bytes."""
    for start, end in ((0, None), (5, len(data) - 3)):
        want = data[start:end]
        buf = bytearray(len(want) + 10)
        view, got = memoryview(buf), 0
        with p.open_read(key, start, end) as f:
            while n := f.readinto(view[got:got + 1_000_003]):
                got += n
        assert got == len(want) and bytes(buf[:got]) == want


def check_short_body_unavailable(p, key: str) -> None:
    """A body that ends before its Content-Length is Unavailable, never a short read as whole."""
    f = p.open_read(key)
    buf = bytearray(200)
    got = f.readinto(buf)
    with pytest.raises(Unavailable):
        while f.readinto(memoryview(buf)[got:]):
            pass
    f.close()
