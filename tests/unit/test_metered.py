"""The provider layer's one instrumentation point (providers/metered.py) over file:// stores."""

from __future__ import annotations

import io
import uuid

import pytest

from omnifs.providers import NotFound, ProviderSettings, Throttled, Unavailable, metered
from omnifs.providers.errors import PermissionDenied, TimedOut
from omnifs.providers.faulty import FaultyProvider
from omnifs.providers.metered import REGISTRY, MeteredProvider, error_class, tally
from omnifs.providers.registry import open_provider


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def store(tmp_path):
    """A metered file:// store with a name of its own (the counters are process-wide)."""
    name = f"m{uuid.uuid4().hex[:8]}"
    p = open_provider(ProviderSettings(name=name, uri=f"file://{tmp_path}/s"))
    (tmp_path / "s").mkdir()
    yield p
    p.close()


def test_open_provider_meters_and_the_switch_turns_it_off(tmp_path):
    (tmp_path / "s").mkdir()
    settings = ProviderSettings(name="sw", uri=f"file://{tmp_path}/s")
    assert isinstance(open_provider(settings), MeteredProvider)
    try:
        metered.enabled(False)
        assert not isinstance(open_provider(settings), MeteredProvider)
    finally:
        metered.enabled(True)


def test_requests_bytes_and_tally(store):
    n, kind = store.name, "file"
    store.write_bytes("a/b", b"x" * 1000)
    with store.open_read("a/b") as f:
        assert f.read(300) == b"x" * 300
        # counted as consumed, added to the totals each MiB and at close
        assert _value("omnifs_store_read_bytes_total", provider=n, kind=kind, op="get") == 0
        buf = bytearray(2000)
        assert f.readinto(buf) == 700
    assert _value("omnifs_store_read_bytes_total", provider=n, kind=kind, op="get") == 1000
    assert store.head("a/b").size == 1000
    assert [i.key for i in store.list("a/")] == ["a/b"]
    store.copy("a/b", "a/c")
    store.delete("a/c")
    t = tally()
    assert t[(n, "put")] == (1, 0, 0, 1000)
    assert t[(n, "get")] == (1, 0, 1000, 0)
    assert t[(n, "head")][:2] == (1, 0)
    assert t[(n, "list")][:2] == (1, 0)
    assert t[(n, "copy")][:2] == (1, 0) and t[(n, "delete")][:2] == (1, 0)
    assert _value("omnifs_store_written_bytes_total", provider=n, kind=kind, op="put") == 1000
    assert _value("omnifs_store_requests_total", provider=n, kind=kind, op="get") == 1
    assert _value("omnifs_store_request_seconds_count", provider=n, kind=kind, op="put") == 1


def test_error_classes_under_the_faulty_wrapper(store):
    n = store.name
    faulty = FaultyProvider(store.inner, error_rate=1.0, error_types=(Throttled,))
    m = MeteredProvider(faulty)
    for _ in range(3):
        with pytest.raises(Throttled):
            m.head("k")
    faulty.error_types = (Unavailable,)
    with pytest.raises(Unavailable):
        m.write_bytes("k", b"abc")
    faulty.error_rate = 0.0
    with pytest.raises(NotFound):
        m.open_read("missing")
    faulty.outage = True
    with pytest.raises(Unavailable):
        list(m.list(""))
    err = "omnifs_store_errors_total"
    assert _value(err, provider=n, kind="file", op="head", error="throttled") == 3
    assert _value(err, provider=n, kind="file", op="put", error="unavailable") == 1
    assert _value(err, provider=n, kind="file", op="get", error="not_found") == 1
    assert _value(err, provider=n, kind="file", op="list", error="unavailable") == 1
    assert tally()[(n, "head")] == (3, 3, 0, 0)


def test_error_class_names():
    assert error_class(TimedOut("x")) == "timed_out"
    assert error_class(PermissionDenied("x")) == "permission_denied"
    assert error_class(NotFound("x")) == "not_found"
    assert error_class(ValueError("x")) == "other"


def test_retries_reported_by_a_hook_land_on_the_request(store):
    inner = store.inner

    class Retrying(FaultyProvider):
        def head(self, key):
            metered.note_retry(2)  # what an SDK's retry hook reports
            return super().head(key)

    m = MeteredProvider(Retrying(inner))
    m.write_bytes("k", b"1")
    m.head("k")
    assert _value("omnifs_store_retries_total", provider=store.name, kind="file", op="head") == 2


def test_no_label_names_a_file(store):
    for i in range(50):
        store.write(f"f{i}", io.BytesIO(b"z"), 1)
    names = {s.labels.get("provider") for m in REGISTRY.collect() for s in m.samples}
    keys = {k for m in REGISTRY.collect() for s in m.samples for k in s.labels}
    assert keys <= {"provider", "kind", "op", "error", "le"}
    assert not names & {f"f{i}" for i in range(50)}  # other tests' stores may be "file0"


def test_a_long_read_is_counted_while_it_runs(store):
    """Bytes reach the totals every MiB, so a scrape during a long read sees them."""
    from omnifs.providers.metered_streams import FLUSH_BYTES

    n = store.name
    store.write_bytes("big", b"y" * (3 * FLUSH_BYTES))
    before = _value("omnifs_store_read_bytes_total", provider=n, kind="file", op="get")
    with store.open_read("big") as f:
        f.read(FLUSH_BYTES + 10)
        got = _value("omnifs_store_read_bytes_total", provider=n, kind="file", op="get")
        assert got - before == FLUSH_BYTES + 10
        f.read(-1)
    got = _value("omnifs_store_read_bytes_total", provider=n, kind="file", op="get")
    assert got - before == 3 * FLUSH_BYTES


def test_read_and_write_of_bytes_count_with_their_request(store):
    """``read_bytes``/``write_bytes`` count their bytes with the request (no counting stream),
    the same series as a streamed read; a listing left early is still one request."""
    n, kind = store.name, "file"
    store.write_bytes("r/a", b"q" * 5000)
    assert store.read_bytes("r/a") == b"q" * 5000
    assert store.read_bytes("r/a", 100, 200) == b"q" * 100
    with pytest.raises(NotFound):
        store.read_bytes("r/missing")
    store.write_bytes("r/b", b"")
    next(iter(store.list("r/")))  # abandoned after one entry
    t = tally()
    assert t[(n, "get")] == (3, 1, 5100, 0)
    assert t[(n, "put")] == (2, 0, 0, 5000)
    assert t[(n, "list")][:2] == (1, 0)
    assert _value("omnifs_store_request_seconds_count", provider=n, kind=kind, op="get") == 3
    assert _value("omnifs_store_request_seconds_bucket", provider=n, kind=kind, op="get",
                  le="+Inf") == 3
    assert _value("omnifs_store_errors_total", provider=n, kind=kind, op="get",
                  error="not_found") == 1
