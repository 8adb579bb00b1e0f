"""A store's ``encryption`` setting on every write, read back by `omnifs gov check`, and the
check's store side (objects the catalog does not know, Object Lock read back) on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from omnifs.catalog import Catalog
from omnifs.providers import open_provider
from tests import servers as S
from tests.cli import run, toml_table
from tests.integration.test_daemon import write_file
from tests.integration.test_gov_apply import _locked_bucket


def _boto(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1")


def _config(tmp_path: Path, tables: str, rules: str) -> Path:
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n\n{tables}\n{rules}')
    cfg.chmod(0o600)
    return cfg


def test_encryption_sent_read_back_and_enforced(servers, make_settings, tmp_path):
    endpoint = servers["s3"].endpoint
    enc, kms, disk = (make_settings("s3", name="enc"), make_settings("minio", name="kms"),
                      make_settings("file", name="disk"))
    kms.extra["encryption"] = "aws:kms:key-1"
    cfg = _config(tmp_path, toml_table(enc) + 'encryption = "AES256"\n\n' + toml_table(kms)
                  + 'encryption = "aws:kms:key-1"\n\n' + toml_table(disk),
                  '[[governance.rules]]\nname = "phi"\npaths = ["/phi/**"]\nencryption = true\n')
    enc.extra["encryption"] = "AES256"
    client = _boto(endpoint)
    cat = Catalog(tmp_path / "catalog.db")
    pv = open_provider(enc)
    write_file(cat, pv, "phi/a.txt", b"patient a", [])
    # an object written before the store had its setting: same bucket, no encryption
    plain = open_provider(S.settings_for("s3", endpoint, pv.bucket, name="enc"))
    write_file(cat, plain, "phi/old.txt", b"patient old", [])
    cat.close()
    pv.write_bytes("phi/stray.txt", b"unknown to the catalog")  # the store's setting: encrypted
    client.put_object(Bucket=pv.bucket, Key="phi/raw.txt", Body=b"raw")  # unencrypted
    open_provider(disk).write_bytes("phi/loose.txt", b"on a store without encryption")

    head = client.head_object(Bucket=pv.bucket, Key="phi/a.txt")
    assert head["ServerSideEncryption"] == "AES256"
    assert "ServerSideEncryption" not in client.head_object(Bucket=pv.bucket, Key="phi/old.txt")

    proc = run("gov", "check", config=cfg)
    out = proc.stdout.decode()
    assert proc.returncode == 1, proc.stderr
    assert "/phi/old.txt: phi: enc reports the object unencrypted" in out
    assert "enc:/phi/raw.txt: phi: enc reports the object unencrypted (not in the catalog" in out
    assert ("disk:/phi/loose.txt: phi: store disk has no server-side encryption setting "
            "(not in the catalog") in out
    assert "a.txt" not in out and "stray" not in out
    assert ("stores: 5 objects listed in 3 stores, 2 violation(s) by objects the catalog "
            "does not know") in out
    assert run("gov", "check", "--catalog-only", config=cfg).returncode == 0

    fixed = run("gov", "check", "--fix", config=cfg).stdout.decode()
    assert "queued: /phi/old.txt: copy to kms" in fixed
    assert "queued: /phi/old.txt: delete from enc once kms is verified" in fixed
    assert "raw.txt" not in fixed.split("queued", 1)[1]  # unknown objects: reported only
    run("replicate", "--now", config=cfg, check=True)
    moved = client.head_object(Bucket=kms.uri.split("/")[2], Key="phi/old.txt")
    assert moved["ServerSideEncryption"] == "aws:kms" and moved["SSEKMSKeyId"] == "key-1"
    gone = client.list_objects_v2(Bucket=pv.bucket, Prefix="phi/old.txt").get("KeyCount")
    assert gone == 0
    after = run("gov", "check", config=cfg).stdout.decode()
    assert "/phi/old.txt" not in after and "raw.txt" in after


def test_unknown_object_lock_read_back(servers, make_settings, tmp_path):
    endpoint = servers["s3"].endpoint
    vault = S.settings_for("s3", endpoint, _locked_bucket(endpoint), name="vault")
    cfg = _config(tmp_path, toml_table(vault), '[[governance.rules]]\nname = "sec"\n'
                  'paths = ["/records/**"]\nretention = "7y"\n')
    Catalog(tmp_path / "catalog.db").close()
    client = _boto(endpoint)
    bucket = vault.uri.split("/")[2]
    client.put_object(Bucket=bucket, Key="records/x.pdf", Body=b"%PDF")
    client.put_object(Bucket=bucket, Key="notes/free.txt", Body=b"free")
    assert run("gov", "check", config=cfg).returncode == 0  # no HEAD without --locks
    proc = run("gov", "check", "--locks", config=cfg)
    assert proc.returncode == 1
    assert b"vault:/records/x.pdf: sec: not locked, the rule wants " in proc.stdout
    assert b"free.txt" not in proc.stdout
    client.put_object_retention(Bucket=bucket, Key="records/x.pdf", Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=8 * 365)})
    assert run("gov", "check", "--locks", config=cfg).returncode == 0


def test_encryption_setting_validated(make_settings, tmp_path):
    s3, disk = make_settings("s3", name="enc"), make_settings("file", name="disk")
    for table, said in (
            (toml_table(s3) + 'encryption = "AES128"\n',
             '[providers.enc] encryption: expected "AES256", "aws:kms" or "aws:kms:KEY-ID", '
             "got 'AES128'"),
            (toml_table(disk) + 'encryption = "AES256"\n',
             "[providers.disk] encryption: file:// stores have no server-side encryption"),
            (toml_table(s3).replace("s3://", "gs://") + 'encryption = "my-key"\n',
             "[providers.enc] encryption: expected a KMS key name")):
        cfg = _config(tmp_path, table, "")
        proc = run("gov", "check", config=cfg)
        assert proc.returncode == 2
        lines = proc.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and said in lines[0] and str(cfg) in lines[0], lines
