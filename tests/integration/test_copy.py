"""omnifs cp / sync over real servers: every provider pair, server-side copies,
sync plans, a source dying mid-copy, corrupted bytes, and the CLI contract."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import threading
import time

import pytest

from omnifs.providers import META_MTIME, META_SHA256, IntegrityError, NotFound, open_provider
from omnifs.providers.faulty import FaultyProvider
from omnifs.sync_plan import Filter
from omnifs.transfer import Options, copy_object, copy_tree
from tests import servers as S
from tests.cli import one_line_error, run, write_config

MiB = 1024 * 1024
PAIRS = list(itertools.product(S.KINDS, S.KINDS))
#: the 64 MiB multipart object rides along in every pair unless OMNIFS_COPY_BIG=0
BIG = 64 * MiB if os.environ.get("OMNIFS_COPY_BIG", "1") != "0" else 17 * MiB


@pytest.fixture
def make_provider(make_settings):
    """Providers with a patient timeout: the GCS emulator, busy serving a 64 MiB read and
    write at once on 2 cores, can stall past the suite's default 5 s."""
    opened = []

    def make(kind: str, name: str | None = None, prefix: str = ""):
        settings = make_settings(kind, name=name, prefix=prefix)
        p = open_provider(dataclasses.replace(settings, timeout=60.0))
        opened.append(p)
        return p

    yield make
    for p in opened:
        p.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(n: int, seed: int = 0) -> bytes:
    """Incompressible-ish bytes without paying for os.urandom on every test."""
    block = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB
    reps = n // len(block) + 1
    return (block * reps)[:n]


def _read_sha(p, key: str) -> str:
    h = hashlib.sha256()
    with p.open_read(key) as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def _fill_source(src) -> dict[str, tuple[str, int, dict, str | None]]:
    """The source tree of the matrix: key -> (sha256, size, user metadata, content type)."""
    objects: dict[str, tuple[bytes, dict, str | None, bool]] = {
        "empty": (b"", {}, None, False),
        "small.txt": (b"hello omnifs\n" * 10, {"color": "blue"}, "text/plain", False),
        "dir/ünïcødé ☃ name.bin": (_blob(1000, 1), {}, None, False),
        # above Options.small_object in the test: the streamed path, hash recorded afterwards
        "mid-unhashed.bin": (_blob(3 * MiB, 2), {"owner": "ops"}, "application/x-test", False),
        # multipart, recorded hash: verified before the last byte is handed over
        "big.bin": (_blob(BIG, 3), {"kind": "big"}, "application/octet-stream", True),
    }
    out = {}
    for key, (data, meta, ctype, record) in objects.items():
        meta = dict(meta)
        if record:
            meta[META_SHA256] = _sha(data)
            meta[META_MTIME] = "1700000000.5"
        src.write_bytes(key, data, meta, ctype)
        out[key] = (_sha(data), len(data), meta, ctype)
    return out


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_copy_tree_every_pair(src_kind, dst_kind, make_provider):
    src = make_provider(src_kind, name="src")
    dst = make_provider(dst_kind, name="dst")
    expected = _fill_source(src)
    options = Options(small_object=MiB, transfers=4)
    events: list[str] = []
    result = copy_tree(src, "", dst, "copy", options=options,
                       progress=lambda ev, key, snap: events.append(ev))
    assert result.ok, result.failures
    assert sorted(result.copied) == sorted(expected)
    assert "done" in events and events[-1] == "end"
    assert result.stats.done_bytes == sum(size for _, size, _, _ in expected.values())
    for key, (sha, size, meta, ctype) in expected.items():
        info = dst.head(f"copy/{key}")
        assert info.size == size, key
        assert info.metadata.get(META_SHA256) == sha, key
        assert META_MTIME in info.metadata, key
        for k, v in meta.items():
            assert info.metadata.get(k) == v, (key, k)
        if ctype:
            assert info.content_type == ctype, key
        assert _read_sha(dst, f"copy/{key}") == sha, key
    assert dst.head("copy/big.bin").metadata[META_MTIME] == "1700000000.5"
    # a rerun finds everything whole and moves nothing
    again = copy_tree(src, "", dst, "copy", options=options)
    assert again.ok and not again.copied
    assert sorted(again.skipped) == sorted(expected)


