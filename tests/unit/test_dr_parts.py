"""Disaster recovery's pure parts: [dr] config, schedules, retention, encryption, time points."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from omnifs.config import parse_config
from omnifs.dr import crypto
from omnifs.dr.config import Retention, Schedule, parse_schedule
from omnifs.dr.retention import keep
from omnifs.dr.when import parse_time, pick
from omnifs.errors import ConfigError, IntegrityError, InvalidInput


def cfg(tmp_path: Path, dr: dict):
    store = tmp_path / "live"
    store.mkdir(exist_ok=True)
    data = {"providers": {"live": {"uri": f"file://{store}"}}, "dr": dr}
    return parse_config(data, "omnifs.toml", tmp_path)


def error(tmp_path: Path, dr: dict) -> str:
    with pytest.raises(ConfigError) as e:
        cfg(tmp_path, dr)
    text = str(e.value)
    assert "\n" not in text and text.startswith("omnifs.toml: ")
    return text


def test_a_backup_table_parses(tmp_path):
    c = cfg(tmp_path, {"rpo": "15m", "rto": "1h", "keep_versions_for": "7d", "backups": [
        {"name": "vault", "uri": f"file://{tmp_path}/vault", "schedule": "0 3 * * *",
         "keep_last": 3, "daily": 7, "paths": ["/a/", "/b"], "key_file": "k"},
        {"target": "live", "prefix": "dr", "schedule": "every 2h"}]})
    a, b = c.dr.backups
    assert (c.dr.rpo, c.dr.rto, c.dr.keep_versions_for) == (900, 3600, 7 * 86400)
    assert a.schedule == Schedule(cron="0 3 * * *") and a.paths == ("/a", "/b")
    assert a.retention == Retention(keep_last=3, daily=7) and a.key_file == tmp_path / "k"
    assert a.root == "" and not a.shared
    assert b.name == "live-dr" and b.root == ".omnifs/dr/dr/" and b.shared
    assert b.schedule == Schedule(interval=7200)
    assert c.dr.backup("vault") is a and c.dr.backup(None) is a


def test_config_mistakes_are_one_line(tmp_path):
    assert "holds live replicas; give it a separate prefix" in error(
        tmp_path, {"backups": [{"target": "live"}]})
    assert "is where [providers.live] keeps live replicas" in error(
        tmp_path, {"backups": [{"uri": f"file://{tmp_path}/live"}]})
    assert "is not a provider of [providers]" in error(
        tmp_path, {"backups": [{"target": "nope", "prefix": "x"}]})
    assert "bad cron expression" in error(
        tmp_path, {"backups": [{"target": "live", "prefix": "x", "schedule": "61 * * * *"}]})
    assert "neither an interval" in error(
        tmp_path, {"backups": [{"target": "live", "prefix": "x", "schedule": "often"}]})
    assert "keep_last: expected a count" in error(
        tmp_path, {"backups": [{"target": "live", "prefix": "x", "keep_last": -1}]})
    assert "not a duration" in error(tmp_path, {"rpo": "soon"})
    assert "unknown key 'rpoo'" in error(tmp_path, {"rpoo": "1h"})
    assert "either target" in error(tmp_path, {"backups": [{"prefix": "x"}]})
    assert "needs a [[dr.backups]]" in error(tmp_path, {"keep_versions_for": "1d"})


def test_schedules():
    t = datetime(2026, 1, 1, 1, 30, tzinfo=UTC).timestamp()
    cron = parse_schedule("0 3 * * *", "x")
    assert cron.next_after(t, t + 1) == datetime(2026, 1, 1, 3, 0, tzinfo=UTC).timestamp()
    assert cron.next_after(None, t) == t
    assert parse_schedule("15m", "x").next_after(t, t) == t + 900


def test_retention_like_restic_forget():
    day = 86400.0
    base = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
    # two backups a day for ten days
    times = [base + d * day + h * 3600 for d in range(10) for h in (1, 13)]
    assert keep(times, Retention()) == set(range(20))
    assert keep(times, Retention(keep_last=3)) == {17, 18, 19}
    assert keep(times, Retention(daily=3)) == {15, 17, 19}
    assert keep(times, Retention(keep_last=1, weekly=2)) == {19, 13}
    assert keep(times, Retention(monthly=5)) == {19}
    assert keep(times, Retention(hourly=2, daily=1)) == {18, 19}


def test_encryption_round_trip_and_tampering(tmp_path):
    key = os.urandom(32)
    for size in (0, 1, crypto.CHUNK, crypto.CHUNK * 2 + 5):
        plain = os.urandom(size)
        sealed = crypto.Encrypting(io.BytesIO(plain), size, key).read()
        assert len(sealed) == crypto.sealed_size(size)
        assert crypto.Decrypting(io.BytesIO(sealed), key).read() == plain
    sealed = bytearray(crypto.Encrypting(io.BytesIO(b"x" * 100), 100, key).read())
    sealed[30] ^= 1
    with pytest.raises(IntegrityError, match="decryption failed"):
        crypto.Decrypting(io.BytesIO(bytes(sealed)), key).read()
    big = crypto.Encrypting(io.BytesIO(b"y" * (crypto.CHUNK + 9)), crypto.CHUNK + 9, key).read()
    with pytest.raises(IntegrityError):  # cut after the first piece
        crypto.Decrypting(io.BytesIO(big[:crypto.CHUNK + 33]), key).read()
    with pytest.raises(IntegrityError):
        crypto.Decrypting(io.BytesIO(bytes(big)), os.urandom(32)).read()


def test_key_files(tmp_path):
    path = tmp_path / "k"
    crypto.new_key_file(path)
    assert len(crypto.load_key(path)) == 32 and (path.stat().st_mode & 0o777) == 0o600
    (tmp_path / "hex").write_text(os.urandom(32).hex())
    assert len(crypto.load_key(tmp_path / "hex")) == 32
    with pytest.raises(ConfigError, match="does not exist: encrypted backups cannot"):
        crypto.load_key(tmp_path / "missing")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ConfigError, match="expected 32 bytes"):
        crypto.load_key(tmp_path / "short")
    assert crypto.object_id(None, "ab" * 32) == "ab" * 32
    assert crypto.object_id(b"k" * 32, "ab" * 32) != "ab" * 32


def test_points_in_time():
    now = datetime(2026, 12, 7, 12, tzinfo=UTC).timestamp()
    assert parse_time("latest", now) == now
    assert parse_time("2h ago", now) == now - 7200
    assert parse_time("2026-12-07T10:00:00Z", now) == now - 7200
    assert parse_time("2026-12-07 10:00", now) == now - 7200
    assert parse_time("20261207T100000.500000Z", now) == now - 7199.5
    with pytest.raises(InvalidInput, match="not a time"):
        parse_time("yesterday-ish", now)
    from omnifs.dr.target import Listed

    listed = [Listed("a", 10, 1, 1, 1), Listed("b", 20, 1, 1, 1)]
    assert pick(listed, 15).id == "a" and pick(listed, 20).id == "b"
    with pytest.raises(InvalidInput, match="no backup at or before"):
        pick(listed, 5)


def test_manifest_selection_and_overlay_of_kept_versions():
    from omnifs.dr.manifest import Entry, Manifest
    from omnifs.dr.versions import KeptVersion, overlay

    def f(path: str, sha: str, links=()) -> Entry:
        return Entry(path, "file", 0o100644, 0, 0, 1, 1, 3, sha, links=list(links))

    m = Manifest("id", 100.0, "vault", ["/"], "h", [
        Entry("/", "dir", 0o40755, 0, 0, 1, 1), Entry("/a", "dir", 0o40755, 0, 0, 1, 1),
        f("/a/x", "x1", links=["/b/x-link"]), f("/a/y", "y1"), f("/c", "c1")])
    assert [e.path for e in m.select("/a")] == ["/a", "/a/x", "/a/y"]
    assert m.select("/a")[1].links == []  # the link outside /a is not restored there
    picked = m.select("/b")
    assert [(e.path, e.sha256) for e in picked] == [("/b/x-link", "x1")]
    assert m.encode() and Manifest.decode(m.encode(), "m").entries[2].links == ["/b/x-link"]

    kept = [
        # x: v2 made after the backup, replaced at 300
        KeptVersion("/a/x", "x2", 5, 7, 0o600, 1, 1, 150.0, 300.0, 9e9, "overwritten"),
        # y: deleted at 200
        KeptVersion("/a/y", "y1", 3, 1, 0o644, 0, 0, 50.0, 200.0, 9e9, "deleted"),
        # z: created after the backup, deleted at 250
        KeptVersion("/a/z", "z1", 4, 2, 0o640, 0, 0, 120.0, 250.0, 9e9, "deleted"),
    ]
    at = {e.path: e for e in overlay(m, kept, 180.0).entries}
    assert at["/a/x"].sha256 == "x2" and at["/a/x"].mode == 0o100600 and at["/a/x"].size == 5
    assert at["/a/y"].sha256 == "y1" and at["/a/z"].sha256 == "z1"
    at = {e.path: e for e in overlay(m, kept, 260.0).entries}
    assert "/a/y" not in at and "/a/z" not in at and at["/a/x"].sha256 == "x2"
    at = {e.path: e for e in overlay(m, kept, 110.0).entries}
    assert at["/a/x"].sha256 == "x1" and "/a/z" not in at
