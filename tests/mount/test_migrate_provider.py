"""``omnifs migrate provider OLD NEW`` under a live mount over real servers.

A writer and a reader keep working in the mount while the CLI swaps OLD for
NEW; neither sees an error, no file ever has fewer synced copies than
``copies`` off OLD once it is dropped, and afterwards OLD leaves the
config: ``omnifs check`` is clean and a remount without OLD reads every file
byte for byte. Also: a swap killed with -9 and resumed, ``--abort``, and the
bad input (one line each, nothing changed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from omnifs.catalog import Catalog
from omnifs.config import load_config
from tests.cli import one_line_error
from tests.cli import run as cli
from tests.cli import write_config as cli_config

from .conftest import ROOT, Mounted, omnifs, write_config

COPIES = 2


def _body(name: str, n: int) -> bytes:
    return f"{name} #{n}\n".encode() * random.randint(1, 300)


def _tree(m: Mounted, count: int) -> dict[str, bytes]:
    """``count`` files in nested directories, written through the mount."""
    files = {}
    for i in range(count):
        rel = f"tree/d{i % 4}/sub {i % 3}/f{i}.txt"
        data = _body(rel, 0)
        (m.mp / rel).parent.mkdir(parents=True, exist_ok=True)
        (m.mp / rel).write_bytes(data)
        files[rel] = data
    return files


def _replica_facts(m: Mounted, old: str) -> tuple[list[int], dict[str, int]]:
    """(inodes with a replica row on ``old``, path -> synced copies of its current version)."""
    cat = m.catalog()
    try:
        on_old = cat.replicas.inodes_on(old)
        copies = {}
        for ino in cat.ns.file_ids():
            inode, path = cat.ns.get(ino), cat.ns.path_of(ino)
            if inode is None or path is None:
                continue
            copies[path] = sum(1 for r in cat.replicas.of(ino)
                               if r.state == "synced" and r.version == inode.version)
        return on_old, copies
    finally:
        cat.close()


def _rows(m: Mounted, inos: list[int]) -> list:
    cat = m.catalog()
    try:
        return [(cat.ns.path_of(i), cat.ns.get(i).version, cat.replicas.of(i)) for i in inos]
    finally:
        cat.close()


class Workload:
    """A writer (new files, overwrites) and a reader (checks contents) in the mount."""

    def __init__(self, mp: Path, files: dict[str, bytes], catalog: Path | str):
        self.mp = mp
        self.catalog = catalog
        self.expected = dict(files)
        self.hot = [f"live/hot{i}.txt" for i in range(4)]
        self.locks = {h: threading.Lock() for h in self.hot}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.writes = self.reads = 0
        (mp / "live").mkdir()
        for h in self.hot:
            (mp / h).write_bytes(self._remember(h, _body(h, 0)))
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True)
                        for f in (self._writer, self._reader, self._copies)]

    def _remember(self, rel: str, data: bytes) -> bytes:
        with self.lock:
            self.expected[rel] = data
        return data

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every error is the test's finding
            self.errors.append(f"{fn.__name__}: {type(e).__name__}: {e}")

    def _writer(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            if n % 2:
                rel = f"live/new{n}.txt"
                data = _body(rel, n)
                (self.mp / rel).write_bytes(data)
                self._remember(rel, data)
            else:
                rel = random.choice(self.hot)
                data = _body(rel, n)
                with self.locks[rel]:
                    (self.mp / rel).write_bytes(data)
                    self._remember(rel, data)
            self.writes += 1
            time.sleep(0.02)

    def _reader(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                rel = random.choice(list(self.expected))
            lock = self.locks.get(rel)
            if lock is not None:
                lock.acquire()
            try:
                with self.lock:
                    want = self.expected[rel]
                got = (self.mp / rel).read_bytes()
            finally:
                if lock is not None:
                    lock.release()
            if got != want:
                self.errors.append(f"reader: {rel}: {len(got)} bytes, expected {len(want)}")
            self.reads += 1

    def _copies(self) -> None:
        """Every published file keeps ``copies`` synced replicas, in every committed state."""
        cat = Catalog(self.catalog, create=False)
        try:
            while not self.stop.is_set():
                short = cat.replicas.short_of(COPIES, (), 10)
                if short:
                    self.errors.append(f"copies: inodes {short} below {COPIES}")
                time.sleep(0.1)
        finally:
            cat.close()

    def __enter__(self) -> Workload:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.mark.parametrize("delete_old", [False, True], ids=["keep-old", "delete-old"])
def test_swap_under_live_mount(make_mount, delete_old):
    m = make_mount(("s3", "gs", "file"), copies=COPIES, quorum=COPIES)
    old, new, other = m.names
    files = _tree(m, 40)
    on_old, _ = _replica_facts(m, old)
    assert on_old, "the primary holds files before the swap"
    with Workload(m.mp, files, load_config(m.config).catalog_target()) as work:
        time.sleep(1.0)
        proc = omnifs("migrate", "provider", old, new, "--parallel", "3",
                      *(["--delete-old"] if delete_old else []), config=m.config)
        time.sleep(1.5)  # writes after the swap still stay off OLD
    assert not work.errors, work.errors
    assert work.writes > 10 and work.reads > 10, (work.writes, work.reads)
    out = proc.stdout
    assert f"{old} holds no replica any more" in out, out
    assert f"{old} -> {new}:" in proc.stderr, proc.stderr  # the progress line
    on_old, copies = _replica_facts(m, old)
    assert on_old == [], _rows(m, on_old)
    short = {p: n for p, n in copies.items() if n < COPIES}
    assert not short, short
    cat = m.catalog()
    try:
        assert json.loads(cat.draining()[old])["state"] == "done"
        for rel in files:
            reps = {r.provider for r in cat.replicas.of(cat.ns.resolve(rel).id)
                    if r.state == "synced"}
            assert new in reps, rel
    finally:
        cat.close()
    if delete_old:
        left = [o.key for o in m.provider(old).list("") if not o.key.startswith(".omnifs/")]
        assert left == [], left
    # OLD leaves the config: check is clean, a remount reads everything from the others
    m.umount()
    cfg = write_config(m.root, {n: m.settings[n] for n in (new, other)}, copies=COPIES,
                       quorum=COPIES, catalog=load_config(m.config).catalog_target())
    check = omnifs("check", config=cfg, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    m.settings.pop(old)
    m.names.remove(old)
    m.mount()
    for rel, data in work.expected.items():
        assert (m.mp / rel).read_bytes() == data, rel


def _swap_process(m: Mounted, old: str, new: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "omnifs", "--config", str(m.config), "migrate", "provider",
            old, new, "--parallel", "1"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_resume_and_abort(make_mount):
    m = make_mount(("file", "gs", "file"), copies=COPIES, quorum=COPIES)
    old, new, _ = m.names
    files = _tree(m, 120)
    start = len(_replica_facts(m, old)[0])
    proc = _swap_process(m, old, new)
    deadline = time.monotonic() + 120
    while len(_replica_facts(m, old)[0]) > start - 5 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    on_old, copies = _replica_facts(m, old)
    assert 0 < len(on_old) < start, (len(on_old), start)
    assert min(copies.values()) >= COPIES
    cat = m.catalog()
    try:
        assert json.loads(cat.draining()[old]) | {"since": 0} == {
            "to": new, "state": "running", "since": 0}
    finally:
        cat.close()
    time.sleep(1.2)  # the mount re-reads the mark within a second
    (m.mp / "while-draining.txt").write_bytes(b"stays off OLD")
    assert old not in m.homes("while-draining.txt")

    out = omnifs("migrate", "provider", old, new, "--abort", config=m.config).stdout
    assert f"swap of {old} aborted" in out and "still have a replica there" in out, out
    cat = m.catalog()
    try:
        assert old not in cat.draining()
    finally:
        cat.close()
    time.sleep(1.2)
    (m.mp / "after-abort.txt").write_bytes(b"OLD is the primary again")
    assert old in m.homes("after-abort.txt")

    # the rerun resumes from the catalog and finishes
    done = omnifs("migrate", "provider", old, new, config=m.config)
    assert f"{old} holds no replica any more" in done.stdout, done.stdout
    on_old, copies = _replica_facts(m, old)
    assert on_old == [] and min(copies.values()) >= COPIES
    for rel, data in files.items():
        assert (m.mp / rel).read_bytes() == data, rel


def test_delete_old(make_mount):
    """OLD's objects go only once NEW's copy is verified: a NEW object that does not hold the
    file's bytes (written there behind omnifs's back) is caught, copied again, then OLD's goes."""
    m = make_mount(("file", "az", "file"), copies=COPIES, quorum=COPIES)
    old, new, _ = m.names
    files = _tree(m, 12)
    held = [rel for rel in files if m.provider(old).exists(rel)]
    on_both = [rel for rel in held if new in m.homes(rel)]
    assert held and on_both, (held, on_both)
    bad = on_both[0]
    m.provider(new).write_bytes(bad, b"x" * len(files[bad]))
    out = omnifs("migrate", "provider", old, new, "--delete-old", config=m.config).stdout
    # the copy over it is a conditional write: the object written behind omnifs's back is
    # kept as a conflict file (docs/compat.md), which moves off OLD like any file
    kept = sorted((m.mp / bad).parent.glob(Path(bad).name + ".conflict-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"x" * len(files[bad]), kept
    assert f"{len(held) + 1} objects deleted" in out, out
    for rel in held:
        assert not m.provider(old).exists(rel), rel
        assert m.provider(new).read_bytes(rel) == files[rel], rel
    cat = m.catalog()
    try:
        for rel in held:
            rep = cat.replicas.get(cat.ns.resolve(rel).id, new)
            assert rep is not None and rep.state == "synced" and rep.verified_at, rel
    finally:
        cat.close()


def test_bad_input(make_settings, tmp_path):
    a, b, c = (make_settings("file", name=n) for n in ("a", "b", "c"))
    catalog = f'\n[catalog]\nurl = "sqlite:///{tmp_path / "catalog.db"}"\n'
    cfg = cli_config(tmp_path / "omnifs.toml", [a, b, c], catalog)
    Catalog(tmp_path / "catalog.db").close()

    def fails(*args: str, config: Path = cfg, status: int = 2) -> str:
        proc = cli("migrate", "provider", *args, config=config)
        err = one_line_error(proc)
        assert proc.returncode == status, (proc.returncode, err)
        return err

    assert "both 'a'" in fails("a", "a")
    assert "NEW: no provider named 'zz'" in fails("a", "zz")
    assert "OLD: no provider named 'zz'" in fails("zz", "a")
    assert "--parallel must be at least 1" in fails("a", "b", "--parallel", "0")
    two = cli_config(tmp_path / "two.toml", [a, b], catalog)
    assert "only 1 would be left" in fails("a", "b", config=two)
    down = dataclasses.replace(make_settings("s3", name="down"), endpoint="http://127.0.0.1:9",
                               timeout=2.0)
    downcfg = cli_config(tmp_path / "down.toml", [a, b, down], catalog)
    err = fails("a", "down", config=downcfg, status=1)
    assert "NEW store down does not answer" in err and "nothing was changed" in err, err
    cat = Catalog(tmp_path / "catalog.db")
    try:
        assert cat.draining() == {}
    finally:
        cat.close()
