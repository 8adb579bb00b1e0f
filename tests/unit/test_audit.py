"""The audit log (omnifs/audit/): the chain, its three ways of breaking, rotation, checkpoints."""

from __future__ import annotations

import json
import os

from omnifs.audit import AuditLog, export, verify
from omnifs.audit.chain import segments
from omnifs.audit.checkpoint import check, compare, load_key, sign


def _log(tmp_path, n=5, **kw):
    audit = AuditLog(tmp_path / "audit", "test", threaded=False, key_dir=tmp_path, **kw)
    for i in range(n):
        audit.record("write", f"/f{i}", uid=1000, pid=os.getpid(), rule="", result="ok")
    audit.flush()
    return audit


def _lines(tmp_path):
    return (tmp_path / "audit" / "audit.log").read_text().splitlines()


def _rewrite(tmp_path, lines):
    (tmp_path / "audit" / "audit.log").write_text("".join(f"{x}\n" for x in lines))


def test_records_hold_who_what_and_chain(tmp_path):
    _log(tmp_path, 3)
    recs = [json.loads(x) for x in _lines(tmp_path)]
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert recs[1]["prev"] == recs[0]["hash"] and recs[0]["prev"] == "0" * 64
    assert recs[0]["comm"] and recs[0]["pid"] == os.getpid() and recs[0]["uid"] == 1000
    assert recs[0]["time"].endswith("Z") and recs[0]["source"] == "test"
    assert verify(tmp_path / "audit").ok
    assert oct((tmp_path / "audit" / "audit.log").stat().st_mode & 0o777) == "0o600"


def test_an_edit_is_named(tmp_path):
    _log(tmp_path)
    lines = _lines(tmp_path)
    lines[2] = lines[2].replace('"/f2"', '"/g2"')
    _rewrite(tmp_path, lines)
    res = verify(tmp_path / "audit")
    assert res.problem == ("record seq 3 (audit.log line 3): its content does not match its "
                           "hash (edited)")


def test_a_deletion_is_named(tmp_path):
    _log(tmp_path)
    lines = _lines(tmp_path)
    del lines[1]
    _rewrite(tmp_path, lines)
    assert verify(tmp_path / "audit").problem == ("record seq 3 (audit.log line 2): expected "
                                                  "seq 2 (records deleted or reordered)")


def test_a_reordering_is_named(tmp_path):
    _log(tmp_path)
    lines = _lines(tmp_path)
    lines[1], lines[2] = lines[2], lines[1]
    _rewrite(tmp_path, lines)
    assert verify(tmp_path / "audit").problem == ("record seq 3 (audit.log line 2): expected "
                                                  "seq 2 (records deleted or reordered)")


def test_a_renumbered_forgery_breaks_the_link(tmp_path):
    _log(tmp_path)
    lines = [json.loads(x) for x in _lines(tmp_path)]
    del lines[1]
    for r in lines[1:]:  # renumber to hide the gap; the hashes are recomputed too
        r["seq"] -= 1
    from omnifs.audit.chain import canonical, digest
    for r in lines:
        r["hash"] = digest(r)
    _rewrite(tmp_path, [canonical(r).decode() for r in lines])
    assert verify(tmp_path / "audit").problem == ("record seq 2 (audit.log line 2): "
                                                  "previous-hash link broken")


def test_rotation_keeps_the_chain(tmp_path):
    audit = _log(tmp_path, 0, rotate_size=600)
    for i in range(20):
        audit.record("write", f"/file-{i}", uid=0, pid=1)
        audit.flush()
    files = segments(tmp_path / "audit")
    assert len(files) > 3 and files[0].name.startswith("audit-0000000000")
    res = verify(tmp_path / "audit")
    assert res.ok and res.records == 20 and res.last_seq == 20
    files[1].unlink()  # a whole rotated file deleted
    assert "deleted or reordered" in verify(tmp_path / "audit").problem


def test_export_since(tmp_path):
    _log(tmp_path, 3)
    assert len(list(export(tmp_path / "audit"))) == 3
    assert list(export(tmp_path / "audit", since=4102444800.0)) == []  # 2100


def test_checkpoints_detect_a_deleted_log(tmp_path):
    published = []
    audit = _log(tmp_path, 4, publish=published.append)
    assert audit.checkpoint() and not audit.checkpoint()  # only when the log grew
    key = load_key(tmp_path)
    assert oct((tmp_path / "audit.key").stat().st_mode & 0o777) == "0o600"
    hashes: dict[int, str] = {}
    res = verify(tmp_path / "audit", hashes)
    assert compare(key, {"s3": published[0]}, hashes, res.last_seq) == ([("s3", 4)], None)
    (tmp_path / "audit" / "audit.log").unlink()
    res = verify(tmp_path / "audit", hashes := {})
    assert res.ok and res.records == 0  # the chain alone cannot tell
    _, problem = compare(key, {"s3": published[0]}, hashes, res.last_seq)
    assert problem == ("checkpoint on s3 names record seq 4 but the local log ends at seq 0: "
                       "records were deleted")


def test_a_forged_checkpoint_is_refused(tmp_path):
    key = load_key(tmp_path)
    data = sign(key, 3, "ab" * 32)
    assert check(key, data)["seq"] == 3
    forged = data.replace(b'"seq":3', b'"seq":9')
    _, problem = compare(key, {"gcs": forged}, {}, 0)
    assert problem == "checkpoint on gcs: bad signature (not made with this data dir's audit key)"
