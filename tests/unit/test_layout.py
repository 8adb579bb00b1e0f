"""Keys for paths: the fallback key of a path too long for a store, and its path metadata."""

from __future__ import annotations

import pytest

from omnifs.layout import (
    LONG_PREFIX,
    META_PATH,
    SIDECAR_SUFFIX,
    copy_object_to,
    delete_object,
    long_key,
    long_objects,
    object_key,
    placed_meta,
    write_sidecar,
)
from omnifs.providers import InvalidInput, ProviderSettings
from omnifs.providers.local import LocalProvider
from omnifs.providers.s3 import S3Provider


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    return LocalProvider(ProviderSettings(name="l", uri=f"file://{root}"))


def test_the_length_error_counts_the_prefix():
    p = S3Provider(ProviderSettings(name="s", uri="s3://bucket/ns", endpoint="http://127.0.0.1:9"))
    assert p.key_limit() == 1024 - len("ns/")
    key = "k" * 1022  # 1,025 bytes with "ns/"
    with pytest.raises(InvalidInput) as info:
        p.object_name(key)
    assert "1025 bytes long with its prefix; this store allows 1024" in str(info.value)
    assert object_key(p, "k" * 1021) == "k" * 1021
    assert object_key(p, key) == long_key(key)
    assert object_key(p, "/" + key) == long_key(key)


def test_names_that_are_not_utf8_get_the_fallback_key(store):
    path = "dir/caf\udce9"  # a Latin-1 byte, as os.fsdecode gives it
    assert object_key(store, path) == long_key(path)


def test_a_long_path_is_named_in_metadata_or_a_sidecar(store):
    short_long = "d" * 300  # longer than no store allows, but the path fits metadata
    key = long_key(short_long)
    assert key.startswith(LONG_PREFIX)
    named, sidecar = placed_meta(store, key, short_long, {"omnifs_mtime": "1.0"})
    assert sidecar is None and named[META_PATH] == short_long
    very = "/".join(["e" * 250] * 12) + "/caf\udce9"
    vkey = long_key(very)
    meta, sidecar = placed_meta(store, vkey, very, {"omnifs_mtime": "1.0"})
    assert META_PATH not in meta and sidecar == very.encode("utf-8", "surrogateescape")
    # a plain key never carries a path
    assert placed_meta(store, "a/b", "a/b", {META_PATH: "x"}) == ({}, None)

    store.write_bytes(key, b"one", named)
    store.write_bytes(vkey, b"two", {"omnifs_mtime": "1.0"})
    write_sidecar(store, vkey, sidecar)
    assert sorted(p for _, p in long_objects(store)) == sorted([short_long, very])

    copy_object_to(store, vkey, key, short_long)
    assert store.head(key).metadata[META_PATH] == short_long
    delete_object(store, vkey)
    assert not store.exists(vkey) and not store.exists(vkey + SIDECAR_SUFFIX)
    assert [p for _, p in long_objects(store)] == [short_long]
