"""Reused stream buffers: never handed out again while any view of them lives."""

from __future__ import annotations

import ctypes
import gc
import threading

from omnifs.mountfs import blockpool
from omnifs.mountfs.blockpool import BlockPool

SIZE = 64 * 1024


def address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def test_buffers_are_aligned_writable_and_reused_once_every_view_is_gone():
    pool = BlockPool(SIZE, 4)
    a = pool.take()
    assert len(a) == SIZE and address(a) % 4096 == 0
    a[:3] = b"abc"
    first = address(a)
    del a
    b = pool.take()
    assert address(b) == first  # reused
    pool.close()


def test_a_buffer_with_any_live_view_is_not_reused():
    pool = BlockPool(SIZE, 8)
    block = pool.take()
    held = {
        "slice": block[10:20],
        "slice of a slice": block[5:100][1:3],
        "view of the view": memoryview(block),
        "ctypes": ctypes.c_char.from_buffer(block),
    }
    addr = address(block)
    del block
    for name in list(held):
        others = [address(pool.take()) for _ in range(3)]  # each dropped at once: reused
        assert addr not in others, f"reused while a {name} of it lived"
        del held[name]
        gc.collect()
    assert addr in {address(pool.take()) for _ in range(8)}
    pool.close()


def test_pool_is_bounded_then_hands_out_plain_buffers():
    pool = BlockPool(SIZE, 2)
    held = [pool.take() for _ in range(5)]
    assert len(pool) == 2 and pool.overflow == 3
    assert all(len(b) == SIZE and address(b) % 4096 == 0 for b in held)
    assert len({address(b) for b in held}) == 5
    pool.close()


def test_buffers_used_across_threads_come_back():
    pool = BlockPool(SIZE, 4)
    out = []

    def worker():
        for _ in range(200):
            b = pool.take()
            b[:8] = threading.current_thread().name.encode()[:8].ljust(8)
            out.append(bytes(b[:8]))
    threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 800 and len(pool) <= 4
    pool.close()


def test_warm_fills_the_pool_and_idle_buffers_are_released(monkeypatch):
    pool = BlockPool(SIZE, 6)
    pool.warm()
    assert len(pool) == 6
    kept = pool.take()  # in use: never released
    monkeypatch.setattr(blockpool, "IDLE", 0.0)
    pool._sweep()
    assert len(pool) == 1
    del kept
    pool._sweep()
    assert len(pool) == 0
    pool.close()


def test_no_memory_for_a_map_means_plain_buffers_not_errors(monkeypatch):
    def refuse(*a, **kw):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(blockpool.mmap, "mmap", refuse)
    pool = BlockPool(SIZE, 4)
    pool.warm()
    assert len(pool) == 0
    b = pool.take()
    assert len(b) == SIZE and address(b) % 4096 == 0
    pool.close()


def test_warm_makes_at_most_the_bytes_asked_for():
    pool = BlockPool(SIZE, 10)
    pool.warm(3 * SIZE + 5)
    assert len(pool) == 3
    pool.close()
