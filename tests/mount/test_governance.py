"""Governance through a real mount: WORM, legal hold and residency refusals, and their audit.

Each refusal is checked for its errno (EPERM for a protected file, EACCES
for a new file no store may hold) and for the audit record it leaves; the
shell's own tools (rm, mv, truncate, ``>``, setfattr) meet the same wall.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from omnifs.audit import verify

from .conftest import omnifs

RULES = [{"name": "sec", "paths": ["/ledger/**"], "retention": "1d"},
         {"name": "short", "paths": ["/scratch/**"], "retention": "2s"},
         {"name": "hold", "classification": "evidence", "legal_hold": True},
         {"name": "eu-only", "paths": ["/eu/**"], "regions": ["eu-*"]}]


def _records(m, wait_for: int = 0) -> list[dict]:
    """The mount's audit records (its writer appends every 0.5 s)."""
    log = m.root / "audit" / "audit.log"
    deadline = time.monotonic() + 10
    while True:
        recs = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        if len(recs) >= wait_for or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def _denials(m, n: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in _records(m) if r["result"].startswith("denied")]
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _sh(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.fixture
def gm(make_mount):
    return make_mount(("file", "file"), extra={"file0": {"region": "eu-west-1"},
                                               "file1": {"region": "us-east-1"}}, rules=RULES)


def test_worm_holds_against_the_shell_and_each_denial_is_audited(gm):
    (gm.mp / "ledger").mkdir()
    f = gm.mp / "ledger" / "q1.csv"
    f.write_bytes(b"2026,100\n")
    attempts = [
        ("delete", ["rm", "-f", str(f)]),
        ("rename", ["mv", str(f), str(gm.mp / "ledger" / "q1-old.csv")]),
        ("write", ["truncate", "-s", "0", str(f)]),  # opens the file for writing first
        ("write", ["sh", "-c", f"echo forged > {f}"]),
        ("write", ["sh", "-c", f"echo more >> {f}"]),
        ("setxattr", ["setfattr", "-n", "user.note", "-v", "x", str(f)]),
        ("chmod", ["chmod", "600", str(f)]),
    ]
    for _, argv in attempts:
        proc = _sh(*argv)
        assert proc.returncode != 0 and "not permitted" in proc.stderr, (argv, proc.stderr)
    for op, call in (("truncate", lambda: os.truncate(f, 0)), ("delete", lambda: os.unlink(f))):
        with pytest.raises(PermissionError) as e:
            call()
        assert e.value.errno == errno.EPERM
        attempts.append((op, []))
    assert f.read_bytes() == b"2026,100\n"
    denials = _denials(gm, len(attempts))
    assert [d["op"] for d in denials] == [op for op, _ in attempts]
    for d in denials:
        assert d["result"] == "denied EPERM" and d["rule"] == "sec"
        assert d["path"] == "/ledger/q1.csv" and d["uid"] == os.getuid() and d["pid"] > 0
    assert [d["comm"] for d in denials[:3]] == ["rm", "mv", "truncate"]
    assert denials[-1]["comm"] == Path("/proc/self/comm").read_text().strip()  # this test
    # a new file beside it is fine, and so are reads; its creator may set its mode and
    # xattrs before the first close (tar x, cp -p), not after
    fd = os.open(gm.mp / "ledger" / "q2.csv", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"2026,200\n")
    os.fchmod(fd, 0o444)
    os.setxattr(fd, "user.source", b"erp")
    os.close(fd)
    with pytest.raises(PermissionError):
        os.chmod(gm.mp / "ledger" / "q2.csv", 0o644)
    src = gm.root / "tar-src"
    (src / "ledger").mkdir(parents=True)
    (src / "ledger" / "q3.csv").write_bytes(b"2026,300\n")
    (src / "ledger" / "q3.csv").chmod(0o440)
    tarball = gm.root / "q3.tar"
    assert _sh("tar", "-C", str(src), "-cf", str(tarball), "ledger/q3.csv").returncode == 0
    proc = _sh("tar", "-C", str(gm.mp), "-xpf", str(tarball))
    assert proc.returncode == 0, proc.stderr
    assert (gm.mp / "ledger" / "q3.csv").stat().st_mode & 0o777 == 0o440
    assert _sh("cat", str(f)).stdout == "2026,100\n"
    # nor can the directory holding it move
    with pytest.raises(PermissionError) as e:
        os.rename(gm.mp / "ledger", gm.mp / "ledger-old")
    assert e.value.errno == errno.EPERM
    last = _denials(gm, len(attempts) + 2)[-1]
    assert (last["op"], last["rule"]) == ("rename", "sec")
    assert last["path"].startswith("/ledger/q")  # the first file it met


def test_retention_expiry_allows_deletion(gm):
    (gm.mp / "scratch").mkdir()
    f = gm.mp / "scratch" / "tmp.bin"
    f.write_bytes(b"x" * 100)
    with pytest.raises(PermissionError) as e:
        f.unlink()
    assert e.value.errno == errno.EPERM
    time.sleep(2.2)
    f.unlink()
    assert not f.exists()
    recs = _records(gm, 5)  # mkdir, create, write, the refused and the allowed delete
    ops = [(r["op"], r["result"]) for r in recs if r["path"] == "/scratch/tmp.bin"]
    assert ops[0] == ("create", "ok") and ("delete", "denied EPERM") in ops
    assert ops[-1] == ("delete", "ok")


def test_retention_counts_from_creation_so_later_changes_do_not_restart_it(gm):
    (gm.mp / "scratch").mkdir()
    a, c = gm.mp / "scratch" / "a.bin", gm.mp / "scratch" / "c.bin"
    a.write_bytes(b"a")
    c.write_bytes(b"c")
    time.sleep(1.5)
    os.link(c, gm.mp / "scratch" / "c.link")  # moves c's ctime, inside its retention
    with pytest.raises(PermissionError):
        os.chmod(a, 0o600)
    time.sleep(0.8)  # 2.3 s after creation: the 2 s rule has ended for both
    os.chmod(a, 0o600)  # each of these moves a's ctime to now
    os.rename(a, gm.mp / "scratch" / "b.bin")
    os.unlink(gm.mp / "scratch" / "b.bin")
    os.unlink(c)  # 0.8 s after the link: the link did not extend it either
    os.unlink(gm.mp / "scratch" / "c.link")
    assert sorted(os.listdir(gm.mp / "scratch")) == []
    ops = [(r["op"], r["result"]) for r in _records(gm, 9) if r["path"].startswith("/scratch/")]
    assert ("chmod", "denied EPERM") in ops
    assert [op for op, result in ops if result != "ok"] == ["chmod"]


def test_legal_hold_by_class_xattr(gm):
    f = gm.mp / "mail.eml"
    f.write_bytes(b"From: a")
    os.setxattr(f, "user.omnifs.class", b"evidence")
    with pytest.raises(PermissionError) as e:
        f.unlink()
    assert e.value.errno == errno.EPERM
    with pytest.raises(PermissionError) as e:  # nor can the class be taken away
        os.removexattr(f, "user.omnifs.class")
    assert e.value.errno == errno.EPERM
    d = _denials(gm, 2)
    assert [(x["op"], x["rule"]) for x in d] == [("delete", "hold"), ("setxattr", "hold")]


def test_residency_refuses_a_new_file_with_eacces_and_audits_it(make_mount):
    m = make_mount(("file",), copies=1, extra={"file0": {"region": "us-east-1"}}, rules=RULES)
    (m.mp / "eu").mkdir()
    with pytest.raises(PermissionError) as e:
        (m.mp / "eu" / "customer.json").write_bytes(b"{}")
    assert e.value.errno == errno.EACCES
    d = _denials(m, 1)
    assert d[0]["op"] == "create" and d[0]["result"] == "denied EACCES"
    assert d[0]["rule"] == "eu-only" and d[0]["path"] == "/eu/customer.json"


def test_the_mount_s_log_verifies_and_is_checkpointed_to_every_store(gm):
    (gm.mp / "a").write_bytes(b"1")
    os.rename(gm.mp / "a", gm.mp / "b")
    os.unlink(gm.mp / "b")
    gm.umount()  # the last batch and a checkpoint
    ops = [(r["op"], r["path"]) for r in _records(gm)]
    assert ops[:4] == [("create", "/a"), ("write", "/a"), ("rename", "/a -> /b"),
                       ("delete", "/b")]
    assert verify(gm.root / "audit").ok
    for name in gm.names:
        body = json.loads(gm.provider(name).read_bytes(".omnifs/audit/checkpoint.json"))
        assert body["seq"] == len(ops)


def test_audit_verify_and_export_from_the_cli(gm):
    (gm.mp / "ledger").mkdir()
    (gm.mp / "ledger" / "a").write_bytes(b"1")
    _sh("rm", "-f", str(gm.mp / "ledger" / "a"))
    gm.umount()
    out = omnifs("audit", "verify", config=gm.config).stdout
    assert out.startswith("audit log intact: 4 records, last seq 4; checkpoints match on 2")
    lines = omnifs("audit", "export", "--since", "1h", "--format", "jsonl",
                   config=gm.config).stdout.splitlines()
    assert [json.loads(x)["op"] for x in lines] == ["mkdir", "create", "write", "delete"]
    assert omnifs("audit", "export", "--since", "2100-01-01", config=gm.config).stdout == ""
    log = gm.root / "audit" / "audit.log"
    text = log.read_text()
    log.write_text(text.replace('"result":"denied EPERM"', '"result":"ok"'))  # an edit
    proc = omnifs("audit", "verify", config=gm.config, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ("audit log broken: record seq 4 (audit.log line 4): its content does "
                           "not match its hash (edited)\n")
    log.unlink()  # the whole local log: the stores' checkpoints still know
    proc = omnifs("audit", "verify", config=gm.config, check=False)
    assert proc.returncode == 1 and "local log ends at seq 0: records were deleted" in proc.stdout


def test_min_copies_and_distinct_regions_give_new_files_more_homes(make_mount):
    regions = {"file0": "us-east-1", "file1": "us-west-2", "file2": "eu-west-1"}
    m = make_mount(("file", "file", "file"), copies=1,
                   extra={n: {"region": r} for n, r in regions.items()},
                   rules=[{"paths": ["/records/**"], "min_copies": 2, "distinct_regions": 2}])
    (m.mp / "records").mkdir()
    (m.mp / "records" / "r.pdf").write_bytes(b"%PDF")
    (m.mp / "other.txt").write_bytes(b"one copy is enough")
    m.replicate()
    homes = m.homes("records/r.pdf")
    assert len(homes) == 2 and len({regions[h] for h in homes}) == 2, homes
    assert len(m.homes("other.txt")) == 1
