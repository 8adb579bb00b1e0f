"""Conditional writes (``if_absent`` / ``if_match``) on every kind, against real servers.

A store whose ``conditional_writes`` capability is on refuses a write whose
precondition does not hold with PreconditionFailed and leaves the object as
it was; one where it is off (the GCS emulator, which ignores
ifGenerationMatch: ``capabilities.QUIRKS``) says so, and callers take the
catalog-side check (omnifs/fallbacks.py). Single PUTs and multipart / block /
resumable uploads both.
"""

from __future__ import annotations

import io
import os

import pytest

from omnifs.providers import PreconditionFailed
from omnifs.providers.capabilities import QUIRKS

MiB = 1024 * 1024


def _honours(provider) -> bool:
    return provider.capabilities.conditional_writes


def test_the_gcs_emulator_is_known_to_ignore_preconditions(make_provider):
    p = make_provider("gs")
    assert not p.capabilities.conditional_writes
    assert any(q.store == "gcp-storage-emulator" and q.feature == "conditional_writes"
               for q in QUIRKS)
    # what the quirk says: a create-only upload over an existing object overwrites it
    p.write_bytes("k", b"one")
    p.write_bytes("k", b"two", if_absent=True)
    assert p.read_bytes("k") == b"two"


@pytest.mark.parametrize("size", [5, 17 * MiB], ids=["put", "parts"])
def test_if_absent_and_if_match(provider, kind, size):
    if not _honours(provider):
        assert kind == "gs"
        return
    if size > 5 and kind == "az":
        # Azure stages blocks above its threshold; make the big case cross it
        size = provider.capabilities.multipart_threshold + 1
    data = os.urandom(size)
    first = provider.write("obj", io.BytesIO(data), size, {"n": "1"}, if_absent=True)
    token = provider.match_token(provider.head("obj"))
    assert token is not None and provider.match_token(first) == token
    with pytest.raises(PreconditionFailed, match="already exists"):
        provider.write("obj", io.BytesIO(b"x" * size), size, if_absent=True)
    assert provider.read_bytes("obj") == data
    # someone else rewrites it: our token no longer matches
    provider.write_bytes("obj", b"theirs")
    with pytest.raises(PreconditionFailed, match="changed"):
        provider.write("obj", io.BytesIO(b"y" * size), size, if_match=token)
    assert provider.read_bytes("obj") == b"theirs"
    theirs = provider.match_token(provider.head("obj"))
    out = provider.write("obj", io.BytesIO(data), size, {"n": "2"}, if_match=theirs)
    assert provider.read_bytes("obj") == data
    assert provider.head("obj").metadata["n"] == "2"
    assert provider.match_token(out) == provider.match_token(provider.head("obj"))
    # a match on an object that is gone fails too
    provider.delete("obj")
    with pytest.raises(PreconditionFailed):
        provider.write_bytes("obj", b"z", if_match=theirs)
    assert not provider.exists("obj")


def test_both_conditions_at_once_are_refused(make_provider):
    from omnifs.providers import InvalidInput

    p = make_provider("file")
    with pytest.raises(InvalidInput, match="either"):
        p.write_bytes("k", b"x", if_absent=True, if_match="e")


def test_a_refused_local_write_leaves_no_temp_file(make_provider):
    p = make_provider("file")
    p.write_bytes("d/k", b"one")
    with pytest.raises(PreconditionFailed):
        p.write_bytes("d/k", b"two", if_absent=True)
    with pytest.raises(PreconditionFailed):
        p.write_bytes("d/k", b"two", if_match="0-0-0")
    assert sorted(os.listdir(os.path.join(p.root, "d"))) == ["k"]