@pytest.mark.parametrize("kind", S.KINDS)
def test_same_store_copy_is_server_side(kind, make_settings):
    settings = make_settings(kind, name="a")
    base = open_provider(settings)
    other = open_provider(dataclasses.replace(settings, name="b",
                                              uri=settings.uri.rstrip("/") + "/other"))
    data = _blob(2 * MiB, 7)
    base.write_bytes("src/x.bin", data, {"color": "red"}, "text/x")
    base.write_bytes("src/y.bin", b"y" * 10)
    counted = FaultyProvider(base)
    try:
        result = copy_tree(counted, "src", other, "dst")
        assert result.ok, result.failures
        assert sorted(result.server_side) == ["x.bin", "y.bin"]
        assert counted.calls["open_read"] == 0, "bytes passed through us"
        assert counted.calls["copy"] == 2
        assert other.read_bytes("dst/x.bin") == data
        info = other.head("dst/x.bin")
        assert info.metadata.get("color") == "red"
        assert META_MTIME in info.metadata
    finally:
        base.close()
        other.close()


@pytest.mark.parametrize(("src_kind", "dst_kind"), [("s3", "az"), ("file", "gs"), ("gs", "minio"),
                                                    ("az", "file")])
def test_sync_changes_deletes_and_dry_run(src_kind, dst_kind, make_provider):
    src = make_provider(src_kind)
    dst = make_provider(dst_kind)
    for name in ("a", "b", "c", "keep/me.log", "keep/me.txt"):
        src.write_bytes(f"t/{name}", name.encode() * 100)
    first = copy_tree(src, "t", dst, "t", delete=True)
    assert first.ok and len(first.copied) == 5
    dst.write_bytes("t/extra", b"extra")
    time.sleep(1.1)  # stores with whole-second mtimes: a rewrite in the same second is invisible
    src.write_bytes("t/b", b"B" * 100)  # same size, different bytes: the hash tells
    src.delete("t/c")
    src.write_bytes("t/d", b"new")

    dry = copy_tree(src, "t", dst, "t", delete=True, dry_run=True)
    assert sorted(a.rel for a in dry.plan.copies) == ["b", "d"]
    assert sorted(a.rel for a in dry.plan.deletes) == ["c", "extra"]
    assert dst.read_bytes("t/b") == b"b" * 100 and dst.exists("t/extra")  # dry run changed nothing
    lines = dry.plan.lines()
    assert lines[-1].startswith("plan: 2 to copy") and "2 to delete" in lines[-1]

    no_delete = copy_tree(src, "t", dst, "t", delete=False, filt=Filter(exclude=("*.log",)))
    assert sorted(no_delete.copied) == ["b", "d"] and dst.exists("t/extra")

    synced = copy_tree(src, "t", dst, "t", delete=True, filt=Filter(exclude=("*.log",)))
    assert synced.ok and synced.copied == [] and sorted(synced.deleted) == ["c", "extra"]
    assert dst.read_bytes("t/b") == b"B" * 100
    assert not dst.exists("t/c")
    assert dst.exists("t/keep/me.log")  # excluded from the sync: neither copied nor deleted


def test_source_killed_mid_copy_then_rerun(servers, make_settings, make_provider):
    settings = make_settings("s3", name="src")
    proxy = S.CuttableProxy(servers["s3"].port)
    via_proxy = open_provider(dataclasses.replace(settings, endpoint=proxy.endpoint, timeout=2.0))
    direct = open_provider(settings)
    dst = make_provider("az")
    sizes = [20 * MiB] * 4
    for i, n in enumerate(sizes):
        direct.write_bytes(f"obj{i}", _blob(n, 10 + i), {META_SHA256: _sha(_blob(n, 10 + i))})
    slow = FaultyProvider(via_proxy, bandwidth=60 * MiB)
    cut_at = threading.Event()

    def progress(ev, key, snap):
        if snap.done_bytes > 30 * MiB:
            cut_at.set()

    threading.Thread(target=lambda: (cut_at.wait(30), proxy.cut()), daemon=True).start()
    options = Options(transfers=1, retries=1, backoff=0.05)
    try:
        first = copy_tree(slow, "", dst, "", options=options, progress=progress)
        assert not first.ok, "the cut should have failed some objects"
        assert all("src" in f.error for f in first.failures), first.failures
        # what is visible at the destination is whole and correct, never partial
        for info in dst.list(""):
            i = int(info.key[3:])
            assert info.size == sizes[i]
            assert _read_sha(dst, info.key) == _sha(_blob(sizes[i], 10 + i))
        arrived = {info.key for info in dst.list("")}
        rerun = copy_tree(direct, "", dst, "", options=options)
        assert rerun.ok, rerun.failures
        assert set(rerun.skipped) == arrived
        assert set(rerun.copied) == {f"obj{i}" for i in range(4)} - arrived
        for i, n in enumerate(sizes):
            assert _read_sha(dst, f"obj{i}") == _sha(_blob(n, 10 + i))
    finally:
        proxy.close()
        via_proxy.close()
        direct.close()


