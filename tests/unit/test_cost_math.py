"""The pure cost math of omnifs.policy.costs and omnifs.policy.tiering, worked out by hand.

Prices are the SHIPPED tables (omnifs/price_tables, loaded through omnifs.prices), per
GB = 2**30 bytes (GIB below); request prices there are per 1,000 (Azure: per 10,000),
divided out below by hand. The rates used:

S3 us-east-1: STANDARD storage 0.023, GET 0.0004, PUT 0.005; STANDARD_IA storage 0.0125,
GET 0.001, PUT 0.01, retrieval 0.01/GB, 30 days min; GLACIER_IR storage 0.004, retrieval
0.03/GB, 90 days; GLACIER storage 0.0036, PUT 0.03, retrieval 0.01/GB + 0.05 per 1,000
restores; egress 0.09 to the internet, 0.02 to another region.
S3 eu-central-1 DEEP_ARCHIVE: retrieval 0.022/GB + 0.12 per 1,000 restores.
GCS us-central1: STANDARD storage 0.020; COLDLINE retrieval 0.02/GB; ARCHIVE storage 0.0012,
365 days min; egress 0.12 to the internet, 0.05 to another continent.
Azure eastus: Hot storage 0.018, write 0.05 and read 0.004 per 10,000; Cool storage 0.01,
read 0.01 per 10,000, retrieval 0.01/GB; Archive storage 0.00099, read 5.00 per 10,000,
retrieval 0.02/GB, 180 days min; egress 0.087 to the internet, 0.05 to another continent.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from omnifs.policy.costs import (
    PriceError,
    TierRead,
    TransferSummary,
    early_deletion,
    egress_cost,
    estimate,
    request_cost,
    retrieval_cost,
    rounded,
    storage_cost,
)
from omnifs.policy.tiering import (
    Usage,
    break_even_days,
    cheapest_placement,
    class_tiers,
    monthly_cost,
    needs_restore,
    read_latency,
    tier_move,
    usage_from_history,
)
from omnifs.prices import StorePrice, store_price

GIB = 2**30
S3 = store_price("s3", "us-east-1")
S3_EU = store_price("s3", "eu-central-1")
GS = store_price("gs", "us-central1")
GS_EU = store_price("gs", "europe-west1")
AZ = store_price("az", "eastus")
AZ_EU = store_price("az", "westeurope")
MINIO = store_price("minio", name="lab")


def test_the_records_are_re_exported_by_omnifs_prices():
    from omnifs import prices
    from omnifs.policy import costs
    assert prices.StorePrice is costs.StorePrice and prices.TierPrice is costs.TierPrice
    assert isinstance(S3, StorePrice)


def test_storage():
    assert storage_cost(S3.tier_of("STANDARD_IA"), 100 * GIB) == D("1.25")  # 100 x 0.0125
    assert storage_cost(GS.tier_of("ARCHIVE"), 1024 * GIB) == D("1.2288")  # 1024 x 0.0012
    assert storage_cost(AZ.tier_of("Cool"), 10 * GIB, 3) == D("0.3")  # 10 x 0.01 x 3 months
    assert storage_cost(S3.tier_of("STANDARD"), GIB // 2) == D("0.0115")  # 0.5 x 0.023
    assert storage_cost(MINIO.tier_price, 100 * GIB) == 0


def test_requests():
    std = S3.tier_of("STANDARD")
    assert request_cost(std, reads=1_000_000) == D("0.4")  # 1e6 x 0.0004 / 1000
    assert request_cost(std, writes=20_000) == D("0.1")  # 20,000 x 0.005 / 1000
    assert request_cost(std, lists=3) == D("0.000015")  # 3 x 0.005 / 1000
    hot = AZ.tier_of("Hot")
    # 50,000 x 0.05 / 10,000 + 10,000 x 0.004 / 10,000
    assert request_cost(hot, writes=50_000, reads=10_000) == D("0.254")
    assert request_cost(AZ.tier_of("Archive"), reads=1) == D("0.0005")  # 5.00 / 10,000


def test_egress():
    assert egress_cost(S3, None, 10 * GIB) == D("0.9")  # to the internet: 10 x 0.09
    assert egress_cost(S3, GS, 10 * GIB) == D("0.9")  # another cloud: the internet rate
    assert egress_cost(GS, S3, 10 * GIB) == D("1.2")  # 10 x 0.12
    assert egress_cost(S3, S3_EU, 10 * GIB) == D("0.2")  # inter-region: 10 x 0.02
    assert egress_cost(GS, GS_EU, 10 * GIB) == D("0.5")  # other continent: 10 x 0.05
    assert egress_cost(AZ, AZ_EU, 10 * GIB) == D("0.5")  # 10 x 0.05
    assert egress_cost(S3, store_price("s3", "us-east-1", "GLACIER"), 10 * GIB) == 0
    assert egress_cost(MINIO, S3, 10 * GIB) == 0  # your own store


def test_retrieval():
    # 5 x 0.01 + 3 restores x 0.05 / 1000
    assert retrieval_cost(S3.tier_of("GLACIER"), 5 * GIB, 3) == D("0.05015")
    # 2 x 0.022 + 1 x 0.12 / 1000
    assert retrieval_cost(S3_EU.tier_of("DEEP_ARCHIVE"), 2 * GIB, 1) == D("0.04412")
    assert retrieval_cost(GS.tier_of("COLDLINE"), 10 * GIB, 7) == D("0.2")  # 10 x 0.02
    assert retrieval_cost(S3.tier_of("STANDARD"), 10 * GIB, 7) == 0


def test_minimum_storage_duration_penalty():
    # 30 GB of STANDARD_IA (30 days) deleted at 10 days: 30 x 0.0125 x 20/30
    assert early_deletion(S3.tier_of("STANDARD_IA"), 30 * GIB, 10) == D("0.25")
    # GCS ARCHIVE (365 days) at 65 days: 1 x 0.0012 x 300/30
    assert early_deletion(GS.tier_of("ARCHIVE"), GIB, 65) == D("0.012")
    # Azure Archive (180 days) at once: 60 x 0.00099 x 180/30
    assert early_deletion(AZ.tier_of("Archive"), 60 * GIB, 0) == D("0.3564")
    # half a day short of 30: 3 x 0.0125 x 0.5/30
    assert rounded(early_deletion(S3.tier_of("STANDARD_IA"), 3 * GIB, 29.5)) == D("0.0006")
    assert early_deletion(S3.tier_of("STANDARD_IA"), 30 * GIB, 30) == 0
    assert early_deletion(S3.tier_of("STANDARD_IA"), 30 * GIB, 400) == 0
    assert early_deletion(S3.tier_of("STANDARD"), 30 * GIB, 0) == 0


def test_usage_from_a_read_history():
    # 5 reads and 6 GiB in a 15-day window: x 30/15 per month
    u = usage_from_history([1, 0, 3, 1] + [0] * 11, [GIB, 0, 4 * GIB, GIB] + [0] * 11)
    assert u == Usage(D(10), D(12 * GIB))
    # a 30-day window of which 2 days were recorded
    assert usage_from_history([3, 3], [GIB, GIB], window_days=30) == Usage(D(6), D(2 * GIB))
    assert usage_from_history([], []) == Usage()


def test_monthly_cost_of_a_file_and_its_reads():
    ia = S3.tier_of("STANDARD_IA")
    u = Usage(D(3), D(30 * GIB))  # read whole 3 times a month
    # 10 x 0.0125 + 3 x 0.001/1000 + 30 x 0.01 (retrieval) + 30 x 0.09 (egress)
    assert monthly_cost(ia, 10 * GIB, u, D("0.09")) == D("3.125003")
    assert monthly_cost(ia, 10 * GIB, u) == D("0.425003")  # without egress
    assert monthly_cost(ia, 10 * GIB, Usage()) == D("0.125")


def test_break_even():
    assert break_even_days(D("0.5"), D("1.5")) == D(10)  # 0.5 / 1.5 x 30
    assert break_even_days(D(0), D("0.2")) == 0
    assert break_even_days(D(1), D(0)) is None
    assert break_even_days(D(1), D("-0.1")) is None


def test_a_transition_to_a_cooler_tier():
    # 100 GB STANDARD -> STANDARD_IA, 40 days old, unread: one PUT in IA (0.01/1000),
    # STANDARD has no minimum, nothing retrieved; saves 100 x (0.023 - 0.0125) a month
    m = tier_move(S3, "STANDARD", "STANDARD_IA", 100 * GIB, 40, Usage())
    assert m.one_time == D("0.00001")
    assert m.saving_per_month == D("1.05")
    assert rounded(m.break_even_days) == D("0.0003")  # 0.00001 / 1.05 x 30 = 0.000286


def test_a_transition_out_of_a_cold_tier_pays_minimum_and_retrieval():
    # 50 GB GLACIER_IR -> GLACIER at 30 days: PUT 0.03/1000 + early deletion
    # 50 x 0.004 x 60/30 = 0.4 + retrieval of GLACIER_IR 50 x 0.03 = 1.5
    m = tier_move(S3, "GLACIER_IR", "GLACIER", 50 * GIB, 30, Usage())
    assert m.one_time == D("1.90003")
    assert m.saving_per_month == D("0.02")  # 50 x (0.004 - 0.0036)
    assert m.break_even_days == D("2850.045")  # 1.90003 / 0.02 x 30
    # at 90 days no penalty is left: 0.00003 + 1.5
    assert tier_move(S3, "GLACIER_IR", "GLACIER", 50 * GIB, 90, Usage()).one_time == D("1.50003")


def test_reads_can_make_a_colder_tier_dearer():
    # 10 GB Azure Cool -> Archive, read whole twice a month (20 GB), egress 0.087 on both:
    # Cool 10 x 0.01 + 2 x 0.01/10000 + 20 x 0.01 = 0.300002; Archive 10 x 0.00099
    # + 2 x 5.00/10000 + 20 x 0.02 = 0.4109: no saving, no break-even
    m = tier_move(AZ, "Cool", "Archive", 10 * GIB, 100, Usage(D(2), D(20 * GIB)))
    assert m.saving_per_month == D("-0.110898")
    assert m.break_even_days is None
    # and warming up a heavily read file pays: 1 GB STANDARD_IA read 100 times a month
    # IA 0.0125 + 100 x 0.001/1000 + 100 x 0.01 = 1.0126; STANDARD 0.023 + 100 x
    # 0.0004/1000 = 0.02304; one PUT in STANDARD (0.005/1000), IA is past its 30 days
    up = tier_move(S3, "STANDARD_IA", "STANDARD", GIB, 45, Usage(D(100), D(100 * GIB)))
    assert up.saving_per_month == D("0.98956")
    assert up.one_time == D("0.000005")


def test_tier_vocabulary_and_latency():
    assert class_tiers(S3) == {"hot": "STANDARD", "cool": "STANDARD_IA", "cold": "GLACIER_IR",
                               "archive": "GLACIER"}
    assert class_tiers(AZ) == {"hot": "Hot", "cool": "Cool", "cold": "Cold",
                               "archive": "Archive"}
    assert class_tiers(MINIO) == {}
    assert needs_restore("aws-s3", "GLACIER") and needs_restore("aws-s3", "DEEP_ARCHIVE")
    assert needs_restore("azure-blob", "Archive")
    assert not needs_restore("gcs", "ARCHIVE") and not needs_restore("aws-s3", "GLACIER_IR")
    assert read_latency("aws-s3", "GLACIER").startswith("3-5 hours")
    assert read_latency("azure-blob", "Archive").startswith("up to 15 hours")
    assert read_latency("gcs", "ARCHIVE") == read_latency("aws-s3", "STANDARD") == "milliseconds"


def test_cheapest_placement_across_three_clouds():
    stores = {"s3": S3, "gcs": GS, "azure": AZ}
    # 100 GB on S3 (0.023) and GCS (0.020), unread: Azure Hot (0.018) + GCS cost 3.8 a
    # month against 4.3. Copy in from S3: egress 100 x 0.09 + GET 0.0004/1000 + Azure
    # write 0.05/10000 = 9.0000054 (from GCS it would be 100 x 0.12); S3 STANDARD has no
    # minimum to pay. Break-even 9.0000054 / 0.5 x 30 = 540.000324 days.
    m = cheapest_placement(100 * GIB, Usage(), {"s3": "STANDARD", "gcs": "STANDARD"}, stores, 2)
    assert m.stores == ("azure", "gcs") and m.current == ("gcs", "s3")
    assert (m.current_per_month, m.cost_per_month) == (D("4.3"), D("3.8"))
    assert m.saving_per_month == D("0.5")
    assert m.one_time == D("9.0000054")
    assert m.break_even_days == D("540.000324")
    # residency: not on Azure -> the current pair is already the cheapest allowed
    assert cheapest_placement(100 * GIB, Usage(), {"s3": "", "gcs": ""}, stores, 2,
                              lambda s: s != "azure") is None
    # one copy on S3 STANDARD_IA (0.0125), 10 days old, beside a store whose own tier is
    # Azure Cool (0.01): copy in (egress 100 x 0.09, an IA GET 0.001/1000, IA retrieval
    # 100 x 0.01, a Cool write 0.10/10000) and pay IA's 20 days left: 100 x 0.0125 x 20/30
    cool = {"s3": S3, "azcool": store_price("az", tier="Cool")}
    one = cheapest_placement(100 * GIB, Usage(), {"s3": "STANDARD_IA"}, cool, 1, age_days=10)
    assert one.stores == ("azcool",)
    assert one.saving_per_month == D("0.25")  # 100 x (0.0125 - 0.01)
    assert rounded(one.one_time) == D("10.8333")  # 9 + 0.000001 + 1 + 0.00001 + 0.833333


def test_reads_move_the_reading_copy():
    # 1 GB read 1,000 times a month: each month 1,000 GB leave the copy that serves the
    # reads (egress S3 0.09, GCS 0.12, Azure 0.087).
    stores = {"s3": S3, "gcs": GS, "azure": AZ}
    u = Usage(D(1000), D(1000 * GIB))
    # reading from S3: 1000 x 0.0004/1000 + 1000 x 0.09 = 90.0004; from Azure: 1000 x
    # 0.004/10000 + 1000 x 0.087 = 87.0004. On S3 + GCS: 0.023 + 0.020 + 90.0004
    m = cheapest_placement(GIB, u, {"s3": "", "gcs": ""}, stores, 2)
    assert m.current_per_month == D("90.0434")
    # Azure serves the reads, GCS (cheaper to store than S3) keeps the second copy
    assert m.stores == ("azure", "gcs")
    assert m.cost_per_month == D("87.0384")  # 0.018 + 0.020 + 87.0004
    # already there: nothing to do
    assert cheapest_placement(GIB, u, {"azure": "", "gcs": ""}, stores, 2) is None


def test_an_estimate_with_a_tier_the_table_lacks_is_one_line():
    s = TransferSummary(reads=(TierRead("FANCY_TIER", 1, GIB),), objects_written=1)
    with pytest.raises(PriceError) as e:
        estimate(s, S3, GS)
    assert "\n" not in str(e.value) and "no tier 'FANCY_TIER'" in str(e.value)
