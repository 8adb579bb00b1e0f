"""The scrub's comparison of claims with a listing, without servers (omnifs/scrub.py)."""

from __future__ import annotations

import time

from omnifs.cli.daemon import scrub_line
from omnifs.providers import META_SHA256, NotFound, ObjectInfo
from omnifs.scrub import (
    EXTRA,
    MISSING,
    WRONG_HASH,
    WRONG_SIZE,
    Claim,
    Problem,
    Scope,
    compare,
    pick_for_verification,
    root_missing,
)


def claim(ino: int, key: str, size: int = 10, sha: str | None = "aa",
          verified_at: float | None = None) -> Claim:
    return Claim(ino, key, 1, size, sha, 0, verified_at)


def listed(key: str, size: int = 10, sha: str | None = "aa", known: bool = True) -> ObjectInfo:
    meta = {META_SHA256: sha} if sha and known else {}
    return ObjectInfo(key, size=size, metadata=meta, metadata_known=known)


def kinds(report) -> set[tuple[str, str]]:
    return {(p.kind, p.key) for p in report.problems}


def test_compare_finds_each_kind_of_difference():
    claims = [claim(1, "same"), claim(2, "gone"), claim(3, "short"), claim(4, "other"),
              claim(5, ".omnifs/long/4f2a")]          # a fallback key: found, not extra
    listing = {o.key: o for o in (listed("same"), listed("short", size=3),
                                  listed("other", sha="bb"), listed("stray", size=7),
                                  listed(".omnifs/long/4f2a"), listed(".omnifs/health-probe"),
                                  listed("dir/", size=0))}
    known = {"same", "gone", "short", "other", ".omnifs/long/4f2a"}
    r = compare("s", claims, listing, known)
    assert kinds(r) == {(MISSING, "gone"), (WRONG_SIZE, "short"), (WRONG_HASH, "other"),
                        (EXTRA, "stray")}
    assert r.claims == 5 and r.listed == 7
    assert r.by_hash == 2 and r.by_size == 0 and r.method == "sha256"
    assert sorted(c.key for c in r.present) == [".omnifs/long/4f2a", "same"]
    hashed = next(p for p in r.problems if p.kind == WRONG_HASH)
    assert (hashed.expected_sha256, hashed.sha256, hashed.source) == ("aa", "bb", "listing")
    assert r.counts() == {MISSING: 1, WRONG_SIZE: 1, WRONG_HASH: 1, EXTRA: 1, "unreadable": 0}
    assert not r.clean


def test_a_listing_without_metadata_is_compared_by_size_only():
    claims = [claim(1, "a"), claim(2, "b")]
    listing = {"a": listed("a", known=False), "b": listed("b", sha="zz", known=False)}
    r = compare("s3", claims, listing, {"a", "b"})
    assert r.problems == [] and r.clean
    assert (r.by_hash, r.by_size, r.method) == (0, 2, "size")


def test_an_object_without_sha256_metadata_or_a_file_without_one_is_checked_by_size():
    claims = [claim(1, "a"), claim(2, "b", sha=None)]
    listing = {"a": listed("a", sha=None), "b": listed("b", sha="bb")}
    r = compare("gs", claims, listing, {"a", "b"})
    assert r.problems == [] and r.method == "size"


def test_extra_means_no_replica_row_of_any_state_points_at_it():
    # "pending" is a key a replica row (not synced yet) points at: in motion, not extra
    r = compare("s", [], {"pending": listed("pending")}, {"pending"})
    assert r.problems == []


def test_a_missing_root_makes_every_claim_missing():
    r = root_missing("s", [claim(1, "a"), claim(2, "b")],
                     NotFound("s: bucket 'x' does not exist"))
    assert r.root_missing and r.error == "s: bucket 'x' does not exist"
    assert kinds(r) == {(MISSING, "a"), (MISSING, "b")} and r.claims == 2


def test_scope_covers_a_directory_a_file_or_everything():
    assert Scope().covers("x/y") and Scope().prefix == ""
    d = Scope("a/b", False, frozenset())
    assert d.prefix == "a/b/" and d.covers("a/b/c") and not d.covers("a/bc")
    f = Scope("a/b", True, frozenset())
    assert f.prefix == "a/b" and f.covers("a/b") and not f.covers("a/b.bak")


def test_verification_takes_the_least_recently_verified_within_the_budget():
    present = [claim(1, "a", 40, verified_at=30.0), claim(2, "b", 40, verified_at=None),
               claim(3, "c", 40, verified_at=10.0), claim(4, "d", 40, verified_at=20.0)]
    assert [c.key for c in pick_for_verification(present, 100)] == ["b", "c"]
    assert pick_for_verification(present, 39) == []
    assert len(pick_for_verification(present, 10**9)) == 4


def test_problem_lines_say_what_differs():
    p = Problem(WRONG_SIZE, "aws", "k", 1, 1, path="k", expected_size=10, size=3)
    assert p.describe() == "wrong-size  aws  k: catalog 10 B, store 3 B"
    moved = Problem(MISSING, "aws", ".omnifs/long/ab", 1, 1, path="a/b")
    assert moved.describe() == "missing     aws  a/b (key .omnifs/long/ab)"
    assert "info" not in Problem(EXTRA, "aws", "x", size=1, info=listed("x")).as_dict()


def test_status_line_of_a_scrub():
    now = time.time()
    clean = {"finished": now - 120, "claims": 290, "method": "size",
             "problems": {MISSING: 0}, "verified": 0}
    assert scrub_line(clean, now) == "2 min ago: 290 replicas by size, clean"
    gone = {"finished": now - 5, "claims": 290, "root_missing": True,
            "error": "aws: bucket 'b' does not exist"}
    assert scrub_line(gone, now) == ("5 s ago: aws: bucket 'b' does not exist; its 290 "
                                     "replicas are lost")
