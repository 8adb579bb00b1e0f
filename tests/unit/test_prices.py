"""Price tables and cost estimates, checked against sums worked out by hand.

A GB is 2^30 bytes (GIB below); request prices in the tables are per 1,000
(Azure: per 10,000); each item is rounded half-up to 0.0001 USD.
"""

from decimal import Decimal as D

import pytest

from omnifs.config import ConfigError, parse_config
from omnifs.errors import InvalidInput
from omnifs.policy.costs import Deletion, TierRead, TransferSummary, estimate
from omnifs.prices import TABLES, PriceOverride, load_table, read_table, store_price

GIB = 2**30


def items(est):
    return {k: str(v) for k, v in est.items()}


@pytest.mark.parametrize("name", TABLES)
def test_shipped_tables_load_and_cover_their_tiers(name):
    table = load_table(name)
    assert table.currency == "USD" and table.version and table.source.startswith("https://")
    tiers = {"aws-s3": {"STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"},
             "gcs": {"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"},
             "azure-blob": {"Hot", "Cool", "Cold", "Archive"}}[name]
    assert len(table.regions) >= 2
    assert {r.continent for r in table.regions.values()} >= {"north-america", "europe"}
    for region in table.regions.values():
        assert set(region.tiers) == tiers


def test_request_prices_are_per_request():
    # S3 PUT 0.005 per 1,000; Azure Hot write 0.05 per 10,000: both 0.000005 per request
    assert store_price("s3").tier_price.write_requests == D("0.000005")
    assert store_price("az").tier_price.write_requests == D("0.000005")
    assert store_price("az", tier="archive").tier == "Archive"


def test_s3_to_gs():
    src, dst = store_price("s3", "us-east-1"), store_price("gs", "us-central1")
    s = TransferSummary(reads=(TierRead("STANDARD", 100_000, 100 * GIB,),),
                        objects_written=100_000, source_listed=100_000, bytes_stored=100 * GIB)
    assert items(estimate(s, src, dst)) == {
        "source egress": "9.0000",  # 100 GB x 0.09 (S3 to the internet)
        # LIST ceil(100,000/1,000) = 100 x 0.005/1000 = 0.0005
        # + GET 100,000 x 0.0004/1000 = 0.04  -> 0.0405
        "source requests (list + get)": "0.0405",
        # no listing (0 objects: 0 requests) + PUT 100,000 x 0.005/1000 = 0.5
        "destination requests (list + put)": "0.5000",
        "destination storage per month": "2.0000",  # 100 GB x 0.020
        "retrieval": "0.0000", "early deletion": "0.0000",
        "total": "11.5405",  # 9 + 0.0405 + 0.5 + 2
    }


def test_gs_nearline_to_azure_cool():
    src, dst = store_price("gs", "us-central1"), store_price("az", "eastus", "Cool")
    s = TransferSummary(reads=(TierRead("NEARLINE", 10_000, 50 * GIB),),
                        objects_written=10_000, source_listed=10_000,
                        destination_listed=12_000, bytes_stored=50 * GIB)
    assert items(estimate(s, src, dst)) == {
        "source egress": "6.0000",  # 50 GB x 0.12 (GCS premium tier, first TB)
        # LIST ceil(10,000/1,000) = 10 x 0.005/1000 (bucket's STANDARD class) = 0.00005
        # + GET 10,000 x 0.001/1000 (Nearline class B) = 0.01 -> 0.01005, half-up 0.0101
        "source requests (list + get)": "0.0101",
        # LIST ceil(12,000/5,000) = 3 x 0.05/10000 = 0.000015
        # + PUT 10,000 x 0.10/10000 (Cool write) = 0.1 -> 0.100015 -> 0.1000
        "destination requests (list + put)": "0.1000",
        "destination storage per month": "0.5000",  # 50 GB x 0.01 (Cool)
        "retrieval": "0.5000",  # 50 GB x 0.01 (Nearline retrieval)
        "early deletion": "0.0000",
        "total": "7.1101",  # 6 + 0.0101 + 0.1 + 0.5 + 0.5
    }


