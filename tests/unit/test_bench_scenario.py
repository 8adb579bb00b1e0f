"""Bench scenarios as data: the built-ins parse, bad files fail in one line naming file and key,
and the operation sequence is the same whoever asks for it."""

from __future__ import annotations

import pytest

from omnifs.bench import scenario as sc
from omnifs.bench.plan import counted, operations
from omnifs.errors import ConfigError, InvalidInput


def test_every_builtin_parses_and_has_a_quick_variant():
    names = sc.builtin_names()
    assert {"small-object", "large-object", "mixed", "listing-heavy", "metadata"} <= set(names)
    for name in names:
        s = sc.builtin(name)
        assert s.name == name and s.description
        q = s.quick()
        assert q.cells() and q.digest() != s.digest()
        assert q.count is None or q.count <= (s.count or q.count)


def test_a_file_scenario(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('sizes = ["4KiB", "1MiB"]\nconcurrency = [1, 64]\nduration = 2.5\n'
                 'objects = 10\n[mix]\nget = 3\nput = 1\n[quick]\ncount = 5\n')
    s = sc.find(str(f))
    assert (s.name, s.sizes, s.concurrency, s.count, s.duration) == (
        "mine", (4096, 1 << 20), (1, 64), None, 2.5)
    assert s.cells() == [(4096, 1), (4096, 64), (1 << 20, 1), (1 << 20, 64)]
    assert (s.quick().count, s.quick().duration) == (5, None)


@pytest.mark.parametrize(("body", "key"), [
    ('sizes = ["4KiB"]\ncount = 1\nbogus = 1\n[mix]\nget = 1\n', "bogus"),
    ('sizes = ["1KiB"]\n[mix]\nget = 1\n', "sizes"),
    ('sizes = ["2GiB"]\n[mix]\nget = 1\n', "sizes"),
    ('sizes = ["lots"]\n[mix]\nget = 1\n', "sizes"),
    ('concurrency = [0]\n[mix]\nget = 1\n', "concurrency"),
    ('concurrency = [65]\n[mix]\nget = 1\n', "concurrency"),
    ('count = 5\nduration = 1\n[mix]\nget = 1\n', "duration"),
    ('duration = -1\n[mix]\nget = 1\n', "duration"),
    ('count = "many"\n[mix]\nget = 1\n', "count"),
    ('sizes = ["4KiB"]\n', "mix"),
    ('[mix]\nfetch = 1\n', "mix.fetch"),
    ('[mix]\nget = 0\n', "mix"),
    ('[mix]\nmultipart = 1\n', "sizes"),
    ('[mix]\nget = 1\n[quick]\nname = "x"\n', "quick.name"),
    ('[mix]\nget = 1\n[quick]\nconcurrency = [100]\n', "quick.concurrency"),
    ('kind = "disk"\n[mix]\nget = 1\n', "kind"),
    ('kind = "mount"\nworkload = "dance"\n', "workload"),
    ('kind = "mount"\nworkload = "ls-l"\n', "files"),
    ('name = "a b"\n[mix]\nget = 1\n', "name"),
])
def test_a_bad_file_fails_in_one_line_naming_file_and_key(tmp_path, body, key):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as e:
        sc.load_file(f)
    text = str(e.value)
    assert text.startswith(f"{f}: {key}: "), text
    assert "\n" not in text


def test_not_toml_and_unknown_names(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("sizes = [")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        sc.load_file(f)
    with pytest.raises(InvalidInput, match="no built-in scenario 'nope'"):
        sc.find("nope")


def test_the_sequence_is_seeded_and_deletes_only_what_landed():
    s = sc.builtin("mixed")
    a = operations(s, 4096, 4)
    b = operations(s, 4096, 4)
    first = [next(a) for _ in range(500)]
    assert first == [next(b) for _ in range(500)]
    written = {}
    for n, op in enumerate(first):
        if op.kind in ("put", "copy"):
            written[op.key] = n
        if op.kind == "delete":
            assert n - written.pop(op.key) >= 8
    kinds = counted(s, 4096, 4, 500)
    assert set(kinds) == {"get", "put", "head", "range_get", "delete", "copy"}
    assert kinds["get"] > kinds["put"] > kinds["copy"]