@pytest.mark.parametrize(("src_kind", "size"), [("s3", 100), ("s3", 3 * MiB), ("gs", 100)])
def test_corrupted_byte_is_detected(src_kind, size, make_provider):
    src = make_provider(src_kind)
    dst = make_provider("file")
    data = _blob(size, 20)
    # gs without a recorded hash: its native crc32c is what catches the corruption
    meta = {} if src_kind == "gs" else {META_SHA256: _sha(data)}
    src.write_bytes("x.bin", data, meta)
    bad = FaultyProvider(src, corrupt_reads=True)
    options = Options(small_object=MiB, retries=0)
    with pytest.raises(IntegrityError) as err:
        copy_object(bad, "x.bin", dst, "x.bin", options=options)
    text = str(err.value)
    assert "mismatch" in text and "\n" not in text
    flipped = bytes([data[0] ^ 0xFF]) + data[1:]
    if src_kind == "gs":
        import google_crc32c

        def digest(b: bytes) -> str:
            return google_crc32c.value(b).to_bytes(4, "big").hex()
    else:
        def digest(b: bytes) -> str:
            return hashlib.sha256(b).hexdigest()
    assert digest(data) in text
    assert digest(flipped) in text
    assert not dst.exists("x.bin"), "a corrupt copy was left visible"
    assert bad.calls["open_read"] == 2, "mismatch is retried exactly once"

    # corrupt only the first attempt: the retry delivers
    once = FaultyProvider(src, corrupt_reads=True)
    real_open = once.open_read

    def open_then_heal(key, start=0, end=None):
        stream = real_open(key, start, end)
        once.corrupt_reads = False
        return stream

    once.open_read = open_then_heal
    copy_object(once, "x.bin", dst, "x.bin", options=options)
    assert dst.read_bytes("x.bin") == data


@pytest.mark.parametrize("src_kind", ["s3", "minio"])
def test_tree_copy_takes_metadata_from_the_read_not_a_head(src_kind, make_provider):
    """S3 listings lack user metadata: the copy gets it from each GET, never a HEAD per object,
    and still verifies the recorded SHA-256 (a corrupted read is caught)."""
    src = make_provider(src_kind)
    dst = make_provider("az")
    data = {f"d/k{i}": _blob(3000 + i, i) for i in range(6)}
    for i, (key, body) in enumerate(data.items()):
        meta = {"n": str(i), META_MTIME: "1700000001.5"}
        if i % 2:
            meta[META_SHA256] = _sha(body)
        src.write_bytes(key, body, meta, "text/x-test")
    counted = FaultyProvider(src)
    result = copy_tree(counted, "d", dst, "out")
    assert result.ok, result.failures
    assert counted.calls["head"] == 0
    assert counted.calls["open_read"] == len(data)
    for i, (key, body) in enumerate(data.items()):
        info = dst.head("out/" + key[2:])
        assert info.metadata[META_SHA256] == _sha(body)
        assert info.metadata["n"] == str(i)
        assert info.metadata[META_MTIME] == "1700000001.5"
        assert info.content_type == "text/x-test"
        assert dst.read_bytes("out/" + key[2:]) == body

    bad = FaultyProvider(src, corrupt_reads=True)
    result = copy_tree(bad, "d", dst, "bad", options=Options(retries=0),
                       filt=Filter(include=("k1",)))
    assert len(result.failures) == 1 and "sha256 mismatch" in result.failures[0].error
    assert not dst.exists("bad/k1")


def test_transient_errors_are_retried(make_provider):
    src = make_provider("s3")
    dst = make_provider("gs")
    for i in range(6):
        src.write_bytes(f"k{i}", _blob(5000, i))
    flaky = FaultyProvider(src, error_rate=0.3, seed=3)
    result = copy_tree(flaky, "", dst, "", options=Options(retries=6, backoff=0.01))
    assert result.ok, result.failures
    assert len(result.copied) == 6


