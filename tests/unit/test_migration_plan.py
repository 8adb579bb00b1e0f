"""The migration plan's pure parts: listings in, actions out; the plan file's checksum."""

from __future__ import annotations

import pytest

from omnifs.migration.plan import diff, summarize
from omnifs.providers import META_SHA256, InvalidInput, ObjectInfo
from omnifs.sync_plan import Filter


def info(key, size=10, sha=None, tier=None, last_modified=100.0, known=True,
         **checksums) -> ObjectInfo:
    meta = {META_SHA256: sha} if sha else {}
    return ObjectInfo(key=key, size=size, last_modified=last_modified, metadata=meta,
                      checksums=dict(checksums), tier=tier, metadata_known=known)


def actions(entries):
    return {e.key: e.action for e in entries}


def test_copy_skip_overwrite_by_size_sha_and_native_checksum():
    src = [info("s/new"), info("s/grown", size=11), info("s/same-sha", sha="a"),
           info("s/other-sha", sha="a"), info("s/same-md5", md5="m1"),
           info("s/other-crc", crc32c="c1"), info("s/dir/deep file#%é", sha="d")]
    dst = [info("d/grown"), info("d/same-sha", sha="a", last_modified=1),
           info("d/other-sha", sha="b"), info("d/same-md5", md5="M1", last_modified=1),
           info("d/other-crc", crc32c="c2"), info("d/dir/deep file#%é", sha="d"),
           info("d/extra")]
    got = diff(src, dst, src_prefix="s", dst_prefix="d/")
    assert actions(got) == {"new": "copy", "grown": "overwrite", "same-sha": "skip",
                            "other-sha": "overwrite", "same-md5": "skip",
                            "other-crc": "overwrite", "dir/deep file#%é": "skip"}
    reasons = {e.key: e.reason for e in got}
    assert reasons["grown"] == "differs by size"
    assert reasons["same-md5"] == "same by md5"
    assert reasons["other-crc"] == "differs by crc32c"


def test_delete_only_with_delete_and_never_filtered_out_names():
    src = [info("a.txt"), info("b.log")]
    dst = [info("a.txt"), info("gone.txt"), info("kept.log"), info(".omnifs/x")]
    assert "gone.txt" not in actions(diff(src, dst))
    got = diff(src, dst, delete=True, filt=Filter(exclude=("*.log",)))
    assert actions(got) == {"a.txt": "skip", "gone.txt": "delete"}


def test_filters_select_source_keys():
    src = [info("top.txt"), info("a/b/c.txt"), info("a/b/c.bin"), info(".omnifs/catalog/x")]
    got = diff(src, [], filt=Filter(include=("a/**",), exclude=("*.bin",)))
    assert actions(got) == {"a/b/c.txt": "copy"}


def test_undecided_pairs_are_overwritten_not_skipped():
    # listings without metadata, same size, no common checksum: not provably equal
    got = diff([info("k", known=False, md5="m")], [info("k", known=False, crc32c="c")])
    assert [(e.action, e.key) for e in got] == [("overwrite", "k")]


def test_move_marks_sources_for_deletion_and_summary_counts_tiers():
    src = [info("new", size=5, tier="GLACIER"), info("same", size=7, sha="x", tier="STANDARD"),
           info("changed", size=3, tier="STANDARD")]
    dst = [info("same", size=7, sha="x", tier="Cool"), info("changed", size=4, tier="Hot"),
           info("extra", size=2, tier="Archive")]
    got = diff(src, dst, mode="move", delete=True)
    assert {e.key: e.delete_source for e in got} == {"new": True, "same": True,
                                                     "changed": True, "extra": False}
    s = summarize(got)
    assert (s["copy"]["objects"], s["copy"]["bytes"]) == (1, 5)
    assert s["copy"]["source_tiers"] == {"GLACIER": {"objects": 1, "bytes": 5}}
    assert (s["overwrite"]["objects"], s["overwrite"]["bytes"]) == (1, 3)
    assert s["overwrite"]["destination_tiers"] == {"Hot": {"objects": 1, "bytes": 4}}
    assert (s["skip"]["objects"], s["skip"]["bytes"]) == (1, 7)
    assert s["delete"]["destination_tiers"] == {"Archive": {"objects": 1, "bytes": 2}}
    assert s["delete_source"]["objects"] == 3
    assert s["delete_source"]["bytes"] == 15
    assert s["delete_source"]["source_tiers"]["STANDARD"] == {"objects": 2, "bytes": 10}


def test_copy_mode_keeps_sources_and_untiered_objects_count_under_dash():
    got = diff([info("f", size=4)], [])
    assert not got[0].delete_source
    assert summarize(got)["copy"]["source_tiers"] == {"-": {"objects": 1, "bytes": 4}}


def test_unknown_mode_is_refused():
    with pytest.raises(InvalidInput, match="unknown mode"):
        diff([], [], mode="teleport")


