"""What the shared conformance suite cannot see in the GCS and Azure providers.

Block staging and resumable chunking only start above a threshold that the
conformance objects never cross, so these tests shrink the part sizes
through the providers' own options; the rest covers Azure's metadata-name
escaping, archived blobs, and the storage class GCS is sent (the emulator
keeps STANDARD whatever it is told, shared/SERVERS.md).
"""

from __future__ import annotations

import hashlib
import io
import random

import pytest

from omnifs.providers import Archived, NotFound, azlist, open_provider
from omnifs.providers.azapi import (
    decode_meta_name,
    decode_metadata,
    encode_meta_name,
    encode_metadata,
)
from tests import servers as S
from tests.fastpath import check_readinto, check_short_body_unavailable

KiB = 1024
MiB = 1024 * KiB


class Trickle(io.RawIOBase):
    """A pipe-like stream: short reads of odd sizes, no seek, no length."""

    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._rng = random.Random(3)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n is None or n < 0:
            n = len(self._data)
        n = min(n, self._rng.randint(1, 300 * KiB))
        out, self._data = bytes(self._data[:n]), self._data[n:]
        return out


@pytest.mark.parametrize("name", [
    "plain", "omnifs_sha256", "a-b", "_x2d_", "x_xy", "1abc", "dots.and spaces", "Ü-ber", "_",
])
def test_azure_metadata_names_round_trip(name):
    enc = encode_meta_name(name)
    assert enc.isidentifier() and enc.isascii()
    assert decode_meta_name(enc) == name


def test_azure_metadata_values_round_trip():
    meta = {"a": "plain", "b": "ünï", "c": " padded ", "d": "=?utf-8?b?literal?="}
    assert decode_metadata(encode_metadata(meta)) == meta


def _provider(kind, servers, **extra):
    bucket = S.unique_bucket()
    S.create_bucket(kind, servers[kind].endpoint, bucket)
    settings = S.settings_for(kind, servers[kind].endpoint, bucket, prefix="pre")
    settings.extra.update(extra)
    return open_provider(settings)


@pytest.mark.parametrize("size_known", [True, False], ids=["size", "nosize"])
def test_azure_staged_blocks(servers, size_known):
    p = _provider("az", servers, multipart_threshold=MiB, part_size=256 * KiB, max_concurrency=3)
    try:
        data = random.Random(1).randbytes(3 * MiB + 12345)
        meta = {"omnifs_sha256": hashlib.sha256(data).hexdigest(), "odd-name": "v"}
        info = p.write("blocks.bin", Trickle(data), len(data) if size_known else None, meta,
                       "application/x-test")
        assert info.size == len(data)
        # the write's answer is the blob's MD5, not the block list's (Put Block List returns that)
        assert info.checksums["md5"] == hashlib.md5(data).hexdigest()
        head = p.head("blocks.bin")
        assert head.size == len(data) and head.metadata == meta
        assert head.checksums["md5"] == hashlib.md5(data).hexdigest()
        assert head.content_type == "application/x-test"
        assert p.read_bytes("blocks.bin") == data
        assert p.read_bytes("blocks.bin", MiB - 3, 2 * MiB + 5) == data[MiB - 3:2 * MiB + 5]
    finally:
        p.close()


def test_azure_staged_blocks_without_md5(servers):
    """content_md5 = false: no whole-content MD5 on staged uploads, and none claimed."""
    p = _provider("az", servers, multipart_threshold=MiB, part_size=256 * KiB,
                  content_md5=False)
    try:
        data = random.Random(4).randbytes(2 * MiB + 1)
        assert "md5" not in p.write("nomd5.bin", io.BytesIO(data), len(data)).checksums
        assert "md5" not in p.head("nomd5.bin").checksums
        assert p.read_bytes("nomd5.bin") == data
        small = p.write_bytes("small.bin", b"abc")  # one Put Blob: Azure computes it anyway
        assert small.checksums["md5"] == hashlib.md5(b"abc").hexdigest()
    finally:
        p.close()


def test_azure_archived_blob_is_a_clear_error(servers):
    p = _provider("az", servers)
    try:
        p.write_bytes("cold", b"x" * 100)
        p.set_tier("cold", "Archive")
        assert p.head("cold").tier == "Archive"
        with pytest.raises(Archived, match="archived"):
            p.read_bytes("cold")
    finally:
        p.close()


