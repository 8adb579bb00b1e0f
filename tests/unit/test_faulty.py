"""FaultyProvider over a LocalProvider: every knob, with no server."""

from __future__ import annotations

import io
import threading
import time

import pytest

from omnifs.providers import NotFound, ProviderSettings, Throttled, Unavailable, open_provider
from omnifs.providers.faulty import FaultyProvider
from omnifs.providers.registry import SCHEMES


@pytest.fixture
def local(tmp_path):
    p = open_provider(ProviderSettings(name="disk", uri=f"file://{tmp_path}"))
    yield p
    p.close()


def test_transparent_by_default(local):
    f = FaultyProvider(local)
    f.write_bytes("a/b", b"hello", {"k": "v"})
    assert f.read_bytes("a/b") == b"hello"
    assert f.read_bytes("a/b", 1, 3) == b"el"
    assert f.head("a/b").metadata == {"k": "v"}
    assert [o.key for o in f.list()] == ["a/b"]
    f.copy("a/b", "c")
    f.delete("a/b")
    with pytest.raises(NotFound):
        f.head("a/b")
    assert f.capabilities == local.capabilities
    assert f.name == "disk"
    assert f.calls["head"] == 2 and f.calls["write"] == 1


def test_not_a_uri_scheme():
    assert all("faulty" not in s for s in SCHEMES)
    assert FaultyProvider.schemes == ()


def test_latency_is_added_per_request(local):
    f = FaultyProvider(local, latency=0.05)
    local.write_bytes("k", b"x")
    t0 = time.monotonic()
    for _ in range(4):
        f.head("k")
    assert time.monotonic() - t0 >= 0.2
    f.latency = 0
    t0 = time.monotonic()
    f.head("k")
    assert time.monotonic() - t0 < 0.05


def test_bandwidth_caps_reads_and_writes(local):
    f = FaultyProvider(local, bandwidth=4 * 1024 * 1024)  # 4 MiB/s
    data = b"z" * (1024 * 1024)
    t0 = time.monotonic()
    f.write("k", io.BytesIO(data), len(data))
    assert time.monotonic() - t0 >= 0.2  # 1 MiB at 4 MiB/s is 0.25 s
    t0 = time.monotonic()
    assert f.read_bytes("k") == data
    assert time.monotonic() - t0 >= 0.2


def test_bandwidth_is_shared_between_streams(local):
    local.write_bytes("a", b"a" * 512 * 1024)
    local.write_bytes("b", b"b" * 512 * 1024)
    f = FaultyProvider(local, bandwidth=4 * 1024 * 1024)
    t0 = time.monotonic()
    threads = [threading.Thread(target=f.read_bytes, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 >= 0.2  # 1 MiB together at 4 MiB/s


def test_jitter_varies_the_latency_and_keeps_the_error_sequence(local):
    local.write_bytes("k", b"x")
    f = FaultyProvider(local, latency=0.02, jitter=0.01)
    times = []
    for _ in range(12):
        t0 = time.perf_counter()
        f.head("k")
        times.append(time.perf_counter() - t0)
    assert max(times) - min(times) > 0.005
    assert 0.01 < sorted(times)[6] < 0.04

    def outcomes(jitter: float) -> list[bool]:
        g = FaultyProvider(local, error_rate=0.5, jitter=jitter, seed=5)
        seen = []
        for _ in range(20):
            try:
                g.head("k")
                seen.append(True)
            except (Unavailable, Throttled):
                seen.append(False)
        return seen

    assert outcomes(0.0) == outcomes(0.0005)


def test_error_rate_is_reproducible(local):
    local.write_bytes("k", b"x")

    def outcomes(seed: int) -> list[str]:
        f = FaultyProvider(local, error_rate=0.5, seed=seed)
        seen = []
        for _ in range(40):
            try:
                f.head("k")
                seen.append("ok")
            except (Unavailable, Throttled) as e:
                assert "injected" in str(e) and "disk" in str(e)
                seen.append(type(e).__name__)
        return seen

    first = outcomes(3)
    assert first == outcomes(3)
    assert {"ok", "Unavailable", "Throttled"} <= set(first)
    assert first != outcomes(4)


def test_error_rate_extremes(local):
    local.write_bytes("k", b"x")
    f = FaultyProvider(local, error_rate=1.0, error_types=(Throttled,))
    with pytest.raises(Throttled) as err:
        f.head("k")
    assert err.value.transient
    f.error_rate = 0.0
    assert f.head("k").size == 1


def test_outage_flips_at_runtime(local):
    f = FaultyProvider(local)
    f.write_bytes("k", b"x" * 1000)
    f.outage = True
    for call in (lambda: f.head("k"), lambda: f.read_bytes("k"), lambda: list(f.list()),
                 lambda: f.write_bytes("j", b"1"), lambda: f.delete("k"),
                 lambda: f.copy("k", "j")):
        with pytest.raises(Unavailable, match="outage"):
            call()
    f.outage = False
    assert f.read_bytes("k") == b"x" * 1000
    assert not local.exists("j")


def test_outage_interrupts_an_open_stream(local):
    local.write_bytes("big", b"q" * (2 * 1024 * 1024))
    f = FaultyProvider(local)
    stream = f.open_read("big")
    assert len(stream.read(1000)) == 1000
    f.outage = True
    with pytest.raises(Unavailable):
        stream.read()
    stream.close()


def test_outage_interrupts_a_write_and_leaves_nothing(local):
    f = FaultyProvider(local)

    class Flipping(io.BytesIO):
        def read(self, n=-1):
            f.outage = True  # the store dies after the first chunk
            return super().read(min(n, 1000) if n and n > 0 else 1000)

    with pytest.raises(Unavailable):
        f.write("k", Flipping(b"w" * 5000), 5000)
    f.outage = False
    assert not f.exists("k")
    assert [o.key for o in f.list()] == []


def test_corrupt_reads_flip_one_byte(local):
    data = bytes(range(256)) * 10
    local.write_bytes("k", data)
    f = FaultyProvider(local, corrupt_reads=True)
    got = f.read_bytes("k")
    assert got != data and len(got) == len(data)
    assert sum(a != b for a, b in zip(got, data, strict=True)) == 1
    assert f.read_bytes("k", 10, 20) != data[10:20]
    f.corrupt_reads = False
    assert f.read_bytes("k") == data


def test_missing_key_errors_pass_through(local):
    f = FaultyProvider(local, latency=0.001)
    with pytest.raises(NotFound):
        f.head("nope")
    f.delete("nope")
