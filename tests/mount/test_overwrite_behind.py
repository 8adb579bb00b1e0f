"""A file's object changed behind the mount's back, between its read and its publish.

On every kind: with the store's conditional write (S3 and MinIO on moto,
Azurite, file://) or, where the store has none (the GCS emulator ignores
ifGenerationMatch; any store whose ``disable`` key names ``conditional_writes``),
the catalog-side check, the mount notices; their version is kept as
``NAME.conflict-PROVIDER-STAMP`` and ours goes to the key. Nothing is
overwritten silently and no byte is lost (omnifs/conflicts.py). Which of the
two refused the write is read from the mount's own store counters (its last
sample, written when it stops): a conditional write the store refused is a
put error; the catalog-side check refuses before any put.
"""

from __future__ import annotations

import json
import os

import pytest

from omnifs.providers import Provider

from .conftest import Mounted


def _conflicts(m: Mounted, name: str) -> list[str]:
    return sorted(n for n in os.listdir(m.mp) if n.startswith(f"{name}.conflict-"))


def _mount(make_mount, kind: str, disable: list[str]) -> Mounted:
    """A mount on one store of ``kind``, its ``disable`` key as given."""
    return make_mount((kind,), copies=1, extra={f"{kind}0": {"weight": 2, "disable": disable}})


def _put_errors(m: Mounted, name: str) -> float:
    """Puts to ``name`` the store answered with an error, as the mount counted them: its
    last sample of the store counters, written when it stops (omnifs/metrics/samples.py)."""
    m.umount()
    [sampled] = (m.root / "cache" / "metrics").glob("mount-*.jsonl")
    last = json.loads(sampled.read_text().splitlines()[-1])
    return last["stores"][name]["put"]["errors"]


@pytest.mark.parametrize("kind", ["s3", "minio", "gs", "az", "file"])
def test_a_change_behind_our_back_is_kept_beside_ours(make_mount, kind):
    m = _mount(make_mount, kind, [])
    store = m.provider(f"{kind}0")
    conditional = store.capabilities.conditional_writes
    assert conditional == (kind != "gs")  # the emulator's quirk: the fallback applies
    _keeps_theirs(m, store, kind)
    assert (_put_errors(m, f"{kind}0") > 0) == conditional  # the store refused


@pytest.mark.parametrize("kind", ["s3", "minio", "az", "file"])
def test_conditional_writes_disabled_by_config_take_the_catalog_side_check(make_mount, kind):
    """The forced fallback: the store could refuse the write, but the mount must not ask."""
    m = _mount(make_mount, kind, ["conditional_writes"])
    assert m.provider(f"{kind}0").capabilities.conditional_writes  # the store has them
    _keeps_theirs(m, m.provider(f"{kind}0"), kind)
    assert _put_errors(m, f"{kind}0") == 0  # every refusal was the catalog-side check


def _keeps_theirs(m: Mounted, store: Provider, kind: str) -> None:
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


def test_a_file_changed_again_right_after_its_close_starts_from_its_own_bytes(make_mount):
    """Reopened to change before its blocks reached the cache (mountfs/written.py), a file
    starts from its just-written staging file, not from the store, where someone else
    wrote meanwhile: theirs is kept beside ours, as above, and ours holds every byte."""
    m = _mount(make_mount, "file", [])
    store = m.provider("file0")
    data = os.urandom(48 * 1024 * 1024)  # hashing it into the cache takes a while
    (m.mp / "big").write_bytes(data)
    store.write_bytes("big", b"theirs, written outside omnifs\n")
    with open(m.mp / "big", "r+b") as f:
        f.write(b"OURS")
    ours = b"OURS" + data[4:]
    assert (m.mp / "big").read_bytes() == ours
    assert store.read_bytes("big") == ours
    [kept] = _conflicts(m, "big")
    assert (m.mp / kept).read_bytes() == b"theirs, written outside omnifs\n"
