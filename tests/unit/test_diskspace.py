"""The free-space reserve and the spare file, without a mount."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest

from omnifs.providers.diskspace import SpareFile, check_room, is_disk_full, room, spare_files


def test_room_is_free_space_less_the_reserve(tmp_path):
    v = os.statvfs(tmp_path)
    free, total = v.f_bavail * v.f_frsize, v.f_blocks * v.f_frsize
    assert abs(room(tmp_path, 0.0) - free) < 64 << 20
    assert abs(room(tmp_path, 0.5) - (free - total // 2)) < 64 << 20
    with pytest.raises(OSError) as info:
        check_room(tmp_path, 0.99, 1)
    assert info.value.errno == errno.ENOSPC and "99%" in info.value.strerror


def test_spare_file_is_made_and_given_back_only_when_the_disk_is_full(tmp_path):
    spare = SpareFile(tmp_path / "catalog.db.spare", size=1 << 20)
    assert spare.ensure()
    assert os.stat(spare.path).st_blocks * 512 >= 1 << 20  # allocated, not a hole
    assert not spare.release_if_low()  # plenty of room here: kept
    assert os.path.exists(spare.path)
    huge = SpareFile(tmp_path / "x.spare", size=1 << 62)  # more than any disk has free
    assert not huge.ensure() and not os.path.exists(huge.path)


def test_spare_files_of_a_config(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    spares = spare_files(tmp_path / "catalog.db", cache)
    assert [s.path for s in spares] == [str(tmp_path / "catalog.db.spare")]  # one disk: one


def test_what_counts_as_a_full_disk():
    assert is_disk_full(OSError(errno.ENOSPC, "full"))
    assert is_disk_full(OSError(errno.EDQUOT, "quota"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(OSError(errno.EIO, "io"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