def _plan(catalog_id=None):
    from omnifs.migration.planfile import MigrationPlan, Place
    got = diff([info("a b/ünï#%.txt", size=3, sha="s", tier="STANDARD"), info("x", size=2)],
               [info("x", size=9, tier="Hot"), info("old")], mode="move", delete=True)
    return MigrationPlan(src=Place("s3://b/p", "s3://b", "s3://b", "p"),
                         dst=Place("az:/q", "az", "az://c", "q"), mode="move", entries=got,
                         delete=True, include=("**",), exclude=("*.tmp",),
                         catalog_id=catalog_id)


def test_plan_file_round_trips(tmp_path):
    from omnifs.migration.planfile import load
    plan = _plan("cafe")
    path = tmp_path / "plan.json"
    plan.save(path)
    back = load(path, catalog_id="cafe")
    assert back.entries == plan.entries
    assert (back.src, back.dst, back.mode, back.delete) == (plan.src, plan.dst, "move", True)
    assert (back.include, back.exclude, back.created) == (("**",), ("*.tmp",), plan.created)
    assert back.summary["delete"]["objects"] == 1


def test_an_edited_byte_is_refused(tmp_path):
    from omnifs.migration.planfile import load
    path = tmp_path / "plan.json"
    _plan().save(path)
    raw = path.read_bytes()
    edited = raw.replace(b'"size":3', b'"size":4', 1)
    assert edited != raw
    path.write_bytes(edited)
    with pytest.raises(InvalidInput, match="edited or damaged") as e:
        load(path)
    assert "\n" not in str(e.value)
    # reformatting alone (whitespace) keeps the canonical content: still accepted
    import json
    path.write_text(json.dumps(json.loads(raw)))
    assert load(path).mode == "move"


@pytest.mark.parametrize("layout", ["as saved", "one line"])
def test_an_unusable_entry_under_its_own_checksum_is_one_line(tmp_path, layout):
    """The saved layout is read an entry at a time, any other whole: same answers."""
    import json

    from omnifs.migration.planfile import checksum, load
    path = tmp_path / "plan.json"
    plan = _plan()
    plan.save(path)
    assert load(path).entries == plan.entries
    body = json.loads(path.read_text())
    del body["checksum"]
    body["entries"][0]["size"] = "three"
    if layout == "one line":
        path.write_text(json.dumps({**body, "checksum": checksum(body)}))
    else:
        lines = path.read_text().replace('"size":3', '"size":"three"', 1).splitlines()
        lines[-2] = f' "checksum": "{checksum(body)}"'
        path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match="not a valid migration plan") as e:
        load(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text,message", [
    (None, "cannot read plan"), ("{", "not valid JSON"), ("[]", "not a migration plan"),
    ('{"format": "omnifs-migration-plan", "version": 9}', "version 9 is not supported"),
])
def test_unusable_plan_files_are_one_line(tmp_path, text, message):
    from omnifs.migration.planfile import load
    path = tmp_path / "plan.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as e:
        load(path)
    assert "\n" not in str(e.value)


def test_a_plan_of_another_catalog_is_refused(tmp_path):
    from omnifs.migration.planfile import load
    path = tmp_path / "plan.json"
    _plan("aaaa").save(path)
    with pytest.raises(InvalidInput, match="belongs to catalog aaaa"):
        load(path, catalog_id="bbbb")


@pytest.mark.parametrize("page, split_max, split", [(1000, 1000, False), (1, 1000, True),
                                                    (1, 1, False)],
                         ids=["small-tree-flat", "by-directory", "too-many-directories"])
def test_the_inventory_lists_a_tree_by_directory_as_a_flat_listing_would(
        tmp_path, monkeypatch, page, split_max, split):
    """Top-level objects, directories listed in parallel (nested, odd names), a name that
    is a directory's start ("dz" beside "dir"); small trees, small directories and more than
    SPLIT_MAX directories are listed flat."""
    from omnifs.copy_options import Options
    from omnifs.migration import plan as P
    from omnifs.providers import ProviderSettings, open_provider

    monkeypatch.setattr(P, "PAGE", page)
    monkeypatch.setattr(P, "SPLIT_MAX", split_max)
    keys = ["dir/a", "dir/sub/b c", "dir2/é#%/x", "dz", "z/deep/er/y", "zz-top.txt"]
    root = tmp_path / "store"
    for k in [*("tree/" + k for k in keys), "outside/not-in-tree"]:
        (root / k).parent.mkdir(parents=True, exist_ok=True)
        (root / k).write_bytes(k.encode())
    p = open_provider(ProviderSettings(name="f", uri=f"file://{root}"))
    listed, calls = p.list, []

    def in_order(prefix="", recursive=True, metadata=True):  # as S3 and GCS list: by key
        calls.append((prefix, recursive))
        return iter(sorted(listed(prefix, recursive, metadata), key=lambda i: i.key))

    monkeypatch.setattr(p, "list", in_order)
    try:
        got = P._list(p, "tree/", Options(checkers=2))
        assert sorted(got) == sorted(keys)
        assert all(got[k].key == k and got[k].size == len(("tree/" + k).encode()) for k in keys)
        assert (("tree/", False) in calls) == (split or split_max == 1)
        assert (("tree/dir/", True) in calls) == split
        assert P._list(p, "missing/", Options(checkers=2)) == {}
    finally:
        p.close()