def test_azure_copy_replaces_metadata_with_empty(servers):
    p = _provider("az", servers)
    try:
        p.write_bytes("src", b"abc", {"k": "v"})
        assert p.copy("src", "dst", {}).metadata == {}
        assert p.head("dst").metadata == {}
        with pytest.raises(NotFound):
            p.copy("missing", "dst2")
    finally:
        p.close()


@pytest.mark.parametrize("size_known", [True, False], ids=["size", "nosize"])
def test_gcs_resumable_chunks(servers, size_known):
    p = _provider("gs", servers, part_size=256 * KiB)
    try:
        data = random.Random(2).randbytes(9 * MiB + 777)  # above the SDK's 8 MiB one-shot limit
        info = p.write("resumable.bin", Trickle(data), len(data) if size_known else None,
                       {"k": "v"})
        assert info.size == len(data)
        head = p.head("resumable.bin")
        assert head.checksums["md5"] == hashlib.md5(data).hexdigest()
        assert head.metadata == {"k": "v"}
        assert p.read_bytes("resumable.bin") == data
        copied = p.copy("resumable.bin", "copy.bin")
        assert copied.size == len(data) and copied.metadata == {"k": "v"}
    finally:
        p.close()


def test_gcs_set_tier_is_sent(servers):
    """The emulator keeps STANDARD, so check what the provider sends."""
    p = _provider("gs", servers)
    try:
        p.write_bytes("t", b"data")
        session = p.client._http
        sent: list[bytes] = []
        original = session.request

        def spy(method, url, *args, **kwargs):
            sent.append(kwargs.get("data") or b"")
            return original(method, url, *args, **kwargs)

        session.request = spy
        try:
            p.set_tier("t", "COLDLINE")
        finally:
            session.request = original
        assert any(b"COLDLINE" in (s if isinstance(s, bytes) else str(s).encode()) for s in sent)
        assert p.head("t").tier in ("COLDLINE", "STANDARD")
    finally:
        p.close()


@pytest.mark.parametrize("key", ["plain", "dir/ünïcødé ☃ name.bin", "a+b=c&d%20e~f",
                                 "sp ace/(1)[2]{3}!$'*,;:@"])
def test_azure_fast_path_serves_gets_and_single_puts(servers, monkeypatch, key):
    """Get Blob and Put Blob go out SAS-authorized without the SDK pipeline.

    As the SDK would send them.
    """
    from azure.storage.blob import BlobClient

    p = _provider("az", servers)
    try:
        assert p._wire is not None

        def refuse(*args, **kwargs):
            raise AssertionError("the fast path should have answered")

        monkeypatch.setattr(BlobClient, "upload_blob", refuse)
        monkeypatch.setattr(BlobClient, "download_blob", refuse)
        meta = {"color": "blue", "Odd-Name": "välue ☃"}
        out = p.write_bytes(key, b"0123456789", meta, "text/plain")
        assert out.etag and out.checksums["md5"] == hashlib.md5(b"0123456789").hexdigest()
        with p.open_read(key) as f:
            assert f.read() == b"0123456789"
            assert f.info.metadata == meta and f.info.content_type == "text/plain"
            assert f.info.size == 10 and f.info.etag == out.etag
            assert f.info.checksums["md5"] == out.checksums["md5"]
        with p.open_read(key, 3, 7) as f:
            assert f.read() == b"3456" and f.info.size == 10
        monkeypatch.undo()
        head = p.head(key)  # what the SDK (another tool) sees
        assert head.metadata == meta and head.content_type == "text/plain"
        with pytest.raises(NotFound, match="no such object"):
            p.open_read(key + ".missing")
    finally:
        p.close()


def test_azure_fast_path_hands_unusual_answers_to_the_sdk(servers):
    p = _provider("az", servers)
    try:
        p.write_bytes("k", b"abc")
        with p.open_read("k", 10) as f:  # 416 on the fast path: the SDK's answer is "nothing"
            assert f.read() == b""
        p.set_tier("k", "Archive")  # 409 on the fast path: the SDK's clear error
        with pytest.raises(Archived, match="archived"):
            p.read_bytes("k")
    finally:
        p.close()
    gone = open_provider(S.settings_for("az", servers["az"].endpoint, "no-such-container"))
    try:
        with pytest.raises(NotFound, match="container"):
            gone.open_read("k")
        with pytest.raises(NotFound, match="container"):
            gone.write_bytes("k", b"x")
    finally:
        gone.close()