# -- the CLI -------------------------------------------------------------

@pytest.fixture
def cli_stores(make_settings, tmp_path):
    a = make_settings("s3", name="store-a")
    b = make_settings("az", name="store-b")
    cfg = write_config(tmp_path / "omnifs.toml", [a, b])
    pa, pb = open_provider(a), open_provider(b)
    yield cfg, pa, pb
    pa.close()
    pb.close()


def test_cli_cp_sync_and_errors(cli_stores, tmp_path):
    cfg, a, b = cli_stores
    a.write_bytes("d/one.txt", b"one")
    a.write_bytes("d/sub/two.txt", b"two" * 1000)
    proc = run("cp", "store-a:/d/one.txt", "store-b:/copied/", config=cfg, check=True)
    assert b.read_bytes("copied/one.txt") == b"one"
    assert "1 object," in proc.stderr.decode()
    local = tmp_path / "local"
    local.mkdir()
    run("cp", "-r", "store-a:/d", f"file://{local}", config=cfg, check=True)
    assert (local / "sub" / "two.txt").read_bytes() == b"two" * 1000

    dry = run("sync", "--dry-run", "--delete", f"file://{local}", "store-b:/copied", config=cfg,
              check=True)
    out = dry.stdout.decode()
    assert "copy sub/two.txt" in out and "plan: 1 to copy" in out
    json_run = run("sync", "--progress=json", f"file://{local}", "store-b:/copied", config=cfg,
                   check=True)
    assert '"event": "done"' in json_run.stdout.decode()
    assert b.read_bytes("copied/sub/two.txt") == b"two" * 1000

    err = one_line_error(run("cp", "store-a:/nope.txt", "store-b:/x", config=cfg))
    assert "store-a" in err and "nope.txt" in err
    bad = run("cp", "nosuch:/x", "store-b:/x", config=cfg)
    assert bad.returncode == 2 and "nosuch" in one_line_error(bad)
    assert run("cp", "--transfers", "0", "store-a:/d", "store-b:/x", config=cfg).returncode == 2


def test_cli_exit_status_lists_failures(cli_stores, tmp_path):
    cfg, a, _ = cli_stores
    # a file where the copy needs a directory: one object fails, the other arrives
    root = tmp_path / "dst"
    root.mkdir()
    (root / "sub").write_bytes(b"in the way")
    a.write_bytes("t/sub/x", b"x")
    a.write_bytes("t/y", b"y")
    proc = run("cp", "-r", "store-a:/t", f"file://{root}", config=cfg)
    assert proc.returncode == 1
    lines = proc.stderr.decode().strip().splitlines()
    assert any(line.startswith("omnifs: failed:") and "sub/x" in line for line in lines), lines
    assert "1 failed" in lines[-1] and "Traceback" not in proc.stderr.decode()
    assert (root / "y").read_bytes() == b"y"


def test_missing_source_tree_copies_nothing(make_provider):
    src = make_provider("file")
    dst = make_provider("s3")
    result = copy_tree(src, "nothing/here", dst, "x")
    assert result.ok and result.copied == []
    with pytest.raises(NotFound):
        copy_object(src, "nothing", dst, "x")


@pytest.mark.parametrize(("src_kind", "dst_kind", "copies"), [("file", "s3", 0), ("s3", "az", 1)])
def test_unhashed_big_source_hash_strategy(src_kind, dst_kind, copies, make_provider):
    """A local source is hashed in a pre-pass (no copy onto itself at the destination);
    a remote one into a store whose copy-in-place is cheap gets the copy. Either way
    the destination carries the SHA-256 of the bytes."""
    src = make_provider(src_kind)
    dst = FaultyProvider(make_provider(dst_kind))
    data = _blob(3 * MiB, 31)
    src.write_bytes("u.bin", data)
    info = src.head("u.bin")
    assert info.sha256 is None
    copy_object(src, "u.bin", dst, "u.bin", options=Options(small_object=MiB), src_info=info)
    assert dst.calls["copy"] == copies
    assert dst.head("u.bin").sha256 == _sha(data)
    assert _read_sha(dst, "u.bin") == _sha(data)
