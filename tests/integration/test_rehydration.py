"""After an Azure rehydration the catalog's tier column says what the store says (Azurite).

Azurite rehydrates at once: right after Set Blob Tier (Archive -> Hot or Cool, standard
priority) Get Blob Properties says the new tier, with no ``rehydrate-pending`` status, and
the blob reads. Real Azure answers the same request at once too but keeps the blob in
Archive (``archive_status`` rehydrate-pending-to-...) for hours. That second case is
tested here through what the provider sends back: a ``tier`` item whose rehydration was
already asked, while Azurite still says Archive, comes back later and records the tier
once the store says another one.
"""

from __future__ import annotations

import time
from decimal import Decimal

from omnifs.catalog import Catalog
from omnifs.costing.moves import REHYDRATE_POLL, change_tier
from omnifs.costing.restore import Restores
from omnifs.providers import open_provider
from omnifs.work import TierChange, enqueue
from tests.cli import run
from tests.integration.test_cost import azure_tier, config, put_file


def _moved(cat: Catalog, ino: int, target: str) -> int:
    return cat.cost.record_move(inode=ino, path="/a.bin", kind="tier", store="az",
                                source="Archive", target=target,
                                saving_per_month=Decimal("0.1"), one_time=Decimal("0.01"))


def test_cost_apply_out_of_archive_records_the_tier_the_store_says(make_settings, tmp_path):
    az = make_settings("az", name="az")
    p = open_provider(az)
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, {"az": p}, "/a.bin", b"a" * 1000, age_days=400)
        change_tier(cat, {"az": p}, TierChange(inode=ino, provider="az", tier="Archive",
                                               archive_only=1))
        assert azure_tier(az, "a.bin") == "Archive"
        assert cat.replicas.get(ino, "az").tier == "Archive"
        move = _moved(cat, ino, "Cool")
        change_tier(cat, {"az": p}, TierChange(inode=ino, provider="az", tier="Cool",
                                               move=move))
        assert azure_tier(az, "a.bin") == "Cool" and p.read_bytes("a.bin") == b"a" * 1000
        assert cat.replicas.get(ino, "az").tier == "Cool"
        assert cat.cost.move(move).state == "done"
    finally:
        cat.close()
        p.close()


def test_a_rehydration_under_way_is_followed_until_the_store_finishes(make_settings,
                                                                       tmp_path):
    az = make_settings("az", name="az")
    p = open_provider(az)
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, {"az": p}, "/a.bin", b"a" * 1000, age_days=400)
        p.set_tier("a.bin", "Archive")
        cat.replicas.set_tier(ino, "az", "Archive")
        move = _moved(cat, ino, "Hot")
        asked = time.time() - 60  # asked a minute ago; the store still says Archive
        work = TierChange(inode=ino, provider="az", tier="Hot", move=move, asked=int(asked))
        change_tier(cat, {"az": p}, work)
        assert cat.replicas.get(ino, "az").tier == "Archive"
        assert cat.cost.move(move).state == "queued"
        [item] = [i for i in cat.work.work_items("pending") if i.kind == "tier"]
        assert item.not_before > time.time() + REHYDRATE_POLL - 120
        assert TierChange.from_payload(item.payload).asked == int(asked)

        p.set_tier("a.bin", "Hot")  # the store finishes the rehydration
        change_tier(cat, {"az": p}, TierChange.from_payload(item.payload))
        assert cat.replicas.get(ino, "az").tier == "Hot"
        assert cat.cost.move(move).state == "done"

        # one the store never finishes is given up after two days, in one line
        p.set_tier("a.bin", "Archive")
        cat.replicas.set_tier(ino, "az", "Archive")
        late = _moved(cat, ino, "Hot")
        change_tier(cat, {"az": p}, TierChange(inode=ino, provider="az", tier="Hot",
                                               move=late, asked=int(time.time() - 3 * 86400)))
        got = cat.cost.move(late)
        assert got.state == "failed" and "has not rehydrated a.bin in 48 h" in got.detail
    finally:
        cat.close()
        p.close()


def test_the_read_paths_restore_makes_the_catalog_follow(make_settings, tmp_path):
    az = make_settings("az", name="az")
    p = open_provider(az)
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, {"az": p}, "/a.bin", b"a" * 1000, age_days=400)
        p.set_tier("a.bin", "Archive")
        cat.replicas.set_tier(ino, "az", "Archive")
        restores = Restores()
        restores.request(cat, {"az": p}, cat.ns.get(ino))
        for t in restores.threads:
            t.join()
        assert azure_tier(az, "a.bin") == "Hot"  # Azurite rehydrates at once
        assert cat.replicas.get(ino, "az").tier == "Hot"  # the catalog follows
        # nothing left to follow
        assert not [i for i in cat.work.work_items("pending") if i.kind == "tier"]
    finally:
        cat.close()
        p.close()


def test_the_daemon_follows_a_rehydration_queued_by_a_read(make_settings, tmp_path):
    az = make_settings("az", name="az")
    cfg = config(tmp_path, [az], copies=1)
    p = open_provider(az)
    cat = Catalog(tmp_path / "catalog.db")
    try:
        ino = put_file(cat, {"az": p}, "/a.bin", b"a" * 1000, age_days=400)
        p.set_tier("a.bin", "Archive")
        cat.replicas.set_tier(ino, "az", "Archive")
        # what a read's restore queues when the store still says Archive (real Azure)
        enqueue(cat.work, TierChange(inode=ino, provider="az", tier="Hot", archive_only=1,
                                     asked=int(time.time())))
        p.set_tier("a.bin", "Hot")  # ... and the store then finishes
    finally:
        cat.close()
        p.close()
    run("replicate", "--now", config=cfg, check=True)
    cat = Catalog(tmp_path / "catalog.db")
    try:
        assert cat.replicas.get(ino, "az").tier == "Hot"
    finally:
        cat.close()
