"""Daemon pieces without servers: sd_notify, [daemon] settings, backoff, locks, the prober."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import trio

from omnifs.catalog import Catalog, WorkItem
from omnifs.conflicts import conflict_name
from omnifs.daemon.health import HealthBoard, Prober
from omnifs.daemon.settings import DaemonSettings, parse_daemon
from omnifs.daemon.state import State, read_health
from omnifs.daemon.workers import ThreadCatalogs, backoff, lock_keys
from omnifs.errors import ConfigError
from omnifs.providers import NotFound, Unavailable
from omnifs.sd_notify import notify, watchdog_interval
from tests.poll import wait_until


def item(kind: str, **payload) -> WorkItem:
    return WorkItem(1, kind, payload, "claimed", 0, 0.0, "w", 0.0, None)


# -- sd_notify ---------------------------------------------------------------------

def test_notify_sends_one_datagram(tmp_path):
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert notify("READY=1", env={"NOTIFY_SOCKET": path})
        assert sock.recv(100) == b"READY=1"


def test_notify_abstract_socket():
    name = f"omnifs-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"WATCHDOG=1"


def test_notify_without_systemd_is_a_no_op(tmp_path):
    assert notify("READY=1", env={}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "absent")}) is False


def test_watchdog_interval():
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None


# -- settings ----------------------------------------------------------------------

def test_daemon_settings_defaults_and_values():
    assert parse_daemon({}) == DaemonSettings()
    s = parse_daemon({"workers": 8, "lost_after": 10, "probe_interval": 0.5})
    assert s.workers == 8 and s.lost_after == 10.0 and isinstance(s.lost_after, float)
    s = parse_daemon({"snapshot_interval": 0, "snapshot_keep": 3})
    assert (s.snapshot_interval, s.snapshot_quiet, s.snapshot_keep) == (0.0, 10.0, 3)


@pytest.mark.parametrize("table,message", [
    ({"wrkers": 2}, "did you mean 'workers'"),
    ({"workers": 1.5}, "expected a whole number"),
    ({"workers": True}, "expected a whole number"),
    ({"lost_after": "1h"}, "expected a number of seconds"),
    ({"workers": 0}, "at least 1"),
    ({"probe_interval": -1}, "at least"),
    ({"zzz": 1}, "known keys"),
    ({"snapshot_keep": 0}, "at least 1"),
    ({"snapshot_keep": 2.5}, "expected a whole number"),
    ({"snapshot_interval": -5}, "at least"),
    ({"snapshot_quite": 5}, "did you mean 'snapshot_quiet'"),
])
def test_daemon_settings_errors_are_one_line(table, message):
    with pytest.raises(ConfigError) as e:
        parse_daemon(table, "omnifs.toml")
    text = str(e.value)
    assert message in text and "\n" not in text and text.startswith("omnifs.toml: ")


# -- workers -----------------------------------------------------------------------

def test_backoff_grows_and_is_capped():
    for attempts in range(12):
        d = backoff(attempts, 1.0, 60.0)
        cap = min(60.0, 2 ** attempts)
        assert cap / 2 <= d <= cap
    assert backoff(50, 1.0, 60.0) <= 60.0


def test_lock_keys_cover_the_objects_an_item_touches(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    import stat

    d = cat.ns.ensure_dirs("dir")
    ino = cat.ns.create(d, "f", stat.S_IFREG | 0o644, 0, 0).id
    rep = lock_keys(cat, item("replicate", inode=ino, provider="b"))
    dele = lock_keys(cat, item("delete", provider="b", key="dir/f"))
    move = lock_keys(cat, item("move", inode=ino, provider="b", src="old/f", dst="dir/f"))
    other = lock_keys(cat, item("delete", provider="a", key="dir/f"))
    assert set(rep) & set(dele)          # a delete and a replicate of one key never overlap
    assert set(move) & set(rep)
    assert "b\0old/f" in move
    assert not set(other) & set(rep)     # another provider is independent
    # a path too long for a store's keys is written at its fallback key: that is locked too
    from omnifs.layout import long_key

    assert set(rep) & set(lock_keys(cat, item("delete", provider="b", key=long_key("dir/f"))))
    cat.close()


# -- reconcile helpers ---------------------------------------------------------------

def test_thread_catalogs_reuse_the_catalog_of_a_thread_that_ended(tmp_path):
    """A new worker thread takes over an ended one's connection instead of opening another."""
    cats = ThreadCatalogs(tmp_path / "c.db")
    got: list[Catalog] = []

    def use() -> None:
        got.append(cats.get())
        assert cats.get() is got[-1]

    for _ in range(3):  # one after another: always the same connection
        t = threading.Thread(target=use)
        t.start()
        t.join()
    assert got[0] is got[1] is got[2] and cats.open_count() == 1
    hold, release = threading.Event(), threading.Event()

    def busy() -> None:
        got.append(cats.get())
        hold.set()
        release.wait(10)

    t = threading.Thread(target=busy)
    t.start()
    hold.wait(10)
    mine = cats.get()  # the busy thread still runs: this thread needs its own
    release.set()
    t.join()
    assert mine is not got[-1] and cats.open_count() == 2
    cats.close()
    assert cats.open_count() == 0


