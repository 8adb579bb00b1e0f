"""`omnifs gov report` carries `gov check`'s store-side findings per rule, on moto: objects the
catalog does not know where a rule forbids them, objects stored unencrypted, Object Lock
retention out of line, and which store (or only omnifs) enforces each retention rule."""

from __future__ import annotations

import json

from omnifs.catalog import Catalog
from omnifs.providers import open_provider
from tests import servers as S
from tests.chromium import images_loaded
from tests.cli import run, toml_table
from tests.integration.test_daemon import write_file
from tests.integration.test_gov_apply import _locked_bucket
from tests.integration.test_gov_encryption import _boto, _config

RULES = ('[[governance.rules]]\nname = "phi"\npaths = ["/phi/**"]\nencryption = true\n\n'
         '[[governance.rules]]\nname = "sec"\npaths = ["/records/**"]\nretention = "7y"\n')


def _section(report: dict, heading: str) -> dict[str, dict]:
    """A report section's blocks: its summary fields by label, its tables by title."""
    sec = next(s for s in report["sections"] if s["heading"] == heading)
    out: dict[str, dict] = {}
    for b in sec["blocks"]:
        if b["type"] == "summary":
            out["fields"] = {f["label"]: f["value"] for f in b["fields"]}
        elif b["type"] == "table":
            out[b["title"].split(" (")[0]] = b
    return out


def test_report_has_the_store_side_findings_per_rule(servers, make_settings, tmp_path):
    endpoint = servers["s3"].endpoint
    vault = S.settings_for("s3", endpoint, _locked_bucket(endpoint), name="vault")
    enc, disk = make_settings("s3", name="enc"), make_settings("file", name="disk")
    mini = make_settings("minio", name="mini")  # its bucket's settings read by the minio SDK
    enc.extra["encryption"] = "AES256"
    cfg = _config(tmp_path, toml_table(vault) + "\n" + toml_table(enc)
                  + 'encryption = "AES256"\n\n' + toml_table(disk) + "\n" + toml_table(mini),
                  RULES)
    _boto(endpoint).put_bucket_encryption(
        Bucket=mini.uri.split("/")[2], ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    cat = Catalog(tmp_path / "catalog.db")
    write_file(cat, open_provider(vault), "records/a.pdf", b"%PDF a", [])
    write_file(cat, open_provider(disk), "records/b.pdf", b"%PDF b", [])
    write_file(cat, open_provider(enc), "phi/ok.txt", b"patient", [])
    cat.close()
    _boto(endpoint).put_object(Bucket=enc.uri.split("/")[2], Key="phi/raw.txt", Body=b"raw")
    open_provider(disk).write_bytes("phi/loose.txt", b"on a store without encryption")

    md = run("gov", "report", "--format", "md", "--locks", config=cfg)
    assert md.returncode == 0, md.stderr
    text = md.stdout.decode()
    assert "Objects the catalog does not know" in text and "raw.txt" in text
    assert "Store-side locks out of line" in text and "/records/a.pdf" in text

    report = json.loads(run("gov", "report", "--format", "json", "--locks", config=cfg,
                            check=True).stdout)
    top = _section(report, "Summary")["fields"]
    assert top["Verdict"] == "violations found"
    assert top["Objects the catalog does not know, out of line"] == 2
    assert top["Store checks"].startswith("5 objects listed in 4 stores")
    assert "locks read back" in top["Store checks"]
    stores = {r[0]: r for r in _section(report, "Stores (evidence)")[""]["rows"]}
    assert "object_lock: enabled" in stores["vault"][3] and stores["vault"][4] == 1
    assert "object_lock: disabled" in stores["enc"][3]
    assert stores["mini"][3] == ("retention: enforced by omnifs only (the bucket has no Object "
                                 "Lock), object_lock: disabled, encryption: AES256")

    phi = _section(report, "Rule: phi")
    unknown = {(r[0], r[1]): r for r in phi["Objects the catalog does not know"]["rows"]}
    assert set(unknown) == {("enc", "/phi/raw.txt"), ("disk", "/phi/loose.txt")}
    assert unknown[("enc", "/phi/raw.txt")][3] == "enc reports the object unencrypted"
    assert "Retention enforced" not in phi["fields"]

    sec = _section(report, "Rule: sec")
    assert sec["fields"]["Store locks out of line"] == 1  # b.pdf on disk: no lock possible
    gaps = sec["Store-side locks out of line"]["rows"]
    assert [(g[0], g[1]) for g in gaps] == [("/records/a.pdf", "vault")]
    enforced = sec["fields"]["Retention enforced"]
    assert enforced.startswith("store-enforced (locks set by `gov apply`) on vault")
    assert ("omnifs-enforced on disk (a local directory cannot enforce retention (root can "
            "remove any file))") in enforced
    assert "enc" not in enforced  # holds none of its files

    # without --locks nothing is read per object, and the report says so
    quick = json.loads(run("gov", "report", "--format", "json", config=cfg,
                           check=True).stdout)
    assert "locks not read (give --locks)" in _section(quick, "Summary")["fields"]["Store checks"]
    assert _section(quick, "Rule: sec")["fields"]["Store locks out of line"] == (
        "not read (give --locks)")

    html = tmp_path / "gov.html"
    run("gov", "report", "--format", "html", "--locks", "-o", str(html), config=cfg, check=True)
    page = html.read_text()
    assert "Objects the catalog does not know" in page and "/records/a.pdf" in page
    assert images_loaded(html, tmp_path) == (1, 1)
