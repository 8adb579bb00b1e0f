"""The contract every provider honours, run against every kind on a real server.

Like rclone's fstests: one suite, every backend, skipping only by what
``capabilities`` says a store lacks, and known server quirks kept as data in
``QUIRKS`` below (never as scattered ``if kind == ...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from omnifs.providers import (
    META_MTIME,
    META_SHA256,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProviderSettings,
    Unavailable,
    open_provider,
)
from omnifs.providers.base import read_info
from tests import servers as S

MiB = 1024 * 1024

#: what the local stand-in servers cannot do, by kind, with the reason
QUIRKS: dict[str, dict[str, str]] = {
    "gs": {
        "tier_sticks": "gcp-storage-emulator accepts a storage-class change but keeps STANDARD",
        "checks_credentials": "gcp-storage-emulator serves anonymous clients only",
    },
    "s3": {"checks_credentials": "moto's server accepts any key and secret by default"},
    "minio": {"checks_credentials": "moto's server accepts any key and secret by default"},
    "file": {
        "network": "a local directory has no server to lose",
        "checks_credentials": "a local directory has no credentials (and tests run as root)",
    },
}


def quirk(kind: str, name: str) -> str | None:
    return QUIRKS.get(kind, {}).get(name)


class PipeStream:
    """A non-seekable stream with short reads, like a pipe or a socket.

    Providers must not assume ``read(n)`` returns ``n`` bytes, nor that they
    can seek or ask for the length.
    """

    def __init__(self, data: bytes, step: int = MiB + 4099):
        self._view = memoryview(data)
        self._pos = 0
        self._step = step

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._view) - self._pos
        n = min(n, self._step)
        out = bytes(self._view[self._pos:self._pos + n])
        self._pos += len(out)
        return out

    def readable(self) -> bool:
        return True


def read_all(provider, key: str, start: int = 0, end: int | None = None) -> bytes:
    with provider.open_read(key, start, end) as f:
        chunks = []
        while True:
            chunk = f.read(MiB)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


# -- sizes and bytes ------------------------------------------------------

def test_empty_and_one_byte(provider):
    provider.write_bytes("empty", b"")
    provider.write_bytes("one", b"x")
    assert provider.head("empty").size == 0
    assert provider.head("one").size == 1
    assert provider.read_bytes("empty") == b""
    assert provider.read_bytes("one") == b"x"
    assert provider.read_bytes("one", 0, 1) == b"x"
    assert provider.read_bytes("one", 1) == b""
    assert provider.read_bytes("empty", 0, 10) == b""
    assert sorted(o.key for o in provider.list()) == ["empty", "one"]


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return random.Random(64).randbytes(64 * MiB)


@pytest.mark.parametrize("size_known", [True, False], ids=["size", "nosize"])
def test_64mib_stream_in_parts(provider, big_data, size_known):
    data = big_data
    size = len(data) if size_known else None
    info = provider.write("big/object.bin", PipeStream(data), size, {"k": "v"})
    assert info.key == "big/object.bin"
    assert provider.head("big/object.bin").size == len(data)
    # the parts' upload carries the type guessed from the name, like a single PUT
    provider.write("big/parts.json", PipeStream(data[:20 * MiB]), 20 * MiB if size_known else None)
    assert provider.head("big/parts.json").content_type == "application/json"

    got = read_all(provider, "big/object.bin")
    assert len(got) == len(data)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()

    n = len(data)
    mid = n // 2 - 12345
    assert provider.read_bytes("big/object.bin", 0, 1) == data[:1]
    assert provider.read_bytes("big/object.bin", n - 1) == data[-1:]
    assert provider.read_bytes("big/object.bin", n - 1, n) == data[-1:]
    assert provider.read_bytes("big/object.bin", mid, mid + MiB + 7) == data[mid:mid + MiB + 7]
    assert provider.read_bytes("big/object.bin", n - 5, n + 100) == data[-5:]  # clipped
    assert provider.read_bytes("big/object.bin", n) == b""
    assert provider.read_bytes("big/object.bin", n + 10, n + 20) == b""


# -- names ----------------------------------------------------------------

ODD_KEYS = [
    "with space.txt",
    "  leading and trailing spaces  ",
    "ünïcödé/日本語のファイル.txt",
    "emoji 🚀.bin",
    "plus+sign+file",
    "percent%20not-decoded%2F",
    "hash#tag#",
    "deep/a/b/c/d/e/f/g/h/i/j/leaf.txt",
    "mixed dir/+%#/ü x",
]


def test_odd_keys_round_trip(provider):
    for i, key in enumerate(ODD_KEYS):
        provider.write_bytes(key, f"payload {i}".encode(), {"n": str(i)})
    for i, key in enumerate(ODD_KEYS):
        info = provider.head(key)
        assert info.key == key
        assert info.size == len(f"payload {i}")
        assert info.metadata.get("n") == str(i)
        assert provider.read_bytes(key) == f"payload {i}".encode()
    assert sorted(o.key for o in provider.list()) == sorted(ODD_KEYS)
    # a prefix containing the odd characters filters exactly
    assert [o.key for o in provider.list("mixed dir/+%#/")] == ["mixed dir/+%#/ü x"]
    assert [o.key for o in provider.list("ünïcödé/")] == ["ünïcödé/日本語のファイル.txt"]
    for key in ODD_KEYS:
        provider.delete(key)
    assert list(provider.list()) == []


# -- metadata -------------------------------------------------------------

def test_metadata_round_trips_through_head_and_list(provider):
    data = b"hello metadata"
    sha = hashlib.sha256(data).hexdigest()
    meta = {META_SHA256: sha, META_MTIME: "1700000000.25", "owner": "alice", "x_1": "a b+c"}
    provider.write_bytes("m/file.txt", data, meta, content_type="text/plain")

    info = provider.head("m/file.txt")
    for k, v in meta.items():
        assert info.metadata.get(k) == v, k
    assert info.sha256 == sha
    assert info.mtime == 1700000000.25
    assert info.size == len(data)
    assert info.content_type in ("text/plain", None) or info.content_type.startswith("text/plain")

    (listed,) = [o for o in provider.list("m/") if o.key == "m/file.txt"]
    assert listed.size == len(data)
    for k, v in meta.items():
        assert listed.metadata.get(k) == v, k
    assert listed.sha256 == sha
    assert listed.mtime == 1700000000.25
    assert listed.metadata_known


def test_list_without_metadata_says_what_it_left_out(provider):
    """``list(metadata=False)``: same objects and sizes; metadata either known or marked unknown."""
    meta = {META_SHA256: "ab" * 32, "owner": "bob"}
    provider.write_bytes("lm/a", b"aaa", meta, content_type="text/plain")
    provider.write_bytes("lm/b", b"bbbbb", {})
    listed = {o.key: o for o in provider.list("lm/", metadata=False)}
    assert {k: o.size for k, o in listed.items()} == {"lm/a": 3, "lm/b": 5}
    for o in listed.values():
        if o.metadata_known:
            assert o.metadata == provider.head(o.key).metadata
        else:
            assert o.metadata == {}  # unknown: nothing invented
    assert all(o.metadata_known for o in provider.list("lm/"))


@pytest.mark.parametrize("rng", [(0, None), (2, 7), (9, None), (4, 4), (3, 1000)])
def test_open_read_describes_the_whole_object(provider, rng):
    """The stream's ``info``: the whole object's size and, where known, its metadata."""
    data = b"0123456789abcdef"
    meta = {META_SHA256: hashlib.sha256(data).hexdigest(), META_MTIME: "1700000000.5"}
    provider.write_bytes("ri/obj", data, meta, content_type="text/plain")
    with provider.open_read("ri/obj", *rng) as f:
        got = f.read()
        info = read_info(f)
    start, end = rng
    assert got == data[start:end]
    assert info is not None
    assert info.size == len(data)
    if info.metadata_known:
        assert info.sha256 == meta[META_SHA256]
        assert info.mtime == 1700000000.5
        assert info.content_type is None or info.content_type.startswith("text/plain")
    if info.etag is not None and "md5" in info.checksums:
        assert info.checksums["md5"] == hashlib.md5(data).hexdigest()


# -- content types ----------------------------------------------------------

def test_content_type_is_guessed_from_the_key_name(provider):
    """Browsers and CDNs serve an object by its type: every upload sets one (``mimetypes``)."""
    provider.write_bytes("a/page.html", b"<p>hi</p>")
    provider.write("a/style.css", PipeStream(b"p { }"), None)  # size unknown
    provider.write_bytes("a/blob.no-such-extension", b"?")
    provider.write_bytes("a/README", b"no extension")
    provider.write_bytes("a/given.html", b"x", content_type="text/plain")  # the caller's wins
    assert provider.head("a/page.html").content_type == "text/html"
    assert provider.head("a/style.css").content_type == "text/css"
    assert provider.head("a/blob.no-such-extension").content_type == "application/octet-stream"
    assert provider.head("a/README").content_type == "application/octet-stream"
    assert provider.head("a/given.html").content_type.startswith("text/plain")
    with provider.open_read("a/page.html") as f:
        info = read_info(f)
    if info is not None and info.metadata_known:
        assert info.content_type == "text/html"


def test_server_side_copy_keeps_the_content_type(provider):
    if not provider.capabilities.server_side_copy:
        pytest.skip("capabilities.server_side_copy is False")
    provider.write_bytes("src/page.html", b"<p>hi</p>", {"a": "1"})
    provider.copy("src/page.html", "dst/no-extension")
    provider.copy("src/page.html", "dst/new-meta.bin", metadata={"b": "2"})
    assert provider.head("dst/no-extension").content_type == "text/html"
    assert provider.head("dst/new-meta.bin").content_type == "text/html"


# -- listing --------------------------------------------------------------

N_PAGED = 1100


def test_list_prefix_recursive_and_one_level_paginated(provider):
    keys = [f"p/{i:05d}" for i in range(N_PAGED)]
    extra = ["p/sub/a", "p/sub/deeper/b", "p/sub2/c", "pq/not-under-p", "other/x", "top"]

    def put(key: str) -> None:
        provider.write_bytes(key, key.encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys + extra))

    rec = [o.key for o in provider.list("p/")]
    assert len(rec) == len(set(rec)), "a key was listed twice (pagination)"
    assert sorted(rec) == sorted(keys + ["p/sub/a", "p/sub/deeper/b", "p/sub2/c"])

    one = list(provider.list("p/", recursive=False))
    files = sorted(o.key for o in one if not o.is_prefix)
    dirs = sorted(o.key for o in one if o.is_prefix)
    assert files == keys
    assert dirs == ["p/sub/", "p/sub2/"]
    assert all(o.size == 5 + 2 for o in one if not o.is_prefix)

    # a plain string prefix, not a directory
    assert sorted(o.key for o in provider.list("p/0100")) == [f"p/0100{d}" for d in range(10)]
    assert sorted(o.key for o in provider.list("p")) == sorted(rec + ["pq/not-under-p"])

    top = list(provider.list("", recursive=False))
    assert sorted(o.key for o in top if not o.is_prefix) == ["top"]
    assert sorted(o.key for o in top if o.is_prefix) == ["other/", "p/", "pq/"]

    assert list(provider.list("nothing-here/")) == []
    assert list(provider.list("nothing-here/", recursive=False)) == []


# -- missing keys ---------------------------------------------------------

def test_missing_key(provider):
    with pytest.raises(NotFound):
        provider.head("no/such/key")
    with pytest.raises(NotFound), provider.open_read("no/such/key") as f:
        f.read()
    with pytest.raises(NotFound):
        provider.read_bytes("no/such/key", 5, 10)
    provider.delete("no/such/key")  # idempotent
    assert not provider.exists("no/such/key")

    provider.write_bytes("gone", b"1")
    provider.delete("gone")
    provider.delete("gone")
    with pytest.raises(NotFound):
        provider.head("gone")


# -- copy -----------------------------------------------------------------

def test_server_side_copy_keeps_or_replaces_metadata(provider):
    if not provider.capabilities.server_side_copy:
        pytest.skip("capabilities.server_side_copy is False")
    data = b"copy me" * 1000
    meta = {META_SHA256: hashlib.sha256(data).hexdigest(), META_MTIME: "1600000000.5", "a": "1"}
    provider.write_bytes("src/file", data, meta, content_type="application/x-test")

    info = provider.copy("src/file", "dst/same meta")
    assert info.key == "dst/same meta"
    got = provider.head("dst/same meta")
    assert got.size == len(data)
    for k, v in meta.items():
        assert got.metadata.get(k) == v, k
    assert provider.read_bytes("dst/same meta") == data

    new_meta = {META_SHA256: meta[META_SHA256], "b": "2"}
    provider.copy("src/file", "dst/new meta", metadata=new_meta)
    got = provider.head("dst/new meta")
    assert got.metadata.get("b") == "2"
    assert got.metadata.get(META_SHA256) == meta[META_SHA256]
    assert "a" not in got.metadata and META_MTIME not in got.metadata
    assert provider.read_bytes("dst/new meta") == data
    # the source is untouched
    assert provider.head("src/file").metadata.get("a") == "1"

    with pytest.raises(NotFound):
        provider.copy("src/missing", "dst/x")


def test_copy_onto_itself_replaces_metadata(provider):
    """How a chmod through the mount reaches the objects (the ``attrs`` work item)."""
    data = b"keep these bytes" * 500
    meta = {META_SHA256: hashlib.sha256(data).hexdigest(), "omnifs_mode": "644"}
    provider.write_bytes("self/file", data, meta, content_type="application/x-test")
    provider.copy("self/file", "self/file", metadata={**meta, "omnifs_mode": "600"})
    got = provider.head("self/file")
    assert got.metadata.get("omnifs_mode") == "600"
    assert got.metadata.get(META_SHA256) == meta[META_SHA256]
    assert got.size == len(data)
    assert provider.read_bytes("self/file") == data


# -- tiers ----------------------------------------------------------------

def test_set_tier(provider, kind):
    tiers = provider.capabilities.tiers
    if not tiers:
        pytest.skip(f"{kind}: capabilities.tiers is empty (the store has no tiers)")
    for i, tier in enumerate(tiers):
        key = f"tier/{i}"
        provider.write_bytes(key, b"t" * 100)
        provider.set_tier(key, tier)
        got = provider.head(key).tier
        if quirk(kind, "tier_sticks"):
            # only that the call is accepted: the emulator does not keep the class
            continue
        assert got is not None and got.lower() == tier.lower(), (tier, got)
    with pytest.raises(InvalidInput):
        provider.set_tier("tier/0", "NO_SUCH_TIER")


# -- concurrency ----------------------------------------------------------

def test_16_concurrent_writers(provider):
    blobs = {f"conc/{i:02d}": random.Random(i).randbytes(256 * 1024 + i) for i in range(16)}

    def put(item):
        key, data = item
        return provider.write(key, io.BytesIO(data), len(data), {"i": key[-2:]}).key

    with ThreadPoolExecutor(16) as pool:
        assert sorted(pool.map(put, blobs.items())) == sorted(blobs)
    for key, data in blobs.items():
        assert provider.read_bytes(key) == data
        assert provider.head(key).metadata.get("i") == key[-2:]
    assert sorted(o.key for o in provider.list("conc/")) == sorted(blobs)


# -- a server that goes away ---------------------------------------------

@pytest.fixture
def proxied(kind, servers, make_settings):
    """(direct provider, provider through a CuttableProxy, proxy) over one fresh bucket."""
    if quirk(kind, "network"):
        pytest.skip(f"{kind}: {quirk(kind, 'network')}")
    bucket = S.unique_bucket()
    server = servers[kind]
    S.create_bucket(kind, server.endpoint, bucket)
    proxy = S.CuttableProxy(server.port)
    direct = open_provider(S.settings_for(kind, server.endpoint, bucket))
    via = open_provider(S.settings_for(kind, proxy.endpoint, bucket, name=f"{kind}-proxied"))
    yield direct, via, proxy
    proxy.close()
    via.close()
    direct.close()


def _read_until_error(f) -> int:
    n = 0
    while True:
        chunk = f.read(256 * 1024)
        if not chunk:
            return n
        n += len(chunk)


def test_server_gone_mid_read_raises_unavailable(proxied):
    direct, via, proxy = proxied
    data = random.Random(7).randbytes(32 * MiB)
    direct.write_bytes("big", data)
    t0 = time.monotonic()
    with pytest.raises(Unavailable):
        f = via.open_read("big")
        try:
            assert f.read(64 * 1024) == data[:64 * 1024]
            proxy.freeze()  # nothing more leaves the server...
            proxy.cut()     # ...and then it is gone
            got = _read_until_error(f)
            pytest.fail(f"read {got} more bytes of {len(data)} and no error after the cut")
        finally:
            # closing a broken stream may fail any way it likes
            with contextlib.suppress(Exception):
                f.close()
    assert time.monotonic() - t0 < 15


def test_server_hangs_mid_read_raises_unavailable(proxied):
    direct, via, proxy = proxied
    data = random.Random(8).randbytes(32 * MiB)
    direct.write_bytes("big", data)
    t0 = time.monotonic()
    with pytest.raises(Unavailable):
        f = via.open_read("big")
        try:
            assert f.read(64 * 1024) == data[:64 * 1024]
            proxy.freeze()  # connection stays open, no byte arrives: only a timeout can tell
            got = _read_until_error(f)
            pytest.fail(f"read {got} more bytes of {len(data)} and no error while frozen")
        finally:
            proxy.cut()
            with contextlib.suppress(Exception):
                f.close()
    # settings_for gives a 5 s timeout; allow for one retry
    assert time.monotonic() - t0 < 20


# -- bad input ------------------------------------------------------------

def test_bucket_that_does_not_exist(kind, servers, tmp_path):
    if kind == "file":
        settings = S.settings_for(kind, None, "", local_root=str(tmp_path / "missing"))
    else:
        settings = S.settings_for(kind, servers[kind].endpoint, S.unique_bucket("missing"))
    p = open_provider(settings)  # constructing must not fail (`omnifs init` creates it later)
    try:
        with pytest.raises(NotFound):
            p.write_bytes("k", b"data")
        with pytest.raises(NotFound):
            list(p.list())
        with pytest.raises(NotFound):
            p.head("k")
    finally:
        p.close()


def test_wrong_credentials(kind, servers, make_settings):
    if quirk(kind, "checks_credentials"):
        pytest.skip(f"{kind}: {quirk(kind, 'checks_credentials')}")
    good = make_settings(kind)
    bad_key = "d3JvbmcgZnJvbSB0aGUgc3RhcnQ=" * 3
    bad = ProviderSettings(
        name=good.name, uri=good.uri, endpoint=good.endpoint, region=good.region,
        access_key=good.access_key, secret_key="wrong" if good.secret_key else None,
        connection_string=(good.connection_string.replace(S.AZURE_KEY, bad_key)
                           if good.connection_string else None),
        timeout=good.timeout,
    )
    p = open_provider(bad)
    try:
        t0 = time.monotonic()
        with pytest.raises(PermissionDenied) as err:
            p.write_bytes("k", b"x")
        assert time.monotonic() - t0 < 15
        assert bad_key not in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(PermissionDenied):
            p.head("k")
    finally:
        p.close()


def test_unreachable_endpoint(kind):
    if quirk(kind, "network"):
        pytest.skip(f"{kind}: {quirk(kind, 'network')}")
    endpoint = f"http://127.0.0.1:{S.free_port()}"  # nothing listens there
    p = open_provider(S.settings_for(kind, endpoint, S.unique_bucket("closed")))
    try:
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as err:
            p.head("k")
        assert time.monotonic() - t0 < 20
        assert "\n" not in str(err.value)
        with pytest.raises(Unavailable):
            p.write_bytes("k", b"x")
    finally:
        p.close()


def test_key_too_long(provider):
    limit = provider.capabilities.max_key_bytes
    long_key = "d/" + "k" * limit
    with pytest.raises(InvalidInput):
        provider.write_bytes(long_key, b"x")
    with pytest.raises(InvalidInput):
        provider.head(long_key)
    # multi-byte characters count in bytes, not characters
    wide = "é" * (limit // 2 + 1)
    with pytest.raises(InvalidInput):
        provider.write_bytes(wide, b"x")


def test_keys_up_to_the_key_limit_work(provider):
    """``key_limit()`` is exact: omnifs.layout.object_key gives longer paths a fallback key."""
    room = provider.key_limit()
    parts, left = [], room
    while left > 0:
        take = min(199, left)
        if left - take == 1:  # never leave a one-byte tail for "/" alone
            take -= 1
        parts.append("k" * take)
        left -= take + 1
    key = "/".join(parts)
    assert len(key) == room
    provider.write_bytes(key, b"x")
    try:
        assert provider.read_bytes(key) == b"x"
    finally:
        provider.delete(key)
    with pytest.raises(InvalidInput):
        provider.write_bytes(key + "k", b"x")


def test_key_not_valid_utf8(provider):
    for key in ("a\udcff", "dir/\ud800x"):
        with pytest.raises(InvalidInput) as err:
            provider.write_bytes(key, b"x")
        assert "\n" not in str(err.value)
        with pytest.raises(InvalidInput):
            provider.head(key)
    assert list(provider.list()) == []
