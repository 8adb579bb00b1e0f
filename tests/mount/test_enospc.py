"""Disk space: ENOSPC to the writer before a disk is full, the cache limit with staging
counted, and a full disk that stays manageable (rm through the mount, cache stats/clear)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.mount.conftest import omnifs

MiB = 1 << 20


def free(path: Path) -> int:
    v = os.statvfs(path)
    return v.f_bavail * v.f_frsize


def disk_size(path: Path) -> int:
    v = os.statvfs(path)
    return v.f_blocks * v.f_frsize


def fill(path: Path) -> None:
    """Fill ``path``'s disk to the last block, as another program would."""
    with open(path / "filler", "wb", buffering=0) as f:
        for chunk in (MiB, 4096):
            try:
                while True:
                    f.write(bytes(chunk))
            except OSError as e:
                assert e.errno == errno.ENOSPC
    assert free(path) < 64 * 1024


def write_until_enospc(path: Path, chunk: int = MiB, limit: int = 1 << 30) -> int:
    """Write ``path`` in chunks until ENOSPC; the bytes written."""
    done = 0
    with pytest.raises(OSError) as info, open(path, "wb") as f:
        while done < limit:
            f.write(os.urandom(chunk))
            f.flush()
            done += chunk
    assert info.value.errno == errno.ENOSPC, info.value
    return done


def test_full_staging_disk_is_enospc(make_mount, tmpfs):
    m = make_mount(cache_dir=tmpfs("2m"), cache={"free_space_ratio": 0})
    (m.mp / "before.txt").write_bytes(b"fine")
    with pytest.raises(OSError) as info, open(m.mp / "huge", "wb") as f:
        for _ in range(8):
            f.write(os.urandom(1 << 20))
            f.flush()
    assert info.value.errno == errno.ENOSPC
    # the mount is alive and the earlier file intact; freeing space lets writes go on
    assert (m.mp / "before.txt").read_bytes() == b"fine"
    os.unlink(m.mp / "huge")
    (m.mp / "after.txt").write_bytes(b"room again")
    assert (m.mp / "after.txt").read_bytes() == b"room again"
    assert m.provider(m.names[0]).read_bytes("after.txt") == b"room again"


@pytest.mark.one_engine  # its catalog is on the small disk
def test_writes_stop_at_the_free_space_reserve(make_mount, tmpfs):
    disk = tmpfs("64m")
    # the stores get a disk of their own: the host's free space must not matter
    m = make_mount(cache_dir=disk, store_dir=tmpfs("256m"), catalog=tmpfs("16m") / "catalog.db",
                   cache={"free_space_ratio": 0.25})
    (m.mp / "before.txt").write_bytes(b"fine")
    v = os.statvfs(m.mp)  # `df` of the mount shows what writers may still use
    assert abs(v.f_bavail * v.f_frsize - (free(disk) - 0.25 * disk_size(disk))) < MiB
    written = write_until_enospc(m.mp / "big")
    reserve = 0.25 * disk_size(disk)
    assert free(disk) >= reserve - MiB, (free(disk), reserve)
    assert written >= 20 * MiB  # most of what was above the reserve
    assert (m.mp / "before.txt").read_bytes() == b"fine"


@pytest.mark.one_engine  # its catalog is on the small disk
def test_the_block_cache_evicts_for_the_reserve(make_mount, tmpfs):
    disk = tmpfs("64m")
    m = make_mount(cache_dir=disk, store_dir=tmpfs("256m"), catalog=tmpfs("16m") / "catalog.db",
                   cache={"free_space_ratio": 0.2})
    data = os.urandom(30 * MiB)
    m.provider(m.names[0])  # the stores are elsewhere; fill the cache with a read
    (m.mp / "read.bin").write_bytes(data)
    m.umount()
    subprocess.run(["sh", "-c", f"rm -rf {disk}/blocks"], check=True)
    m.mount()
    assert (m.mp / "read.bin").read_bytes() == data  # a cold read: ~30 MiB of blocks
    time.sleep(1)
    before = free(disk)
    assert before < 40 * MiB
    new = os.urandom(25 * MiB)
    (m.mp / "new.bin").write_bytes(new)  # needs room the blocks held: they go, not the write
    assert (m.mp / "new.bin").read_bytes() == new
    assert free(disk) >= 0.2 * disk_size(disk) - MiB


def test_full_file_stores_give_enospc_on_close(make_mount, tmpfs):
    disk = tmpfs("40m")
    m = make_mount(store_dir=disk)
    (m.mp / "first.bin").write_bytes(os.urandom(12 * MiB))
    with pytest.raises(OSError) as info:
        (m.mp / "second.bin").write_bytes(os.urandom(30 * MiB))
    assert info.value.errno == errno.ENOSPC
    assert free(disk) >= 0.1 * disk_size(disk) - MiB
    assert len((m.mp / "first.bin").read_bytes()) == 12 * MiB


