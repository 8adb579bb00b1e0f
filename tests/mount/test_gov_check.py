"""`omnifs gov check [--fix]` and `gov report` over files a real mount wrote.

Files land in a US store; an EU residency rule added afterwards makes them
violations. ``--fix`` queues a copy to the EU store and a drop of the US
copy, which ``omnifs replicate --now`` runs: the US object goes only after
the EU copy was read back and its SHA-256 checked.
"""

from __future__ import annotations

import json

from tests.chromium import images_loaded

from .conftest import omnifs

RULE = '\n[[governance.rules]]\nname = "eu-only"\npaths = ["/eu/**"]\nregions = ["eu-*"]\n'


def test_check_fix_moves_data_out_of_a_forbidden_region(make_mount, tmp_path):
    m = make_mount(("file", "file"), copies=1, extra={"file0": {"region": "us-east-1"},
                                                      "file1": {"region": "eu-west-1"}})
    (m.mp / "eu").mkdir()
    for i in range(3):
        (m.mp / "eu" / f"c{i}.json").write_bytes(b"customer %d" % i)
    (m.mp / "us.txt").write_bytes(b"free")
    assert m.homes("eu/c0.json") == ["file0"]
    m.umount()
    m.config.write_text(m.config.read_text() + RULE)

    proc = omnifs("gov", "check", config=m.config, check=False)
    assert proc.returncode == 1
    assert "/eu/c0.json: eu-only: region us-east-1 not in ['eu-*']" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "4 files, 1 rules: 3 files in violation"

    out = omnifs("gov", "check", "--fix", config=m.config, check=False).stdout
    assert "queued: /eu/c1.json: copy to file1" in out
    assert "queued: /eu/c1.json: delete from file0 once file1 is verified" in out
    omnifs("replicate", "--now", config=m.config)
    proc = omnifs("gov", "check", "--json", config=m.config, check=False)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["clean"] is True
    for i in range(3):
        assert m.homes(f"eu/c{i}.json") == ["file1"]
        assert not m.provider("file0").exists(f"eu/c{i}.json")
        assert m.provider("file1").read_bytes(f"eu/c{i}.json") == b"customer %d" % i
    m.mount()
    assert (m.mp / "eu" / "c2.json").read_bytes() == b"customer 2"

    html = tmp_path / "gov.html"
    omnifs("gov", "report", "--format", "html", "-o", str(html), config=m.config)
    assert "eu-only" in html.read_text() and "compliant" in html.read_text()
    assert images_loaded(html, tmp_path) == (1, 1)
    md = omnifs("gov", "report", "--format", "md", config=m.config).stdout
    assert "## Rule: eu-only" in md and "No violation found." in md
    report = json.loads(omnifs("gov", "report", "--format", "json", config=m.config).stdout)
    assert report["kind"] == "governance"


def test_templates_parse_as_rules(tmp_path):
    from omnifs.config import load_config
    from omnifs.governance_templates import TEMPLATES

    out = omnifs("gov", "templates").stdout
    for name, (_, text) in TEMPLATES.items():
        assert f"# --- {name}:" in out
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(text)
        assert load_config(str(cfg)).governance.engine.rules
