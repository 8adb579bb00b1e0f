"""cp, sync and migrate run refuse, before any byte moves, to put objects where a rule forbids;
stderr lists each object with its rule, and the command exits 1."""

from __future__ import annotations

import json

from omnifs.providers import open_provider
from tests.cli import run, toml_table


def _setup(make_settings, tmp_path):
    eu, us = make_settings("file", name="eu"), make_settings("s3", name="us")
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/catalog.db"\n\n'
                   + toml_table(eu) + 'region = "eu-west-1"\n\n'
                   + toml_table(us).replace('region = "us-east-1"\n', "")
                   + 'region = "us-east-1"\n\n'
                   '[[governance.rules]]\nname = "eu-only"\npaths = ["/eu/**"]\n'
                   'regions = ["eu-*"]\n')
    cfg.chmod(0o600)
    pe, pu = open_provider(eu), open_provider(us)
    for i in range(3):
        pe.write_bytes(f"eu/c{i}.json", b"{}")
    pe.write_bytes("pub/readme", b"hi")
    return cfg, pe, pu


def _refused(proc, n: int, what: str) -> list[str]:
    err = proc.stderr.decode().splitlines()
    assert proc.returncode == 1, err
    assert err[-1] == (f"omnifs: error: {what} refused by the governance rules: {n} object"
                       f"{'s' if n != 1 else ''} may not be stored on us (listed above); nothing "
                       "was transferred")
    return err[:-1]


def test_cp_and_sync_refuse_before_transferring(make_settings, tmp_path):
    cfg, pe, pu = _setup(make_settings, tmp_path)
    listed = _refused(run("cp", "-r", "eu:/eu", "us:/eu", config=cfg), 3, "cp")
    assert listed == [f"omnifs: refused: /eu/c{i}.json: eu-only: region us-east-1 not in "
                      "['eu-*']" for i in range(3)]
    _refused(run("sync", "eu:/", "us:/", config=cfg), 3, "sync")
    _refused(run("cp", "eu:/eu/c1.json", "us:/eu/c1.json", config=cfg), 1, "cp")
    assert [o.key for o in pu.list("")] == []
    # what no rule covers still copies
    assert run("cp", "-r", "eu:/pub", "us:/pub", config=cfg).returncode == 0
    assert pu.read_bytes("pub/readme") == b"hi"
    recs = [json.loads(x) for x in (tmp_path / "audit" / "audit.log").read_text().splitlines()]
    assert [(r["op"], r["result"], r["source"]) for r in recs] == [
        ("cp", "exit 1", "cli"), ("sync", "exit 1", "cli"), ("cp", "exit 1", "cli"),
        ("cp", "ok", "cli")]


def test_migrate_run_refuses_before_transferring(make_settings, tmp_path):
    cfg, pe, pu = _setup(make_settings, tmp_path)
    plan = tmp_path / "plan.json"
    assert run("migrate", "plan", "eu:/", "us:/", "-o", str(plan), config=cfg).returncode == 0
    listed = _refused(run("migrate", "run", str(plan), "--progress", "none", config=cfg), 3,
                      "migrate run")
    assert len(listed) == 3 and all("eu-only" in x for x in listed)
    assert [o.key for o in pu.list("")] == []