@pytest.mark.one_engine  # its catalog is on the small disk
def test_a_full_disk_stays_manageable(make_mount, tmpfs):
    """Filled behind omnifs's back: rm through the mount works, writes get ENOSPC, and
    ``omnifs cache stats`` and ``cache clear`` work."""
    disk = tmpfs("48m")
    m = make_mount(cache_dir=disk / "cache", catalog=disk / "catalog.db")
    for i in range(60):
        (m.mp / f"f{i}").write_text(f"file {i}\n")
    m.umount()  # a fresh start: SQLite's write-ahead log is empty, as after any remount
    m.mount()
    fill(disk)
    for i in range(30):
        os.unlink(m.mp / f"f{i}")
    assert sorted(os.listdir(m.mp)) == sorted(f"f{i}" for i in range(30, 60))
    with pytest.raises(OSError) as info, open(m.mp / "f30", "ab") as f:
        f.write(os.urandom(MiB))
    assert info.value.errno == errno.ENOSPC
    stats = omnifs("cache", "stats", config=m.config, check=False)
    assert stats.returncode == 0, stats.stderr
    cleared = omnifs("cache", "clear", config=m.config, check=False)
    assert cleared.returncode == 0, cleared.stderr
    os.unlink(disk / "filler")
    (m.mp / "after.txt").write_text("room again\n")
    assert (m.mp / "after.txt").read_text() == "room again\n"
    assert (m.mp / "f45").read_text() == "file 45\n"


def held(cache_dir: Path) -> int:
    total = 0
    for d, _, files in os.walk(cache_dir):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
    return total


class Sampler:
    """The largest size the cache directory reached while it ran."""

    def __init__(self, path: Path):
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = held(self.path)
            if now > self.peak:
                self.peak = now
                self.parts = {p.name: held(p) for p in self.path.iterdir() if p.is_dir()}
            time.sleep(0.01)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


LIMIT = 48 * MiB
#: the cache's index and counters (SQLite), beside what the limit counts
INDEX_SLACK = 2 * MiB


def test_the_cache_limit_counts_staging_write_back_waits(make_mount):
    m = make_mount(cache={"size": "48MiB"}, mount_args=["--writeback"])
    cache_dir = m.root / "cache"
    files = {f"w{i}.bin": os.urandom(8 * MiB) for i in range(12)}
    sampler = Sampler(cache_dir)
    try:
        for name, data in files.items():
            (m.mp / name).write_bytes(data)  # each close returns at once; uploads follow
    finally:
        peak = sampler.stop()
    assert peak <= LIMIT + INDEX_SLACK, f"cache dir reached {peak / MiB:.1f} MiB {sampler.parts}"
    for name, data in files.items():
        assert (m.mp / name).read_bytes() == data
    m.umount()
    m.mount()
    for name, data in files.items():
        assert (m.mp / name).read_bytes() == data


def test_a_file_larger_than_the_cache_limit_is_enospc(make_mount):
    m = make_mount(cache={"size": "48MiB"})
    sampler = Sampler(m.root / "cache")
    try:
        written = write_until_enospc(m.mp / "huge.bin", limit=200 * MiB)
    finally:
        peak = sampler.stop()
    assert 40 * MiB <= written <= LIMIT
    assert peak <= LIMIT + INDEX_SLACK, f"cache dir reached {peak / MiB:.1f} MiB"
    (m.mp / "small.txt").write_text("still fine\n")
    assert (m.mp / "small.txt").read_text() == "still fine\n"


def test_rewriting_a_large_sparse_file_takes_only_its_data(make_mount, tmpfs):
    """The copy a rewrite starts from counts its data, not its size, against the room."""
    disk = tmpfs("64m")
    m = make_mount(cache_dir=disk)
    with open(m.mp / "sparse.img", "wb") as f:
        f.seek(1 << 30)
        f.write(b"end")
    with open(m.mp / "sparse.img", "r+b") as f:  # a 1 GiB file on a 64 MiB disk
        f.write(b"start")
    with open(m.mp / "sparse.img", "rb") as f:
        assert f.read(5) == b"start"
        f.seek(1 << 30)
        assert f.read() == b"end"


def test_rewriting_a_file_larger_than_the_room_is_enospc(make_mount):
    m = make_mount()
    data = os.urandom(40 * MiB)
    (m.mp / "big.bin").write_bytes(data)
    m.umount()
    m.config.write_text(m.config.read_text().replace('size = "1GiB"', 'size = "32MiB"'))
    m.mount()
    with pytest.raises(OSError) as info, open(m.mp / "big.bin", "r+b") as f:
        f.write(b"x")
    assert info.value.errno == errno.ENOSPC
    assert (m.mp / "big.bin").read_bytes() == data
