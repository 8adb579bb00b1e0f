"""The month's bill (omnifs/costing/bill.py) against hand-computed figures from the shipped
price tables (aws-s3 2025.1 us-east-1, azure-blob 2025.1 eastus), and its report."""

from __future__ import annotations

from decimal import Decimal

from omnifs.catalog import StoredFile
from omnifs.costing.bill import Line, compute, prefix_of
from omnifs.costing.inputs import Month
from omnifs.costing.reports import bill_report
from omnifs.prices import store_price
from omnifs.report.output import render

GiB = 1 << 30
PRICES = {"aws": store_price("s3", "us-east-1"), "az": store_price("az", "eastus")}
MONTH = Month.of(1_796_000_000.0)  # 2026-11-30


def f(ino: int, size: int, replicas: dict[str, str], reads: int = 0, nbytes: int = 0):
    return StoredFile(ino, 1, f"f{ino}", size, 0.0, None, None, reads, nbytes, replicas)


def test_month_and_prefixes():
    assert (MONTH.label, MONTH.days_so_far) == ("2026-11", 30)
    assert prefix_of("/a/b/c") == "/a" and prefix_of("/top.txt") == "/"


def test_storage_requests_egress_retrieval_by_hand():
    files = [("/data/x", f(1, GiB, {"aws": "", "az": "Cool"})),
             ("/data/y", f(2, 2 * GiB, {"aws": "STANDARD_IA"}, reads=3, nbytes=GiB)),
             ("/top", f(3, GiB, {"az": ""}))]
    usage = {"aws": {"get": (1000, 2, GiB, 0), "head": (1000, 0, 0, 0),
                     "put": (2000, 0, 0, 3 * GiB), "list": (10, 0, 0, 0),
                     "delete": (50, 0, 0, 0)}}
    bill = compute(files, usage, PRICES, MONTH)
    std = bill.tiers["aws", "STANDARD"]
    # 1 GiB at 0.023/GB-month; 2000 reads at 0.0004/1000, 2000 writes at 0.005/1000,
    # 10 lists at 0.005/1000 (deletes free); 1 GiB downloaded at 0.09/GB
    assert std.storage == Decimal("0.023")
    assert std.requests == 4060
    assert std.request_cost == Decimal("0.0008") + Decimal("0.01") + Decimal("0.00005")
    assert (std.egress_bytes, std.egress) == (GiB, Decimal("0.09"))
    ia = bill.tiers["aws", "STANDARD_IA"]
    # 2 GiB at 0.0125; 1 GiB read back at 0.01/GB retrieval
    assert (ia.storage, ia.retrieval_bytes, ia.retrieval) == (Decimal("0.025"), GiB,
                                                             Decimal("0.01"))
    assert bill.tiers["az", "Cool"].storage == Decimal("0.01")
    assert bill.tiers["az", "Hot"].storage == Decimal("0.018")
    stores = bill.by_store()
    assert stores["aws"].total == Decimal("0.023") + Decimal("0.01085") + Decimal("0.09") \
        + Decimal("0.025") + Decimal("0.01")
    assert stores["az"].objects == 2 and stores["az"].total == Decimal("0.028")
    assert bill.prefixes["/data"].storage == Decimal("0.023") + Decimal("0.01") \
        + Decimal("0.025")
    assert bill.prefixes["/"].bytes == GiB
    total = bill.total()
    assert total.total == stores["aws"].total + stores["az"].total


def test_reads_are_priced_at_the_copy_cheapest_to_read():
    # Hot on Azure reads with no retrieval fee; the S3 GLACIER copy would need a restore
    bill = compute([("/a", f(1, GiB, {"aws": "GLACIER", "az": ""}, reads=1, nbytes=GiB))],
                   {}, PRICES, MONTH)
    assert all(line.retrieval == 0 for line in bill.tiers.values())


def test_a_tier_the_table_lacks_is_named_not_priced():
    bill = compute([("/a", f(1, GiB, {"aws": "INTELLIGENT_TIERING"}))], {}, PRICES, MONTH)
    assert bill.unpriced == ["aws (INTELLIGENT_TIERING)"] and bill.total() == Line()


def test_report_groups_first_as_asked_and_renders():
    files = [(f"/p{i}/x", f(i, GiB * i, {"aws": ""})) for i in range(1, 13)]
    bill = compute(files, {"aws": {"get": (5, 0, 100, 0)}}, PRICES, MONTH)
    report = bill_report(bill, "prefix")
    assert [s.heading for s in report.sections] == [
        "Summary", "Top prefixes", "Per store", "Per store and tier", "Requests counted"]
    table = report.sections[1].blocks[1]
    assert table.rows[0][0] == "/p12" and len(table.rows) == 10 and table.note == "and 2 more"
    assert table.rows[0][4] is None  # requests are per store, not per prefix
    assert len(report.charts()) == 3
    md = render(report, "md")
    assert "| aws |" in md and "## Requests counted" in md
