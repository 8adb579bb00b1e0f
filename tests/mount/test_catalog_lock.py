"""The mount keeps answering while another process holds the catalog's write lock.

A catalog write that waited for SQLite's lock (``omnifs import``, the
daemon) on the mount's event loop would leave every FUSE request
unanswered meanwhile, not even a lookup. Here another process holds the lock for a few
seconds while a ``mkdir`` or a new file's write (which must wait for it) is
under way: lookups in the meantime answer at once, and the change completes
once the lock is free.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.one_engine  # SQLite's own write lock: catalog_backend below

HOLD = 3.0

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@pytest.fixture
def catalog_backend():
    """SQLite even with OMNIFS_CATALOG=postgresql: SQLite's own write lock held by another
    process (PostgreSQL's lock: tests/unit/test_catalog_backend.py)."""
    return "sqlite"


@pytest.mark.parametrize("op", ["mkdir", "write"])
def test_lookups_answer_while_another_process_holds_the_write_lock(make_mount, op):
    m = make_mount()
    (m.mp / "other").mkdir()
    catalog = str(m.catalog().path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, catalog, str(HOLD)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        done: list[float] = []

        def change():
            if op == "mkdir":
                os.mkdir(m.mp / "d")
            else:
                (m.mp / "d").write_bytes(b"data")
            done.append(time.monotonic() - started)

        writer = threading.Thread(target=change)
        writer.start()
        time.sleep(0.3)  # the mkdir is waiting for the lock by now
        slowest = 0.0
        i = 0
        while writer.is_alive() and time.monotonic() - started < HOLD - 0.5:
            t0 = time.monotonic()
            # a lookup the kernel cannot cache, in another directory than the mkdir's (the
            # kernel itself holds the mkdir's parent directory locked until it is answered)
            assert not os.path.exists(m.mp / "other" / f"absent-{i}")
            slowest = max(slowest, time.monotonic() - t0)
            i += 1
            time.sleep(0.05)
        writer.join(timeout=30)
        assert done, "mkdir did not finish"
    finally:
        holder.wait(timeout=30)
    assert slowest < 0.5, f"a lookup waited {slowest:.2f} s on another process's lock"
    assert i >= 10, "the lock was released too early for the test to measure anything"
    # the change waited for the lock, then succeeded
    assert done[0] >= HOLD - 0.5
    assert (m.mp / "d").is_dir() if op == "mkdir" else (m.mp / "d").read_bytes() == b"data"