def test_azure_listing_read_from_its_xml_says_what_the_sdks_models_say(servers, monkeypatch):
    """providers/azlist.py parses List Blobs itself: every field equals the SDK listing's
    (size, mtime, etag, md5, decoded metadata, tier, content type), page after page, flat
    and one level, odd names included; metadata named like the answer's own elements is
    metadata, not a blob."""
    monkeypatch.setattr(azlist, "PAGE_SIZE", 2)
    sent = []
    request = azlist.request
    monkeypatch.setattr(azlist, "request", lambda *a: sent.append(a[2]) or request(*a))
    p = _provider("az", servers)
    try:
        keys = ["a/1", "a/2 x+y", "a/ü&<>'\"", "a/sub/z", "b", "c/d/e", "m", "a"]
        for i, k in enumerate(keys):
            p.write_bytes(k, k.encode() * i, metadata={"omnifs-sha256": f"{i:064x}",
                                                       "Odd Name": "vä lue"} if i % 2 else None)
        p.set_tier("b", "Cool")
        p.container.get_blob_client(p.object_name("n")).upload_blob(b"x", metadata={
            "Blob": "v", "BlobPrefix": "w", "NextMarker": "z", "Name": "q"})
        most = 0  # requests for one listing: small pages make several
        for prefix in ("", "a/", "a", "c/d/", "nothing/"):
            for recursive in (True, False):
                sent.clear()
                ours = sorted(p.list(prefix, recursive=recursive), key=lambda i: i.key)
                sdk = sorted(p._sdk_list(p.object_name(prefix), recursive, None),
                             key=lambda i: i.key)
                assert ours == sdk, (prefix, recursive)
                most = max(most, len(sent))
        assert most >= 3
        (n,) = [i for i in p.list("n") if i.key == "n"]
        assert n.metadata == {"Blob": "v", "BlobPrefix": "w", "NextMarker": "z", "Name": "q"}
    finally:
        p.close()


def test_azure_fast_path_reads_into_the_callers_buffer(servers, monkeypatch):
    """The mount's cold reads fill cache blocks with readinto.

    No intermediate copies, same bytes.
    """
    from azure.storage.blob import BlobClient

    p = _provider("az", servers)
    try:
        data = random.randbytes(3 * 1024 * 1024 + 7)
        p.write_bytes("big", data)
        monkeypatch.setattr(BlobClient, "download_blob", lambda *a, **kw: pytest.fail("SDK used"))
        check_readinto(p, "big", data)
        assert p.read_bytes("big") == data  # the connection went back to the pool in order
    finally:
        p.close()


def test_azure_fast_path_body_shorter_than_its_length_is_unavailable():
    """A server that closes early: the reader gets Unavailable, never a short block as whole."""
    with S.short_body_server() as endpoint:
        p = open_provider(S.settings_for("az", f"{endpoint}/devstoreaccount1", "ctr"))
        try:
            assert p._wire is not None
            check_short_body_unavailable(p, "k")
        finally:
            p.close()


@pytest.mark.parametrize("key", ["plain", "dir/ünïcødé ☃ name.bin", "a+b=c&d%20e~f?x#y"])
def test_gcs_fast_path_serves_small_uploads(servers, monkeypatch, key):
    """A small write goes out as one multipart request past the SDK's upload layer
    (providers/gcswire.py), and the SDK (another tool) sees what it would have sent."""
    from google.cloud.storage import Blob

    p = _provider("gs", servers)
    try:
        def refuse(*args, **kwargs):
            raise AssertionError("the fast path should have answered")

        monkeypatch.setattr(Blob, "upload_from_file", refuse)
        meta = {"color": "blue", "omnifs-sha256": "ab" * 32}
        data = b"0123456789" * 1000
        out = p.write(key, io.BytesIO(data), len(data), meta, "text/plain")
        assert out.size == len(data) and out.etag and out.metadata == meta
        assert out.checksums["md5"] == hashlib.md5(data).hexdigest()
        assert p.write_bytes(key + ".empty", b"").size == 0
        monkeypatch.undo()
        head = p.head(key)
        assert head.metadata == meta and head.content_type == "text/plain"
        assert head.checksums == out.checksums and p.read_bytes(key) == data
        assert p.read_bytes(key + ".empty") == b""
    finally:
        p.close()


def test_gcs_fast_path_hands_failures_to_the_sdk(servers):
    """A missing bucket fails the fast path; the SDK's answer is the error the user sees."""
    gone = open_provider(S.settings_for("gs", servers["gs"].endpoint, "no-such-bucket-x"))
    try:
        with pytest.raises(NotFound, match="bucket"):
            gone.write_bytes("k", b"x")
    finally:
        gone.close()