def test_azure_to_s3_europe():
    src, dst = store_price("az", "westeurope"), store_price("s3", "eu-central-1")
    s = TransferSummary(reads=(TierRead("", 2_000, 20 * GIB),), objects_written=2_000,
                        source_listed=2_000, destination_listed=1_000,
                        deletions=(Deletion("destination", "STANDARD", GIB, 1),),
                        bytes_stored=20 * GIB)
    assert items(estimate(s, src, dst)) == {
        "source egress": "1.7400",  # 20 GB x 0.087 (Azure to the internet)
        # LIST ceil(2,000/5,000) = 1 x 0.065/10000 = 0.0000065
        # + GET 2,000 x 0.005/10000 (Hot read) = 0.001 -> 0.0010065 -> 0.0010
        "source requests (list + get)": "0.0010",
        # LIST 1 x 0.0054/1000 = 0.0000054 + PUT 2,000 x 0.0054/1000 = 0.0108 -> 0.0108
        "destination requests (list + put)": "0.0108",
        "destination storage per month": "0.4900",  # 20 GB x 0.0245 (Frankfurt)
        "retrieval": "0.0000",
        "early deletion": "0.0000",  # S3 Standard has no minimum duration
        "total": "2.2418",  # 1.74 + 0.001 + 0.0108 + 0.49
    }


def test_s3_to_minio_with_overrides():
    # S3 at a negotiated egress rate; MinIO is our own store: free
    src = store_price("s3", override=PriceOverride(prices={"egress_internet_per_gb": D("0.02")}))
    dst = store_price("minio", override=PriceOverride(table="none"), name="lab")
    s = TransferSummary(reads=(TierRead("", 1_000, 10 * GIB),), objects_written=1_000,
                        source_listed=1_000, destination_listed=1_000, bytes_stored=10 * GIB)
    assert items(estimate(s, src, dst)) == {
        "source egress": "0.2000",  # 10 GB x 0.02
        # LIST 1 x 0.005/1000 = 0.000005 + GET 1,000 x 0.0004/1000 = 0.0004 -> 0.000405
        "source requests (list + get)": "0.0004",
        "destination requests (list + put)": "0.0000",
        "destination storage per month": "0.0000",
        "retrieval": "0.0000", "early deletion": "0.0000",
        "total": "0.2004",
    }
    # the way back: MinIO's egress is our own network; S3 charges the PUTs and storage
    back = TransferSummary(reads=(TierRead("", 1_000, 10 * GIB),), objects_written=1_000,
                           bytes_stored=10 * GIB)
    est = estimate(back, dst, store_price("s3"))
    assert est.source_egress == 0 and est.source_requests == 0
    assert est.destination_requests == D("0.0050")  # 1,000 x 0.005/1000
    assert est.total == D("0.2350")  # + 10 GB x 0.023


def test_minio_priced_like_s3_is_its_own_network():
    minio = store_price("minio", override=PriceOverride(table="aws-s3"), name="lab")
    assert minio.tier_price.storage_per_gb_month == D("0.023")
    s = TransferSummary(reads=(TierRead("", 1, GIB),))
    assert estimate(s, store_price("s3"), minio).source_egress == D("0.0900")


def test_archive_retrieval_and_early_deletion_on_a_move():
    src = store_price("s3", "us-east-1")
    dst = store_price("gs", "us-central1", "ARCHIVE")
    s = TransferSummary(
        reads=(TierRead("DEEP_ARCHIVE", 1_000, 200 * GIB), TierRead("GLACIER", 500, 50 * GIB)),
        objects_written=1_500, bytes_stored=250 * GIB,
        deletions=(Deletion("source", "DEEP_ARCHIVE", 200 * GIB, 60),
                   Deletion("source", "GLACIER", 50 * GIB, 100)))
    assert items(estimate(s, src, dst)) == {
        "source egress": "22.5000",  # 250 GB x 0.09
        # GET 1,000 x 0.0004/1000 + 500 x 0.0004/1000 = 0.0004 + 0.0002
        "source requests (list + get)": "0.0006",
        # PUT 1,500 x 0.05/1000 (GCS Archive class A) = 0.075
        "destination requests (list + put)": "0.0750",
        "destination storage per month": "0.3000",  # 250 GB x 0.0012
        # Deep Archive: 200 GB x 0.02 + 1,000 restores x 0.10/1000 = 4 + 0.1
        # Glacier:       50 GB x 0.01 +   500 restores x 0.05/1000 = 0.5 + 0.025
        "retrieval": "4.6250",
        # Deep Archive deleted at 60 of 180 days: 200 GB x 0.00099 x 120/30 = 0.792;
        # Glacier at 100 of 90 days: nothing
        "early deletion": "0.7920",
        "total": "28.2926",  # 22.5 + 0.0006 + 0.075 + 0.3 + 4.625 + 0.792
    }


