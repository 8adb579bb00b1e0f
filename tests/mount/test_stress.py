"""fsstress-like random operations on a small disk: the reserve holds, nothing acknowledged is lost.

One 256 MiB tmpfs holds everything the mount and ``omnifs replicate`` write
(cache, catalog, both ``file://`` stores). Workers run random operations
(writes at small and large sparse offsets, dense writes that fill the disk,
truncates, fallocates and punched holes, renames, unlinks, fsyncs, reads
checked against a model), while the queue is drained now and then so that
deletes free space in the stores. Throughout, the disk keeps its
``free_space_ratio`` free (give or take what the catalog records), writes
that do not fit get ENOSPC and never EIO, and after a remount every file
whose last close, fsync or truncate returned 0 reads back exactly as the
model says.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from omnifs.mountfs.fallocate import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, fallocate
from tests.mount.conftest import omnifs

MiB = 1 << 20
PAGE = 4096
RATIO = 0.1
#: how far sparse writes and truncates reach: every close hashes the whole file (holes
#: read as zeros), so this bounds the time an operation takes, not the disk it uses
FAR = 128 * MiB
#: a dense write: a few of them fill the disk (staging, two stores, the cache copy)
DENSE = 16 * MiB
#: how far free space may dip into the reserve: the catalog writes into it (its log alone
#: reaches ~4 MiB here), and writers racing each other's checks take a block each
CATALOG_SLACK = 8 * MiB


@dataclass
class Model:
    """A file's expected bytes: its size and its non-zero pages (page index -> bytes)."""

    size: int = 0
    pages: dict[int, bytes] = field(default_factory=dict)

    def write(self, off: int, data: bytes) -> None:
        end = off + len(data)
        for p in range(off // PAGE, (end - 1) // PAGE + 1):
            base = p * PAGE
            page = bytearray(self.pages.get(p, bytes(PAGE)))
            lo, hi = max(off, base), min(end, base + PAGE)
            page[lo - base:hi - base] = data[lo - off:hi - off]
            self.pages[p] = bytes(page)
        self.size = max(self.size, end)

    def zero(self, off: int, length: int) -> None:
        end = min(off + length, self.size)
        for p in [p for p in self.pages if p * PAGE < end and (p + 1) * PAGE > off]:
            base = p * PAGE
            page = bytearray(self.pages[p])
            lo, hi = max(off, base), min(end, base + PAGE)
            page[lo - base:hi - base] = bytes(hi - lo)
            self.pages[p] = bytes(page)

    def truncate(self, size: int) -> None:
        if size < self.size:
            self.zero(size, self.size - size)
            self.pages = {p: b for p, b in self.pages.items() if p * PAGE < size}
        self.size = size

    def expected(self, off: int, n: int) -> bytes:
        n = max(0, min(n, self.size - off))
        out = bytearray(n)
        for p in range(off // PAGE, (off + n - 1) // PAGE + 1) if n else ():
            page = self.pages.get(p)
            if page is None:
                continue
            base = p * PAGE
            lo, hi = max(off, base), min(off + n, base + PAGE)
            out[lo - off:hi - off] = page[lo - base:hi - base]
        return bytes(out)


def check(path: str, model: Model, rnd: random.Random) -> None:
    """The file reads as the model: its size, every data page, and a few pages of its holes."""
    st = os.stat(path)
    assert st.st_size == model.size, f"{path}: size {st.st_size} != {model.size}"
    fd = os.open(path, os.O_RDONLY)
    try:
        offsets = [p * PAGE for p in model.pages]
        offsets += [rnd.randrange(0, model.size) for _ in range(3)] if model.size else []
        for off in offsets:
            got = os.pread(fd, PAGE, off)
            assert got == model.expected(off, PAGE), f"{path}: wrong bytes at {off}"
    finally:
        os.close(fd)


class Worker:
    def __init__(self, mp, wid: int, seed: int, deadline: float):
        self.mp = mp
        self.wid = wid
        self.rnd = random.Random(seed)
        self.deadline = deadline
        #: acknowledged files: name -> model
        self.files: dict[str, Model] = {}
        self.enospc = 0
        self.ops = 0
        self.error: BaseException | None = None
        self._n = 0

    def path(self, name: str) -> str:
        return os.path.join(self.mp, name)

    def new_name(self) -> str:
        self._n += 1
        return f"w{self.wid}-{self._n}"

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                self.step()
                self.ops += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def step(self) -> None:
        op = self.rnd.choices(["write", "dense", "truncate", "punch", "rename", "unlink", "read"],
                              [30, 10, 10, 8, 8, 12, 22])[0]
        names = list(self.files)
        if op in ("truncate", "punch", "rename", "unlink", "read") and not names:
            op = "write"
        name = self.rnd.choice(names) if names else None
        try:
            getattr(self, f"op_{op}")(name)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            self.enospc += 1

    def _lost(self, name: str) -> None:
        """A change to ``name`` was refused part way: it is no longer acknowledged."""
        self.files.pop(name, None)
        try:
            os.unlink(self.path(name))
        except OSError as e:
            if e.errno != errno.ENOENT:  # rm works on a full disk: ENOSPC here is a failure
                raise

    def op_write(self, name: str | None, dense: bool = False) -> None:
        if name is None or self.rnd.random() < 0.3:
            name = self.new_name()
        model = Model(self.files[name].size, dict(self.files[name].pages)) \
            if name in self.files else Model()
        fd = self._open(name, os.O_CREAT | os.O_WRONLY)
        try:
            for _ in range(self.rnd.randrange(1, 4)):
                if dense:
                    off, data = self.rnd.randrange(0, 4 * MiB), os.urandom(DENSE)
                else:
                    far = self.rnd.random() < 0.4
                    off = self.rnd.randrange(0, FAR if far else 1 * MiB)
                    data = os.urandom(self.rnd.randrange(1, 64 * 1024))
                n = os.pwrite(fd, data, off)
                model.write(off, data[:n])
            if self.rnd.random() < 0.3:
                os.fsync(fd)
        except OSError:
            self._abandon(fd, name)
            raise
        self._close(fd, name)
        self.files[name] = model

    def _open(self, name: str, flags: int) -> int:
        try:
            return os.open(self.path(name), flags, 0o644)
        except OSError:
            self._lost(name)
            raise

    def _abandon(self, fd: int, name: str) -> None:
        """A change failed part way: the file's state is unknown, it is dropped."""
        with contextlib.suppress(OSError):
            os.close(fd)
        self._lost(name)

    def _close(self, fd: int, name: str) -> None:
        try:
            os.close(fd)
        except OSError:
            self._lost(name)
            raise

    def op_dense(self, name: str | None) -> None:
        self.op_write(None, dense=True)

    def op_truncate(self, name: str) -> None:
        model = self.files[name]
        size = self.rnd.choice([0, self.rnd.randrange(0, model.size + 1),
                                self.rnd.randrange(0, FAR)])
        try:
            os.truncate(self.path(name), size)
        except OSError:
            self._lost(name)
            raise
        model.truncate(size)

    def op_punch(self, name: str) -> None:
        model = self.files[name]
        if not model.size:
            return
        off = self.rnd.randrange(0, model.size)
        length = self.rnd.randrange(1, 256 * 1024)
        fd = self._open(name, os.O_WRONLY)
        try:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length)
        except OSError:
            self._abandon(fd, name)
            raise
        self._close(fd, name)
        model.zero(off, length)

    def op_rename(self, name: str) -> None:
        new = self.new_name()
        os.rename(self.path(name), self.path(new))
        self.files[new] = self.files.pop(name)

    def op_unlink(self, name: str) -> None:
        os.unlink(self.path(name))
        del self.files[name]

    def op_read(self, name: str) -> None:
        check(self.path(name), self.files[name], self.rnd)


class FreeSpace:
    """The least free space the disk had while it ran."""

    def __init__(self, path):
        self.path = path
        self.least = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            v = os.statvfs(self.path)
            free = v.f_bavail * v.f_frsize
            self.least = free if self.least is None else min(self.least, free)
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.least


def run_stress(make_mount, disk, *, seconds: float, workers: int, seed: int) -> None:
    m = make_mount(cache_dir=disk / "cache", catalog=disk / "catalog.db", store_dir=disk,
                   cache={"free_space_ratio": RATIO})
    v = os.statvfs(disk)
    reserve = RATIO * v.f_blocks * v.f_frsize
    deadline = time.monotonic() + seconds
    ws = [Worker(str(m.mp), i, seed * 100 + i, deadline) for i in range(workers)]
    threads = [threading.Thread(target=w.run) for w in ws]
    watch = FreeSpace(disk)
    for t in threads:
        t.start()
    drains = 0
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        # the queued deletes (and second copies) are how the stores give space back
        out = omnifs("replicate", "--now", config=m.config, check=False)
        assert out.returncode in (0, 1), out.stderr
        drains += 1
    for t in threads:
        t.join()
    least = watch.stop()
    for w in ws:
        if w.error is not None:
            raise w.error
    assert least >= reserve - CATALOG_SLACK, \
        f"free space fell to {least / MiB:.1f} MiB, the reserve is {reserve / MiB:.1f} MiB"
    assert sum(w.ops for w in ws) > 50
    m.umount()
    m.mount()
    rnd = random.Random(seed)
    for w in ws:
        for name, model in w.files.items():
            check(os.path.join(m.mp, name), model, rnd)
    expected = sorted(n for w in ws for n in w.files)
    assert sorted(os.listdir(m.mp)) == expected
    print(f"ops {sum(w.ops for w in ws)}, ENOSPC {sum(w.enospc for w in ws)}, drains {drains}, "
          f"least free {least / MiB:.1f} MiB (reserve {reserve / MiB:.1f} MiB)")


@pytest.mark.one_engine  # its catalog is on the small disk
def test_random_operations_on_a_small_disk(make_mount, tmpfs):
    run_stress(make_mount, tmpfs("256m"), seconds=25, workers=4, seed=1)


@pytest.mark.one_engine  # its catalog is on the small disk
@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_random_operations_on_a_small_disk_soak(make_mount, tmpfs, seed):
    run_stress(make_mount, tmpfs("256m"), seconds=180, workers=6, seed=seed)


def test_model_of_the_stress_test():
    m = Model()
    m.write(10, b"abc")
    m.write(PAGE - 1, b"xy")
    assert m.expected(0, 20) == bytes(10) + b"abc" + bytes(7)
    assert m.expected(PAGE - 2, 4) == b"\0xy"
    m.zero(11, 1)
    assert m.expected(10, 3) == b"a\0c"
    m.truncate(11)
    m.truncate(PAGE * 2)
    assert m.expected(0, PAGE * 2) == bytes(10) + b"a" + bytes(PAGE * 2 - 11)


def test_reads_follow_objects_moved_after_a_rename(make_mount):
    """A rename changes the catalog at once and the objects move
    later (queued); a read that looked up the old key before the move ran must follow it
    to the new one, not answer EIO (a rewrite's first copy retries the same way)."""
    m = make_mount(cache={"readahead": 0})
    data = os.urandom(16 * MiB)
    (m.mp / "a").write_bytes(data)
    omnifs("cache", "clear", config=m.config)
    os.rename(m.mp / "a", m.mp / "b")
    fd = os.open(m.mp / "b", os.O_RDONLY)
    try:
        assert os.pread(fd, PAGE, 0) == data[:PAGE]  # the keys are looked up: still "a"
        m.replicate()  # the queued move: "a" becomes "b" in every store
        assert not m.provider(m.names[0]).exists("a")
        assert os.pread(fd, PAGE, 12 * MiB) == data[12 * MiB:12 * MiB + PAGE]
    finally:
        os.close(fd)
    os.rename(m.mp / "b", m.mp / "c")
    with open(m.mp / "c", "r+b") as f:
        m.replicate()
        f.write(b"new")  # the rewrite's copy comes from the moved objects
    assert (m.mp / "c").read_bytes() == b"new" + data[3:]
