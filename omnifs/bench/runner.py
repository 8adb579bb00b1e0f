"""Runs a scenario's cells on providers and measures them (object scenarios).

For each repeat, each cell (size x concurrency) and each provider in turn: the
data set is written (not timed, straight to the store), then ``warmup``
operations run and are dropped, then the measured operations: ``concurrency``
threads take the next operation of the seeded sequence (:mod:`.plan`) and time
it. The same sequence, data and warm-up on every provider. The cell's objects
are deleted before the next cell. A network profile (:mod:`.netprofile`)
wraps the measured provider only, never the set-up and clean-up.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from omnifs.providers import OmnifsError, Provider
from omnifs.units import human_bytes

from .payload import Payload
from .plan import Op, data_key, operations
from .results import CDF_POINTS, Latency, Row, percentile
from .scenario import Scenario

#: operations that need the data set written first
READS = frozenset({"get", "range_get", "head", "list", "copy"})
#: first error messages kept per row
ERROR_SAMPLES = 3
#: set-up and clean-up threads
HELPERS = 16


@dataclass
class Subject:
    """One provider under test: its label, the store, and where inside it to work."""

    label: str
    #: set-up and clean-up go straight here
    store: Provider
    #: the measured operations go here (``store``, or it wrapped by a network profile)
    measured: Provider
    #: key prefix ("" or ending in "/") under which the bench writes
    root: str = ""


class RssPeak:
    """Samples the process's resident memory every 20 ms while open: the peak of a cell."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_local = threading.local()


def _drain(stream) -> int:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(1024 * 1024)
    total = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(len(buf)):
            total += len(chunk)
        return total
    view = memoryview(buf)
    while n := readinto(view):
        total += n
    return total


def execute(p: Provider, base: str, op: Op, size: int, seed: int) -> int:
    """Run one operation; the bytes it moved."""
    key = base + op.key
    if op.kind == "get":
        with p.open_read(key) as r:
            return _drain(r)
    if op.kind == "range_get":
        with p.open_read(key, op.start, op.end) as r:
            return _drain(r)
    if op.kind in ("put", "multipart"):
        p.write(key, Payload(size, seed), size)
        return size
    if op.kind == "head":
        p.head(key)
    elif op.kind == "list":
        for _ in p.list(key, True, False):
            pass
    elif op.kind == "copy":
        p.copy(base + op.source, key)
    elif op.kind == "delete":
        p.delete(key)
    return 0


Sample = tuple[str, float, str | None, int]


def _phase(p: Provider, base: str, ops: Iterator[Op], count: int | None,
           duration: float | None, concurrency: int, size: int, seed: int) -> list[Sample]:
    """Run operations from ``ops`` on ``concurrency`` threads until ``count`` were taken or
    ``duration`` passed; (kind, seconds, error or None, bytes) of each."""
    lock = threading.Lock()
    taken = 0
    deadline = None if duration is None else time.perf_counter() + duration
    outs: list[list[Sample]] = [[] for _ in range(concurrency)]

    def worker(out: list[Sample]) -> None:
        nonlocal taken
        clock = time.perf_counter
        while True:
            with lock:
                if (count is not None and taken >= count) or \
                        (deadline is not None and clock() >= deadline):
                    return
                op = next(ops)
                taken += 1
            t0 = clock()
            try:
                nbytes = execute(p, base, op, size, seed)
                error = None
            except OmnifsError as e:
                nbytes, error = 0, f"{op.kind} {op.key}: {e}"
            except Exception as e:  # noqa: BLE001 - an SDK error no provider translated
                nbytes, error = 0, f"{op.kind} {op.key}: {type(e).__name__}: {e}"
            out.append((op.kind, clock() - t0, error, nbytes))

    threads = [threading.Thread(target=worker, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s for o in outs for s in o]


def _setup(s: Scenario, subject: Subject, base: str, size: int) -> None:
    if not READS & {op for op, w in s.mix.items() if w}:
        return
    with ThreadPoolExecutor(HELPERS) as pool:
        list(pool.map(lambda i: subject.store.write(base + data_key(i), Payload(size, s.seed),
                                                     size), range(s.objects)))


def clean(store: Provider, prefix: str) -> None:
    """Delete everything under ``prefix`` (what a cell or a run wrote)."""
    keys = [o.key for o in store.list(prefix, True, False) if not o.is_prefix]
    with ThreadPoolExecutor(HELPERS) as pool:
        list(pool.map(store.delete, keys))


def summarize(samples: list[Sample], seconds: float) -> dict:
    """The figures of a cell from its samples (ops/s and MB/s count successes only)."""
    ok = sorted(t for _, t, e, _ in samples if e is None)
    errors = [e for _, _, e, _ in samples if e is not None]
    nbytes = sum(b for _, _, e, b in samples if e is None)
    per_op = {}
    for kind in sorted({k for k, _, _, _ in samples}):
        lat = sorted(t for k, t, e, _ in samples if k == kind and e is None)
        per_op[kind] = Latency.of(lat, sum(1 for k, _, e, _ in samples if k == kind and e))
    return {"ops": len(ok), "errors": len(errors), "seconds": seconds, "bytes": nbytes,
            "ops_per_s": len(ok) / seconds if seconds > 0 else 0.0,
            "mb_per_s": nbytes / seconds / 1e6 if seconds > 0 else 0.0,
            "latency": Latency.of(ok, len(errors)), "per_op": per_op,
            "cdf": [percentile(ok, i / (CDF_POINTS - 1)) for i in range(CDF_POINTS)],
            "error_samples": errors[:ERROR_SAMPLES]}


def run_cell(s: Scenario, subject: Subject, prefix: str, size: int, concurrency: int,
             repeat: int) -> Row:
    base = f"{subject.root}{prefix}"
    try:
        with RssPeak() as rss:
            _setup(s, subject, base, size)
            ops = operations(s, size, concurrency)
            if s.warmup:
                _phase(subject.measured, base, ops, s.warmup, None, concurrency, size, s.seed)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            samples = _phase(subject.measured, base, ops, s.count, s.duration, concurrency,
                             size, s.seed)
            seconds = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        clean(subject.store, base)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return Row(provider=subject.label, scheme=subject.store.location.scheme, size=size,
               concurrency=concurrency, repeat=repeat, cpu_seconds=cpu, peak_rss=rss.peak,
               **summarize(samples, seconds))


def run_objects(s: Scenario, subjects: list[Subject], run_id: str, repeats: int,
                progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every repeat x cell x provider, in that order (providers interleaved per cell)."""
    rows = []
    for repeat in range(repeats):
        for size, concurrency in s.cells():
            for subject in subjects:
                prefix = f"omnifs-bench/{run_id}/{size}-{concurrency}-{repeat}/"
                row = run_cell(s, subject, prefix, size, concurrency, repeat)
                rows.append(row)
                if progress:
                    progress(f"{s.name} {subject.label} {human_bytes(size)} c={concurrency} "
                             f"r={repeat}: {row.ops_per_s:.1f} ops/s, {row.mb_per_s:.2f} MB/s, "
                             f"p99 {row.latency.p99 * 1000:.1f} ms, {row.errors} errors")
    return rows
