"""A file's object changed behind the mount's back, between its read and its publish.

On every kind: with the store's conditional write (S3 and MinIO on moto,
Azurite, file://) or, where the store has none (the GCS emulator ignores
ifGenerationMatch), the catalog-side check, the mount notices; their version
is kept as ``NAME.conflict-PROVIDER-STAMP`` and ours goes to the key. Nothing
is overwritten silently and no byte is lost (omnifs/conflicts.py).
"""

from __future__ import annotations

import os

import pytest

from .conftest import Mounted


def _conflicts(m: Mounted, name: str) -> list[str]:
    return sorted(n for n in os.listdir(m.mp) if n.startswith(f"{name}.conflict-"))


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az", "file"])
def test_a_change_behind_our_back_is_kept_beside_ours(make_mount, kind):
    m = make_mount((kind,), copies=1)
    store = m.provider(f"{kind}0")
    conditional = store.capabilities.conditional_writes
    assert conditional == (kind != "gs")  # the emulator's quirk: the fallback applies
    (m.mp / "f").write_bytes(b"ours, version 1\n")
    assert store.read_bytes("f") == b"ours, version 1\n"

    with open(m.mp / "f", "r+b") as f:  # read, change, and before close ...
        assert f.read() == b"ours, version 1\n"
        f.seek(0)
        f.write(b"OURS, version 2\n")
        store.write_bytes("f", b"theirs, written outside omnifs\n")  # ... someone else
    assert (m.mp / "f").read_bytes() == b"OURS, version 2\n"
    assert store.read_bytes("f") == b"OURS, version 2\n"
    [kept] = _conflicts(m, "f")
    assert kept.startswith(f"f.conflict-{kind}0-")
    assert (m.mp / kept).read_bytes() == b"theirs, written outside omnifs\n"
    assert store.read_bytes(kept) == b"theirs, written outside omnifs\n"

    # a first object: someone created the key before our file's first upload
    store.write_bytes("g", b"theirs first\n")
    (m.mp / "g").write_bytes(b"ours first\n")
    assert store.read_bytes("g") == b"ours first\n"
    [kept] = _conflicts(m, "g")
    assert (m.mp / kept).read_bytes() == b"theirs first\n"

    # omnifs's own leftovers are no conflict: a deleted file's object, its delete still queued
    (m.mp / "h").write_bytes(b"one\n")
    (m.mp / "h").unlink()
    (m.mp / "h").write_bytes(b"two\n")
    assert store.read_bytes("h") == b"two\n"
    assert _conflicts(m, "h") == []
    # and a plain overwrite through the mount meets the precondition it expects
    (m.mp / "f").write_bytes(b"OURS, version 3\n")
    assert store.read_bytes("f") == b"OURS, version 3\n"
    assert len(_conflicts(m, "f")) == 1
