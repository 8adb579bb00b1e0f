"""omnifs.migration.costing: a plan's summary priced from the shipped tables (no servers).

Rates used (omnifs/price_tables, per GB = 2**30 bytes; requests per 1,000 divided out):
S3 us-east-1: egress 0.09; STANDARD list 0.005, GET 0.0004; STANDARD_IA GET 0.001,
retrieval 0.01/GB, storage 0.0125 with a 30-day minimum. GCS us-central1 STANDARD:
PUT 0.005, storage 0.020. file:// is your own store: free.
"""

from __future__ import annotations

from decimal import Decimal

from omnifs.migration.costing import plan_estimate, transfer_summary
from omnifs.providers import ProviderSettings

GIB = 2**30
S3 = ProviderSettings(name="old", uri="s3://bucket", region="us-east-1")
GS = ProviderSettings(name="new", uri="gs://bucket")
LOCAL = ProviderSettings(name="disk", uri="file:///srv/store")


def summary(copy_tiers: dict, *, delete_source: dict | None = None) -> dict:
    """A plan summary (omnifs.migration.plan.summarize's shape) that copies ``copy_tiers``."""
    def row(tiers: dict) -> dict:
        return {"objects": sum(o for o, _ in tiers.values()),
                "bytes": sum(b for _, b in tiers.values()),
                "source_tiers": {t: {"objects": o, "bytes": b} for t, (o, b) in tiers.items()},
                "destination_tiers": {}}
    empty = row({})
    ds = row(delete_source or {})
    return {"copy": row(copy_tiers), "overwrite": empty, "skip": empty, "delete": empty,
            "delete_source": {k: ds[k] for k in ("objects", "bytes", "source_tiers")}}


def test_s3_to_gcs_across_two_tiers():
    s = summary({"STANDARD_IA": (400, 4 * GIB), "STANDARD": (600, 6 * GIB)})
    e = plan_estimate(s, S3, GS, {})
    assert e.source_egress == Decimal("0.9000")  # 10 GB x 0.09
    # one list page (0.005/1000) + 400 IA GETs (0.001/1000) + 600 GETs (0.0004/1000)
    # = 0.000005 + 0.0004 + 0.00024 = 0.000645
    assert e.source_requests == Decimal("0.0006")
    assert e.destination_requests == Decimal("0.0050")  # 1,000 PUTs x 0.005/1000
    assert e.retrieval == Decimal("0.0400")  # 4 GB of STANDARD_IA x 0.01
    assert e.destination_storage_per_month == Decimal("0.2000")  # 10 GB x 0.020
    assert e.early_deletion == Decimal("0.0000")
    assert e.total == Decimal("1.1456")


def test_a_move_out_of_an_infrequent_tier_pays_its_minimum_storage():
    s = summary({"STANDARD_IA": (1, GIB)}, delete_source={"STANDARD_IA": (1, GIB)})
    e = plan_estimate(s, S3, LOCAL, {})
    assert e.source_egress == Decimal("0.0900")
    assert e.retrieval == Decimal("0.0100")
    # deleted at once (the plan knows no ages: an upper bound): 30 days x 0.0125 / 30
    assert e.early_deletion == Decimal("0.0125")
    assert (e.destination_requests, e.destination_storage_per_month) == (0, 0)
    assert e.total == Decimal("0.1125")


def test_within_one_store_the_copy_is_server_side():
    s = summary({"STANDARD": (10, GIB)})
    assert transfer_summary(s, server_side=True).server_side
    e = plan_estimate(s, S3, S3, {})
    assert e.source_egress == 0  # same cloud, same region
    assert e.source_requests == Decimal("0.0000")  # one list page, no GETs
    assert e.destination_requests == Decimal("0.0001")  # 10 PUT-class copies x 0.005/1000


def test_local_files_have_no_tier():
    t = transfer_summary(summary({"-": (3, 300)}), server_side=False)
    assert [(r.tier, r.objects, r.bytes) for r in t.reads] == [("", 3, 300)]
    assert (t.objects_written, t.source_listed, t.bytes_stored) == (3, 3, 300)