def test_conflict_name():
    assert conflict_name("a.txt", "aws", 0) == "a.txt.conflict-aws-19700101T000000Z"


# -- the prober against fake stores ----------------------------------------------------

class FakeStore:
    def __init__(self, name: str):
        self.name = name
        self.mode = "ok"

    def head(self, key):
        if self.mode == "down":
            raise Unavailable("connection refused", provider=self.name)
        if self.mode == "refusing":  # the SDK retried refused connections for a while
            time.sleep(0.25)
            raise Unavailable("connection refused", provider=self.name)
        if self.mode == "hang":
            time.sleep(5)
        raise NotFound("no such object", provider=self.name, key=key)


def test_prober_marks_down_fast_and_lost_later(tmp_path):
    stores = {"a": FakeStore("a"), "b": FakeStore("b"), "c": FakeStore("c")}
    state = State(tmp_path / "c.db")
    board = HealthBoard()
    changes: list[tuple[str, str, str]] = []
    lost: list[str] = []
    prober = Prober(stores, state, None, board, interval=0.05, timeout=0.3, lost_after=1.0,
                    on_lost=lost.append, on_change=lambda *c: changes.append(c))
    marks: dict[str, float] = {}

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(prober.run)
            assert board.status("a") == "healthy"
            t0 = time.monotonic()
            stores["b"].mode = "down"
            stores["c"].mode = "hang"
            while "b" not in marks or "c" not in marks:
                for n in ("b", "c"):
                    if board.status(n) == "down" and n not in marks:
                        marks[n] = time.monotonic() - t0
                await trio.sleep(0.01)
            with trio.fail_after(5):
                await wait_until(lambda: board.status("b") == "lost", every=0.02)
            stores["b"].mode = "ok"
            with trio.fail_after(5):
                await wait_until(lambda: board.usable("b"), every=0.02)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert marks["b"] < 2 and marks["c"] < 3          # well inside 10 s at these intervals
    assert "b" in lost and ("b", "down", "lost") in changes
    assert board.status("a") == "healthy"
    assert board.usable("b")                          # came back: lost is cleared
    rows = read_health(tmp_path / "c.db")
    assert set(rows) == {"a", "b", "c"} and rows["c"].status == "lost"
    assert rows["c"].down_since is not None
    state.close()


def test_prober_keeps_a_store_busy_with_our_transfers_up(tmp_path):
    """Probes that time out while workers keep completing transfers with the store: not down."""
    stores = {"a": FakeStore("a")}
    stores["a"].mode = "hang"
    state = State(tmp_path / "c.db")
    board = HealthBoard()
    prober = Prober(stores, state, None, board, interval=0.05, timeout=0.1, lost_after=60.0)
    seen: set[str] = set()

    transfers = {"on": True}

    async def worker():
        while transfers["on"]:
            board.note_answer("a", time.time())         # a worker finished a copy with "a"
            await trio.sleep(0.02)

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            await trio.sleep(0.03)
            await nursery.start(prober.run)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                seen.add(board.status("a"))
                await trio.sleep(0.02)
            transfers["on"] = False
            with trio.fail_after(5):                    # the transfers stop: down soon after
                await wait_until(lambda: board.status("a") == "down", every=0.02)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert "down" not in seen
    state.close()


def test_prober_takes_a_failure_the_sdk_already_retried_as_confirmed(tmp_path, monkeypatch):
    """One round, one probe: a failure that took the SDK's retries is down at once."""
    from omnifs.daemon import health

    monkeypatch.setattr(health, "CONFIRMED_AFTER", 0.2)
    stores = {"a": FakeStore("a")}
    stores["a"].mode = "refusing"
    state = State(tmp_path / "c.db")
    board = HealthBoard()
    calls: list[str] = []
    head = stores["a"].head
    stores["a"].head = lambda key: (calls.append(key), head(key))
    prober = Prober(stores, state, None, board, interval=60, timeout=1.0, lost_after=60.0)
    trio.run(prober.round)
    assert board.status("a") == "down" and len(calls) == 1
    stores["a"].mode = "down"  # a quick failure: confirmed by a second probe in the round
    trio.run(prober.round)
    assert len(calls) == 3
    state.close()
