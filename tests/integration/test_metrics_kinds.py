"""The same workload on every provider kind gives the same metric names and labels."""

from __future__ import annotations

import pytest

from omnifs.providers import NotFound
from omnifs.providers.metered import OPS, REGISTRY, tally
from tests import servers as S

_seen: dict[str, set[tuple[str, tuple[str, ...], str, str]]] = {}


def _shape(name: str) -> set[tuple[str, tuple[str, ...], str, str]]:
    """(metric, label names, op, error) of every sample of provider ``name``."""
    out = set()
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.labels.get("provider") == name:
                keys = tuple(sorted(k for k in s.labels if k not in ("provider", "kind", "le")))
                out.add((s.name, keys, s.labels.get("op", ""), s.labels.get("error", "")))
    return out


@pytest.mark.parametrize("kind", S.KINDS)
def test_same_names_and_labels_on_every_kind(kind, make_provider):
    p = make_provider(kind, name=f"shape-{kind}")
    data = b"m" * 70_000
    p.write_bytes("d/a", data)
    assert p.read_bytes("d/a") == data
    assert p.head("d/a").size == len(data)
    assert [i.key for i in p.list("d/")] == ["d/a"]
    p.copy("d/a", "d/b")
    p.delete("d/b")
    with pytest.raises(NotFound):
        p.head("d/missing")
    counts = tally()
    assert counts[(p.name, "put")][3] == len(data)
    assert counts[(p.name, "get")][2] == len(data)
    assert counts[(p.name, "head")][:2] == (2, 1)
    _seen[kind] = _shape(p.name)
    assert REGISTRY.get_sample_value("omnifs_store_requests_total",
                                     {"provider": p.name, "kind": kind, "op": "get"}) == 1
    for op in OPS:  # every request answered at once: nothing retried
        assert REGISTRY.get_sample_value("omnifs_store_retries_total",
                                         {"provider": p.name, "kind": kind, "op": op}) == 0
    for other, shape in _seen.items():
        assert shape == _seen[kind], f"{kind} and {other} differ"


@pytest.mark.parametrize("kind", ["s3", "minio", "az", "gs"])
def test_sdk_retries_are_counted(kind):
    """A store that refuses connections: the SDK's own retries reach the retry counter."""
    from omnifs.providers import Unavailable
    from omnifs.providers.registry import open_provider

    endpoint = f"http://127.0.0.1:{S.free_port()}"
    settings = S.settings_for(kind, endpoint, "retry-bucket", name=f"retry-{kind}")
    settings.timeout = 2.0
    p = open_provider(settings)
    try:
        with pytest.raises(Unavailable):
            p.head("k")
    finally:
        p.close()
    labels = {"provider": p.name, "kind": kind, "op": "head"}
    assert REGISTRY.get_sample_value("omnifs_store_retries_total", labels) >= 1
    assert REGISTRY.get_sample_value("omnifs_store_errors_total",
                                     {**labels, "error": "unavailable"}) == 1
