"""Governance with the store's lock forced off: retention is enforced by omnifs, and said so.

A moto bucket created with Object Lock, whose provider table says
``disable = ["object_lock"]``: the mount still refuses to delete or change a
file under a ``retention`` rule (omnifs-enforced, as on a store that has no
lock), ``gov apply`` leaves the store's lock alone and names the store with
the reason (exit 1: the rule holds only where omnifs is the way in), and the
compliance report says who enforces retention on each store.
"""

from __future__ import annotations

import errno
import os

import boto3
import pytest

from omnifs.config import load_config
from omnifs.governance_apply import apply
from omnifs.governance_report import read_back
from tests import servers as S
from tests.integration.test_gov_apply import _locked_bucket

RULES = [{"name": "sec", "paths": ["/records/**"], "retention": "7y"}]


def test_retention_without_the_store_s_lock_is_enforced_by_omnifs(make_mount, servers):
    endpoint = servers["s3"].endpoint
    bucket = _locked_bucket(endpoint)
    vault = S.settings_for("s3", endpoint, bucket, name="vault")
    m = make_mount(settings={"vault": vault}, copies=1, rules=RULES,
                   extra={"vault": {"disable": ["object_lock"]}})
    (m.mp / "records").mkdir()
    f = m.mp / "records" / "2026.pdf"
    f.write_bytes(b"%PDF-1.7")
    for call in (lambda: os.unlink(f), lambda: os.truncate(f, 0)):
        with pytest.raises(PermissionError) as e:
            call()
        assert e.value.errno == errno.EPERM
    assert f.read_bytes() == b"%PDF-1.7"

    why = "object lock disabled by config ([providers.vault] disable)"
    cfg = load_config(m.config)
    cat = m.catalog()
    try:  # `omnifs gov apply`, in this process (it prints these lines, and exits 1)
        applied = apply(cat, cfg)
    finally:
        cat.close()
    assert applied.failed == 1 and applied.locked == 0
    assert any(line.startswith(f"vault: cannot lock: {why}; the rule is omnifs-enforced")
               for line in applied.lines)
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    head = client.head_object(Bucket=bucket, Key=m.provider("vault").object_name(
        "records/2026.pdf"))
    assert "ObjectLockMode" not in head  # the store's lock was not used
    # the compliance report's evidence column, per store: who enforces retention
    assert read_back(cfg)["vault"].settings == f"retention: enforced by omnifs only ({why})"