def test_same_cloud_egress():
    s = TransferSummary(reads=(TierRead("", 10, 10 * GIB),), objects_written=10,
                        server_side=True)
    same = estimate(s, store_price("s3", "us-east-1"), store_price("s3", "us-east-1"))
    assert same.source_egress == 0 and same.source_requests == 0  # no download, no GET
    assert same.destination_requests == D("0.0001")  # 10 COPY x 0.005/1000 = 0.00005, half-up
    apart = estimate(TransferSummary(reads=(TierRead("", 10, 10 * GIB),)),
                     store_price("gs", "us-central1"), store_price("gs", "europe-west1"))
    assert apart.source_egress == D("0.5000")  # 10 GB x 0.05 between continents
    az = estimate(TransferSummary(reads=(TierRead("", 10, 10 * GIB),)),
                  store_price("az", "eastus"), store_price("az", "eastus"))
    assert az.source_egress == 0


GOOD = """version = "1"
effective = 2025-01-01
currency = "USD"
source = "https://example.com"
request_unit = 1000
list_page_size = 1000
default_region = "r"
default_tier = "T"
[regions.r]
continent = "europe"
egress_internet_per_gb = 0.1
egress_same_continent_per_gb = 0.0
egress_other_continent_per_gb = 0.0
[regions.r.tiers.T]
storage_per_gb_month = 0.01
retrieval_per_gb = 0.0
retrieval_requests = 0.0
min_storage_days = 0
write_requests = 0.005
read_requests = 0.0004
list_requests = 0.005
"""


@pytest.mark.parametrize("change, needle", [
    (("version = \"1\"\n", ""), "missing key 'version'"),
    (("request_unit = 1000", "request_unit = \"many\""), "request_unit must be a whole"),
    (("read_requests = 0.0004", "read_requests = -1"), "read_requests must be a price >= 0"),
    (("read_requests = 0.0004", "reed_requests = 0.0004"),
     "[regions.r.tiers.T]: unknown key 'reed_requests' (did you mean 'read_requests'?)"),
    (("effective = 2025-01-01", "effective = \"soon\""), "effective must be a date"),
    (("default_tier = \"T\"", "default_tier = \"X\""), "default_tier 'X'"),
    (("[regions.r]", "[regions.r]\nx = 1"), "[regions.r]: unknown key 'x'"),
    (("currency", "currency = "), "not valid TOML"),
])
def test_bad_table_is_one_line_naming_file_and_key(tmp_path, change, needle):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert read_table(good).regions["r"].tiers["T"].read_requests == D("0.0000004")
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace(*change, 1))
    with pytest.raises(InvalidInput) as e:
        read_table(bad)
    msg = str(e.value)
    assert needle in msg and str(bad) in msg and "\n" not in msg


def test_config_prices_section(tmp_path):
    (tmp_path / "m").mkdir()
    cfg = parse_config({
        "providers": {"aws": {"uri": "s3://bucket-a"}, "lab": {"uri": f"file://{tmp_path}/m"}},
        "prices": {"aws": {"region": "eu-central-1", "write_per_1000": 0.004},
                   "lab": {"table": "aws-s3", "egress_internet_per_gb": 0}}},
        source="omnifs.toml")
    aws = store_price("s3", override=cfg.prices["aws"], name="aws")
    assert aws.region == "eu-central-1" and aws.tier_price.write_requests == D("0.000004")
    assert "override" in aws.provenance
    lab = store_price("file", override=cfg.prices["lab"], name="lab")
    assert lab.egress_internet_per_gb == 0 and lab.cloud == "own:lab"


@pytest.mark.parametrize("table, needle", [
    ({"aws": {"egres_internet_per_gb": 0}},
     "[prices.aws]: unknown key 'egres_internet_per_gb' (did you mean 'egress_internet_per_gb'?)"),
    ({"aws": {"storage_per_gb_month": "cheap"}}, "[prices.aws]: storage_per_gb_month must be"),
    ({"aws": {"read_per_1000": -1}}, "read_per_1000 must not be negative"),
    ({"aws": {"table": "oracle"}}, "[prices.aws]: table must be one of"),
    ({"aws": {"region": "mars-1"}}, "[prices.aws] prices of aws (aws-s3): no region 'mars-1'"),
    ({"aws": {"tier": "FROZEN"}}, "no tier 'FROZEN'"),
    ({"awz": {}}, "[prices.awz]: no provider 'awz' in [providers] (did you mean 'aws'?)"),
    ({"aws": 3}, "[prices.aws] must be a table"),
])
def test_bad_prices_config_is_one_line(table, needle):
    with pytest.raises(ConfigError) as e:
        parse_config({"providers": {"aws": {"uri": "s3://bucket-a"}}, "prices": table},
                     source="omnifs.toml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("omnifs.toml: ") and "\n" not in msg
