"""`omnifs gov apply`: retention rules become S3 Object Lock retention on moto (read back with
boto3), and a store that cannot hold a lock is named, with exit 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from omnifs.catalog import Catalog
from omnifs.providers import open_provider
from tests import servers as S
from tests.cli import run, toml_table
from tests.integration.test_daemon import write_file


def _locked_bucket(endpoint: str) -> str:
    bucket = S.unique_bucket("lock")
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return bucket


def test_apply_sets_object_lock_retention_on_s3(servers, make_settings, tmp_path):
    endpoint = servers["s3"].endpoint
    bucket = _locked_bucket(endpoint)
    s3 = S.settings_for("s3", endpoint, bucket, name="vault")
    local = make_settings("file", name="disk")
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n\n'
                   + toml_table(s3) + "\n" + toml_table(local)
                   + '\n[[governance.rules]]\nname = "sec"\npaths = ["/records/**"]\n'
                   'retention = "7y"\n'
                   '\n[[governance.rules]]\nname = "case"\npaths = ["/case/**"]\n'
                   'legal_hold = true\n')
    cfg.chmod(0o600)
    cat = Catalog(tmp_path / "catalog.db")
    pv = open_provider(s3)
    write_file(cat, pv, "records/2026.pdf", b"%PDF-1.7", [])
    write_file(cat, pv, "notes/free.txt", b"free", [])
    write_file(cat, pv, "case/mail.eml", b"From: a", [])
    cat.close()

    before = run("gov", "check", "--locks", config=cfg)
    assert before.returncode == 1
    assert b"lock out of line: /records/2026.pdf on vault: should be locked until" in before.stdout
    dry = run("gov", "apply", "--dry-run", config=cfg)
    assert dry.returncode == 0 and b"would lock until" in dry.stdout
    done = run("gov", "apply", config=cfg)
    assert done.returncode == 0, done.stderr
    assert b"/records/2026.pdf on vault: locked until" in done.stdout
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    # read back with HeadObject: moto's server does not implement GetObjectRetention (500)
    got = client.head_object(Bucket=bucket, Key=pv.object_name("records/2026.pdf"))
    assert got["ObjectLockMode"] == "COMPLIANCE"
    until = got["ObjectLockRetainUntilDate"]
    assert abs(until - (datetime.now(UTC) + timedelta(days=7 * 365))) < timedelta(hours=1)
    # the store itself now refuses to delete that version, whoever asks
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=pv.object_name("records/2026.pdf"),
                             VersionId=got["VersionId"])
    free = client.head_object(Bucket=bucket, Key=pv.object_name("notes/free.txt"))
    assert "ObjectLockMode" not in free
    held = client.head_object(Bucket=bucket, Key=pv.object_name("case/mail.eml"))
    assert held["ObjectLockLegalHoldStatus"] == "ON" and "ObjectLockMode" not in held
    report = run("gov", "report", "--format", "md", config=cfg).stdout.decode()
    rows = {line.split("|")[1].strip(): line for line in report.splitlines()
            if line.startswith("| vault") or line.startswith("| disk")}
    assert "object\\_lock: enabled, encryption: none" in rows["vault"]  # markdown-escaped
    assert "a local directory cannot enforce retention" in rows["disk"]
    assert run("gov", "check", "--locks", config=cfg).returncode == 0
    again = run("gov", "apply", config=cfg)
    assert b"0 object(s) locked, 2 already locked long enough, 0 not lockable" in again.stdout

    # a copy on a store that cannot lock: named, and the command fails
    cat = Catalog(tmp_path / "catalog.db")
    write_file(cat, open_provider(local), "records/2027.pdf", b"%PDF", [])
    cat.close()
    proc = run("gov", "apply", config=cfg)
    assert proc.returncode == 1
    assert (b"disk: cannot lock: a local directory cannot enforce retention (root can remove "
            b"any file)") in proc.stdout


def test_apply_sets_object_lock_retention_on_minio_through_its_sdk(servers, make_settings,
                                                                   tmp_path):
    endpoint = servers["s3"].endpoint  # moto serves the MinIO API too
    bucket = _locked_bucket(endpoint)
    mini = S.settings_for("minio", endpoint, bucket, name="mini")
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n\n' + toml_table(mini)
                   + '\n[[governance.rules]]\nname = "sec"\npaths = ["/records/**"]\n'
                   'retention = "7y"\n'
                   '\n[[governance.rules]]\nname = "case"\npaths = ["/case/**"]\n'
                   'legal_hold = true\n')
    cfg.chmod(0o600)
    cat = Catalog(tmp_path / "catalog.db")
    pv = open_provider(mini)
    write_file(cat, pv, "records/2026.pdf", b"%PDF-1.7", [])
    write_file(cat, pv, "case/mail.txt", b"From: a", [])
    cat.close()
    assert run("gov", "check", "--locks", config=cfg).returncode == 1
    done = run("gov", "apply", config=cfg)
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"2 object(s) locked, 0 already locked long enough, 0 not lockable" in done.stdout
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    got = client.head_object(Bucket=bucket, Key=pv.object_name("records/2026.pdf"))
    assert got["ObjectLockMode"] == "COMPLIANCE"
    until = got["ObjectLockRetainUntilDate"]
    assert abs(until - (datetime.now(UTC) + timedelta(days=7 * 365))) < timedelta(hours=1)
    held = client.head_object(Bucket=bucket, Key=pv.object_name("case/mail.txt"))
    assert held["ObjectLockLegalHoldStatus"] == "ON"
    after = run("gov", "check", "--locks", config=cfg)
    assert after.returncode == 0, after.stdout  # read back: in line
    again = run("gov", "apply", config=cfg)
    assert b"0 object(s) locked, 2 already locked long enough" in again.stdout

def test_apply_sets_a_gcs_bucket_retention_policy_and_names_what_only_omnifs_enforces(
        servers, make_settings, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    archive, plain, blob = (make_settings("gs", name="archive"), make_settings("gs", name="plain"),
                            make_settings("az", name="blob"))
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n\n'
                   + "\n".join(toml_table(s) for s in (archive, plain, blob))
                   + '\n[governance]\nbucket_retention = ["archive"]\n'
                   '\n[[governance.rules]]\nname = "sec"\npaths = ["/records/**"]\n'
                   'retention = "30d"\n'
                   '\n[[governance.rules]]\nname = "case"\npaths = ["/records/case/**"]\n'
                   'legal_hold = true\n')
    cfg.chmod(0o600)
    cat = Catalog(tmp_path / "catalog.db")
    write_file(cat, open_provider(archive), "records/2026.pdf", b"%PDF-1.7", [])
    write_file(cat, open_provider(archive), "records/2027.pdf", b"%PDF-1.7", [])
    write_file(cat, open_provider(plain), "records/2028.pdf", b"%PDF", [])
    write_file(cat, open_provider(blob), "records/2029.pdf", b"%PDF", [])
    write_file(cat, open_provider(archive), "notes/free.txt", b"free", [])
    cat.close()
    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": servers["gs"].endpoint})
    bucket = client.bucket(archive.uri.split("/")[2])

    dry = run("gov", "apply", "--dry-run", config=cfg)
    out = dry.stdout.decode()
    assert "/records/2026.pdf on archive: would lock by the bucket's retention policy " \
           "(2592000 s)" in out
    assert ("archive: bucket retention policy would be set to 2592000 s (30 days; it was "
            "none)") in out
    bucket.reload()
    assert bucket.retention_period is None  # a dry run sets nothing
    done = run("gov", "apply", config=cfg)
    out = done.stdout.decode()
    assert done.returncode == 1  # plain and blob cannot lock: only omnifs enforces it there
    assert ("plain: cannot lock: a GCS retention policy holds the whole bucket: list the "
            "store in [governance] bucket_retention") in out
    assert "blob: cannot lock: Azure immutability policies are not wired (Azurite" in out
    assert ("does not implement them); the rule is omnifs-enforced there (mount, daemon, CLI), "
            "not store-enforced") in out
    assert "2 object(s) locked, 0 already locked long enough, 2 not lockable" in out
    bucket.reload()
    assert bucket.retention_period == 30 * 86400  # read back from the store
    assert client.get_bucket(plain.uri.split("/")[2]).retention_period is None
    again = run("gov", "apply", config=cfg).stdout.decode()
    assert "0 object(s) locked, 2 already locked long enough, 2 not lockable" in again

    report = json.loads(run("gov", "report", "--format", "json", "--catalog-only",
                            config=cfg, check=True).stdout)
    sec = next(s for s in report["sections"] if s["heading"] == "Rule: sec")
    fields = {f["label"]: f["value"] for f in sec["blocks"][0]["fields"]}
    enforced = fields["Retention enforced"]
    assert enforced.startswith("store-enforced (locks set by `gov apply`) on archive;")
    assert "omnifs-enforced on plain (a GCS retention policy holds the whole bucket" in enforced
    assert "omnifs-enforced on blob (Azure immutability policies are not wired" in enforced
    stores = next(s for s in report["sections"] if s["heading"] == "Stores (evidence)")
    rows = {r[0]: r[3] for r in stores["blocks"][0]["rows"]}
    assert rows["archive"] == ("retention: enforced by the store (bucket retention policy), "
                               "retention_policy: 2592000 s")
    assert rows["plain"].startswith("retention: enforced by omnifs only (")
    assert rows["plain"].endswith("), retention_policy: none")

    # a legal hold on a GCS copy: not wired, said so, and omnifs enforces it
    cat = Catalog(tmp_path / "catalog.db")
    # (.txt: the GCS emulator drops the connection on an upload named *.eml, message/rfc822)
    write_file(cat, open_provider(archive), "records/case/mail.txt", b"From: a", [])
    cat.close()
    held = run("gov", "apply", config=cfg).stdout.decode()
    assert "archive: cannot hold: GCS object holds are not wired" in held

    cfg.write_text(cfg.read_text().replace('["archive"]', '["blob"]'))
    bad = run("gov", "apply", config=cfg)
    assert bad.returncode == 2
    lines = bad.stderr.decode().strip().splitlines()
    assert lines == [f"omnifs: error: {cfg}: [governance] bucket_retention: 'blob' is not a gs:// "
                     "store in [providers] (a bucket retention policy is GCS's)"], lines
