"""The pure rules of cp -r / sync: equality trust order, globs, deletes."""

from __future__ import annotations

import pytest

from omnifs.providers import META_MTIME, META_SHA256, ObjectInfo
from omnifs.sync_plan import Filter, build_plan, compare, settle


def info(key="k", size=10, sha=None, mtime=None, last_modified=100.0, **checksums) -> ObjectInfo:
    meta = {}
    if sha:
        meta[META_SHA256] = sha
    if mtime is not None:
        meta[META_MTIME] = repr(mtime)
    return ObjectInfo(key=key, size=size, last_modified=last_modified, metadata=meta,
                      checksums=dict(checksums))


def test_size_beats_everything():
    v = compare(info(size=1, sha="a"), info(size=2, sha="a"))
    assert (v.same, v.by) == (False, "size")


def test_sha256_beats_checksums_and_mtime():
    assert compare(info(sha="a", md5="x"), info(sha="a", md5="y", last_modified=5)).by == "sha256"
    v = compare(info(sha="a"), info(sha="b"))
    assert (v.same, v.by) == (False, "sha256")


def test_native_checksum_when_no_sha():
    v = compare(info(md5="AB"), info(md5="ab", last_modified=1))
    assert (v.same, v.by) == (True, "md5")
    v = compare(info(crc32c="1"), info(crc32c="2"))
    assert (v.same, v.by) == (False, "crc32c")
    # one side's sha alone does not decide
    assert compare(info(sha="a", md5="m"), info(md5="m")).by == "md5"


def test_mtime_last_with_window():
    v = compare(info(mtime=100.0), info(last_modified=100.5, mtime=None, sha=None))
    assert v.by == "mtime" and v.same
    # a copy omnifs made carries the exact mtime: a different one means changed
    v = compare(info(mtime=100.2), info(mtime=100.0))
    assert v.by == "mtime" and not v.same
    assert not compare(info(last_modified=100), info(last_modified=200)).same


def test_listing_without_metadata_asks_for_head():
    bare = ObjectInfo(key="k", size=10, last_modified=100.0, metadata_known=False)
    assert compare(bare, bare).need_metadata
    assert compare(bare, info(sha="a")).need_metadata
    assert not compare(info(sha="a"), info(sha="a")).need_metadata
    # known to have no metadata: size + mtime decide, no head
    none = ObjectInfo(key="k", size=10, last_modified=100.0)
    v = compare(none, none)
    assert (v.same, v.by, v.need_metadata) == (True, "mtime", False)
    # a native checksum both listings carry decides without metadata
    v = compare(ObjectInfo(key="k", size=10, checksums={"md5": "x"}, metadata_known=False),
                ObjectInfo(key="k", size=10, checksums={"md5": "x"}, metadata_known=False))
    assert (v.same, v.by, v.need_metadata) == (True, "md5", False)


@pytest.mark.parametrize(("pattern", "key", "hit"), [
    ("*.log", "a.log", True),
    ("*.log", "deep/dir/a.log", True),       # no "/": matches basenames anywhere
    ("dir/*.log", "dir/a.log", True),
    ("dir/*.log", "dir/sub/a.log", False),   # "*" stops at "/"
    ("dir/**", "dir/sub/a.log", True),
    ("**/x", "x", True),
    ("/top.txt", "top.txt", True),
    ("/top.txt", "sub/top.txt", False),
    ("file?.txt", "file1.txt", True),
    ("[ab].txt", "b.txt", True),
    ("[!ab].txt", "b.txt", False),
    ("ünï*", "ünïcødé", True),
])
def test_globs(pattern, key, hit):
    assert Filter(include=(pattern,)).wants(key) is hit


def test_filter_exclude_include_and_reserved():
    f = Filter(include=("*.txt",), exclude=("secret/**",))
    assert f.wants("a.txt") and not f.wants("a.bin") and not f.wants("secret/a.txt")
    assert not Filter().wants(".omnifs/journal")


def test_build_plan_copy_skip_delete():
    src = {"same": info(sha="1"), "changed": info(sha="2"), "new": info(), "skip.log": info()}
    dst = {"same": info(sha="1"), "changed": info(sha="x"), "extra": info(), "old.log": info()}
    plan = build_plan(src, dst, delete=True, filt=Filter(exclude=("*.log",)))
    assert [a.rel for a in plan.copies] == ["changed", "new"]
    assert [a.rel for a in plan.skips] == ["same"]
    # filtered names are outside the sync: "old.log" survives --delete
    assert [a.rel for a in plan.deletes] == ["extra"]
    assert plan.bytes_to_copy == 20
    assert plan.lines()[-1] == "plan: 2 to copy (20 B), 1 unchanged, 1 to delete"
    assert not build_plan(src, dst).deletes


def test_overwrite_and_settle():
    bare = ObjectInfo(key="k", size=10, last_modified=100.0, metadata_known=False)
    plan = build_plan({"a": bare, "b": bare}, {"a": bare, "b": bare})
    assert len(plan.undecided) == 2 and not plan.copies
    # an undecided object must not look like a copy to whoever starts work as keys arrive
    assert {a.op for a in plan.undecided} == {"check"}
    settle(plan, [(plan.undecided[0], info(sha="1"), info(sha="1")),
                  (plan.undecided[1], info(sha="1"), info(sha="2"))])
    assert [a.rel for a in plan.skips] == ["a"] and [a.rel for a in plan.copies] == ["b"]
    assert not plan.undecided
    assert len(build_plan({"a": bare}, {"a": bare}, overwrite=True).copies) == 1
