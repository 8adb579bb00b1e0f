"""The reader follows the mount's health view: down replicas last, store failures reported."""

from omnifs.mountfs.replicas import DOWN, Replica, ReplicaReader, StatsRegistry
from omnifs.providers import NotFound, ProviderSettings, Unavailable
from omnifs.providers.local import LocalProvider


class Health:
    def __init__(self, down=()):
        self.down = set(down)
        self.reports = []

    def status(self, name):
        return DOWN if name in self.down else "healthy"

    def report(self, name, ok, latency, error=None):
        self.reports.append((name, ok, error))


def replica(tmp_path, name):
    root = tmp_path / name
    root.mkdir()
    return Replica(LocalProvider(ProviderSettings(name=name, uri=f"file://{root}")), "k")


def test_down_replica_ranked_last_and_failures_reported(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    health = Health(down={"a"})
    reader = ReplicaReader(StatsRegistry(), health=health)
    try:
        assert [r.name for r in reader.rank([a, b], 1024)] == ["b", "a"]
        reader.failed("b", Unavailable("gone\nmore", provider="b"), 0.2)
        reader.failed("b", NotFound("no such key", provider="b"), 0.01)  # not the store's fault
        assert health.reports == [("b", False, "b: gone")]
    finally:
        reader.close()
