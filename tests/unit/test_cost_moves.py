"""The cost moves' executors and the restore requests, against local directory stores
(no server: tier changes themselves are tested on moto and Azurite in
tests/integration/test_cost.py)."""

from __future__ import annotations

import stat
from decimal import Decimal

import pytest

from omnifs.catalog import Catalog
from omnifs.costing.moves import change_tier
from omnifs.costing.restore import Restores
from omnifs.drop_copy import drop_copy
from omnifs.providers import ProviderSettings, open_provider
from omnifs.replication import Retry
from omnifs.work import DropCopy, TierChange

FILE = stat.S_IFREG | 0o644


@pytest.fixture
def stores(tmp_path):
    out = {}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        out[name] = open_provider(ProviderSettings(name=name, uri=f"file://{tmp_path / name}"))
    yield out
    for p in out.values():
        p.close()


def stored(cat: Catalog, stores, names) -> int:
    ino = cat.ns.create(1, "f", FILE, 0, 0, size=3, version=1).id
    for n in names:
        stores[n].write_bytes("f", b"abc")
        cat.replicas.set(ino, n, "f", 1, "synced")
    return ino


def move(cat: Catalog, ino: int, kind: str = "placement") -> int:
    return cat.cost.record_move(inode=ino, path="/f", kind=kind, store="", source="a,c",
                                target="a,b", saving_per_month=Decimal("0.5"),
                                one_time=Decimal("0.01"))


def test_drop_waits_for_the_new_copies_then_drops_and_deletes(cat, stores):
    ino = stored(cat, stores, ("a", "c"))
    m = move(cat, ino)
    work = DropCopy(inode=ino, provider="c", after="b", move=m)
    with pytest.raises(Retry, match="waiting for a synced copy on b"):
        drop_copy(cat, stores, work)
    assert stores["c"].exists("f") and cat.cost.move(m).state == "queued"
    cat.replicas.set(ino, "b", "f", 1, "pending")  # still being copied: not yet
    with pytest.raises(Retry):
        drop_copy(cat, stores, work)
    stores["b"].write_bytes("f", b"abc")
    cat.replicas.set(ino, "b", "f", 1, "synced")
    drop_copy(cat, stores, work)
    assert sorted(r.provider for r in cat.replicas.of(ino)) == ["a", "b"]
    assert not stores["c"].exists("f")
    assert cat.cost.move(m).state == "done" and cat.cost.queued_inodes() == set()


def test_a_tier_move_the_store_cannot_make_fails_in_one_line(cat, stores):
    ino = stored(cat, stores, ("a",))
    m = move(cat, ino, "tier")
    change_tier(cat, stores, TierChange(inode=ino, provider="a", tier="STANDARD_IA", move=m))
    got = cat.cost.move(m)
    assert (got.state, got.detail) == ("failed", "a has no tier like STANDARD_IA")


def test_a_move_of_a_changed_file_is_obsolete(cat, stores):
    ino = stored(cat, stores, ("a", "c"))
    m1, m2 = move(cat, ino, "tier"), move(cat, ino)
    cat.ns.update(ino, version=2)  # rewritten since the moves were queued
    change_tier(cat, stores, TierChange(inode=ino, provider="a", tier="Cool", move=m1))
    assert cat.cost.move(m1).state == "obsolete"
    cat.ns.detach(ino)
    cat.ns.delete(ino)
    drop_copy(cat, stores, DropCopy(inode=ino, provider="c", after="b", move=m2))
    assert cat.cost.move(m2).state == "obsolete"
    assert [m.state for m in cat.cost.moves()] == ["obsolete", "obsolete"]


class Recorder:
    """A store that records the restores asked of it (a real provider underneath)."""

    def __init__(self, inner):
        self.inner, self.name, self.asked = inner, inner.name, []
        self.location = inner.location

    def restore(self, key: str, days: int = 1) -> bool:
        self.asked.append((key, days))
        return True


def test_restores_are_asked_once_per_version(cat, stores):
    ino = stored(cat, stores, ("a", "c"))
    rec = {"a": Recorder(stores["a"]), "c": Recorder(stores["c"])}
    restores = Restores(days=2)
    words = restores.request(cat, rec, cat.ns.get(ino))
    assert words == "a restore is asked of a, c: read again once it is restored"
    assert "was asked" in restores.request(cat, rec, cat.ns.get(ino))
    for t in restores.threads:
        t.join()
    assert rec["a"].asked == rec["c"].asked == [("f", 2)]
    cat.ns.update(ino, version=2)
    cat.replicas.set(ino, "a", "f", 2, "synced")
    restores.request(cat, rec, cat.ns.get(ino))
    for t in restores.threads:
        t.join()
    assert rec["a"].asked == [("f", 2), ("f", 2)] and len(rec["c"].asked) == 1
    assert stores["a"].restore("f") is False  # a store with nothing to restore says so
