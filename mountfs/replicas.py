"""Fetch a byte range from the fastest healthy replica, hedging and failing over.

Why: the same bytes sit in several stores; the read should cost what the
fastest of them costs, even while another is slow, throttled or down.

* :class:`ProviderStats` learns each provider's first-byte latency and
  throughput from every real request, as EWMAs plus a short window of
  samples for a p95, and its round trip from probes
  (:meth:`ReplicaReader.probe`, run when a mount starts, so that even the
  first read goes to the fastest replica). :data:`REGISTRY` is the process-wide
  one ``omnifs status`` exports.
* :class:`ReplicaReader` ranks the candidates by the time they are expected
  to take for this many bytes (unmeasured ones first, so each gets measured
  once; ones that failed recently last). The first request that runs past
  its provider's p95 (never sooner than ``hedge_floor``) gets the same
  request started on the next replica; the first complete answer wins and
  the others stop at their next chunk. An error starts the next replica at
  once. Only when every replica has failed does the caller get one
  ``Unavailable`` naming the last error, or one ``NotFound`` when every
  store answered that it does not have the object (the bytes are gone,
  not out of reach).
* With a :class:`ReadHealth` (the mount's ``Stores``), a replica the mount
  holds down ranks with the recently failed, and every failure that says a
  store is unwell (not a missing key or bad bytes) is reported to it, so
  the mount's read failures count toward provider health. Only failures:
  successes are the hot path, and the report is throttled by the receiver.

Threads, not trio: providers are blocking, and the mount already calls into
the read path through ``trio.to_thread.run_sync``. Attempts run in one
bounded pool that never waits on anything but the network, so a caller
waiting on attempts cannot deadlock it.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from omnifs.policy.health import DOWN
from omnifs.providers import RESERVED_PREFIX, Provider, ReadStream
from omnifs.providers.base import probe
from omnifs.providers.errors import (
    Archived,
    IntegrityError,
    NotFound,
    OmnifsError,
    Unavailable,
)

from .stores import counts_against

log = logging.getLogger("omnifs.read")

#: how quickly the EWMAs follow new samples
ALPHA = 0.3
#: samples kept per provider for the p95
WINDOW = 64
#: a provider that failed within this many seconds ranks after healthy ones
ERROR_COOLDOWN = 30.0
#: piece size read from a provider's stream (cancellation is checked between pieces)
CHUNK = 1024 * 1024
#: round trips measured per provider when a mount starts (the first includes connecting)
PROBE_ROUNDS = 3
#: longest an unanswered probe counts as that provider's latency (ranking and hedging)
PROBE_PATIENCE = 2.0
#: seconds between looks at whether the reader was closed while a read waits on a store
CLOSE_POLL = 0.5
#: what a latency probe asks for: under the reserved prefix, never an object of ours
PROBE_KEY = RESERVED_PREFIX + "latency-probe"


@dataclass(frozen=True)
class Replica:
    """One place holding the bytes of the current version."""

    provider: Provider
    key: str

    @property
    def name(self) -> str:
        return self.provider.name


class ProviderStats:
    """What we measured of one provider. Thread-safe."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self.latency: float | None = None  # EWMA seconds to first byte
        self.throughput: float | None = None  # EWMA bytes/s after the first byte
        self._samples: deque[tuple[float, float]] = deque(maxlen=WINDOW)  # (ttfb, s/byte)
        self.requests = 0
        self.errors = 0
        self.bytes = 0
        self.hedges = 0
        #: hedges to this provider that answered first; failed reads sent to the next replica
        self.hedge_wins = 0
        self.failovers = 0
        self.last_error_at: float | None = None
        self.last_error: str | None = None
        #: when an unanswered probe of a not yet measured provider was sent
        self.probing_since: float | None = None

    def record(self, ttfb: float, nbytes: int, duration: float) -> None:
        """One finished request (``duration`` from start to last byte)."""
        ttfb = max(ttfb, 0.0)
        transfer = max(duration - ttfb, 1e-6)
        spb = transfer / nbytes if nbytes > 0 else 0.0
        with self._lock:
            self.requests += 1
            self.bytes += nbytes
            self.latency = (ttfb if self.latency is None
                            else (1 - ALPHA) * self.latency + ALPHA * ttfb)
            # tiny transfers say nothing about bandwidth
            if nbytes >= 64 * 1024:
                rate = nbytes / transfer
                self.throughput = rate if self.throughput is None else (
                    (1 - ALPHA) * self.throughput + ALPHA * rate)
            self._samples.append((ttfb, spb))

    def record_transfer(self, stream_ttfb: float, nbytes: int, seconds: float) -> None:
        """A block read from an already open stream: throughput, and a p95 sample.

        The sample pairs the stream's first-byte time with this block's rate,
        i.e. what a fresh request for the block would have cost.
        """
        if nbytes <= 0:
            return
        seconds = max(seconds, 1e-6)
        with self._lock:
            self.bytes += nbytes
            if nbytes >= 64 * 1024:
                rate = nbytes / seconds
                self.throughput = rate if self.throughput is None else (
                    (1 - ALPHA) * self.throughput + ALPHA * rate)
            self._samples.append((max(stream_ttfb, 0.0), seconds / nbytes))

    def record_slow(self, elapsed: float) -> None:
        """A request given up (lost a hedge) after ``elapsed`` without finishing.

        Without this a provider that always loses would never be measured and
        would keep ranking as unmeasured, i.e. first.
        """
        with self._lock:
            self.requests += 1
            self.latency = elapsed if self.latency is None else max(
                self.latency, (1 - ALPHA) * self.latency + ALPHA * elapsed)
            self._samples.append((elapsed, 0.0))

    def latency_bound(self) -> float | None:
        """The first-byte latency, or while the first probe is out, how long it has been."""
        latency, since = self.latency, self.probing_since
        if latency is not None:
            return latency
        # capped: a probe stuck until its SDK timeout must not hold back hedging that long
        return None if since is None else min(time.monotonic() - since, PROBE_PATIENCE)

    def probe_sent(self) -> None:
        with self._lock:
            if self.latency is None and self.probing_since is None:
                self.probing_since = time.monotonic()

    def record_probe(self, latency: float) -> None:
        """A round trip measured by a probe: seeds the latency EWMA only.

        No p95 sample: a probe moves no bytes, so it says nothing about how
        long a block takes (samples without a transfer time would make the
        hedge delay far too short for real reads).
        """
        with self._lock:
            latency = max(latency, 0.0)
            self.probing_since = None
            self.latency = latency if self.latency is None else (
                (1 - ALPHA) * self.latency + ALPHA * latency)

    def record_error(self, err: BaseException) -> None:
        with self._lock:
            self.requests += 1
            self.errors += 1
            self.last_error_at = time.monotonic()
            self.last_error = str(err).splitlines()[0] if str(err) else type(err).__name__

    def note_hedge(self) -> None:
        with self._lock:
            self.hedges += 1

    def note(self, counter: str) -> None:
        """One more ``hedge_wins`` or ``failovers``."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    @property
    def measured(self) -> bool:
        return self.latency is not None

    def recently_failed(self, now: float | None = None) -> bool:
        at = self.last_error_at
        return at is not None and (now or time.monotonic()) - at < ERROR_COOLDOWN

    def expected(self, nbytes: int) -> float:
        """Seconds a request for ``nbytes`` is expected to take (0 when unmeasured).

        A provider whose first probe has not answered yet has a latency of at
        least the time it has been waiting: a read arriving just after the
        mount started goes to a store that already answered, not to one still
        silent because it is slow.
        """
        latency = self.latency_bound()
        if latency is None:
            return 0.0
        rate = self.throughput or 50e6
        return latency + nbytes / rate

    def p95(self, nbytes: int) -> float | None:
        """95th percentile of what recent requests would have taken for ``nbytes``."""
        with self._lock:
            samples = list(self._samples)
        if len(samples) < 3:
            return None
        times = sorted(t + nbytes * spb for t, spb in samples)
        return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "provider": self.name,
                "latency_ms": None if self.latency is None else round(self.latency * 1000, 2),
                "throughput_mib_s": (None if self.throughput is None
                                     else round(self.throughput / 2**20, 1)),
                "requests": self.requests,
                "errors": self.errors,
                "hedges": self.hedges,
                "hedge_wins": self.hedge_wins,
                "failovers": self.failovers,
                "bytes": self.bytes,
                "last_error": self.last_error,
            }


class StatsRegistry:
    """ProviderStats by provider name."""

    def __init__(self) -> None:
        self._by_name: dict[str, ProviderStats] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ProviderStats:
        with self._lock:
            st = self._by_name.get(name)
            if st is None:
                st = self._by_name[name] = ProviderStats(name)
            return st

    def snapshot(self) -> list[dict]:
        with self._lock:
            stats = list(self._by_name.values())
        return [s.snapshot() for s in stats]

    def reset(self) -> None:
        with self._lock:
            self._by_name.clear()

    def save(self, path: str | Path) -> None:
        """Write the snapshot atomically, for `omnifs status` in another process."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"saved_at": time.time(), "providers": self.snapshot()}))
        os.replace(tmp, path)


#: where a mount leaves its measurements, under the cache directory
SNAPSHOT_NAME = "read-stats.json"


def load_snapshot(path: str | Path) -> dict | None:
    """What :meth:`StatsRegistry.save` wrote, or None when absent or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def mount_read_stats(cache_dir: str | Path, *, max_age: float | None = None) -> list[dict]:
    """Per provider, what the mount using ``cache_dir`` measured: for `omnifs status`.

    Each row is :meth:`ProviderStats.snapshot` (``provider``, ``latency_ms``,
    ``throughput_mib_s``, ``requests``, ``errors``, ``hedges``, ``bytes``,
    ``last_error``) plus ``age_s``, seconds since the mount saved it (every
    few seconds while it fetches, and at unmount). Empty when no mount has
    measured anything yet, or when the snapshot is older than ``max_age``.
    Reads one small JSON file: cheap enough for every status call.
    """
    snap = load_snapshot(Path(cache_dir) / SNAPSHOT_NAME)
    if not snap or not isinstance(snap.get("providers"), list):
        return []
    age = max(0.0, time.time() - float(snap.get("saved_at", 0.0)))
    if max_age is not None and age > max_age:
        return []
    return [{**row, "age_s": round(age, 1)} for row in snap["providers"] if isinstance(row, dict)]


#: the process-wide registry (the mount's; `omnifs status` exports it)
REGISTRY = StatsRegistry()


class _Cancelled(Exception):
    pass


T = TypeVar("T")


def _close_quietly(stream) -> None:
    if stream is None:
        return
    try:
        stream.close()
    except Exception as e:  # noqa: BLE001 - an abandoned stream; nothing left to lose
        log.debug("closing an abandoned stream: %s", e)


class ReadHealth(Protocol):
    """What the reader needs of the mount's health view (``mountfs.stores.Stores`` has it)."""

    def status(self, name: str) -> str: ...

    def report(self, name: str, ok: bool, latency: float, error: str | None = None) -> None: ...


class ReplicaReader:
    """Ranged reads over ordered replicas; see the module docstring."""

    def __init__(
        self,
        stats: StatsRegistry | None = None,
        *,
        max_workers: int = 32,
        hedge_floor: float = 0.1,
        hedge_default: float = 0.1,
        health: ReadHealth | None = None,
    ):
        self.stats = stats or REGISTRY
        #: the mount's health view; None in tests and tools that only measure
        self.health = health
        self.hedge_floor = hedge_floor
        #: hedge delay while a provider has too few samples for a p95: short, so
        #: that the first requests also measure the other replicas
        self.hedge_default = hedge_default
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers,
                                           thread_name_prefix="omnifs-fetch")
        #: set by :meth:`close`: a read still waiting on a store gives up
        self._closed = threading.Event()

    def rank(self, replicas: Sequence[Replica], nbytes: int) -> list[Replica]:
        """Fastest expected first; unmeasured before measured; recently failed last.

        Python's sort is stable, so ties keep the caller's (placement) order.
        """
        now = time.monotonic()

        def score(r: Replica) -> tuple[int, float]:
            st = self.stats.get(r.name)
            unwell = st.recently_failed(now) or self._down(r.name)
            return (1 if unwell else 0, st.expected(nbytes))

        return sorted(replicas, key=score)

    def _down(self, name: str) -> bool:
        if self.health is None:
            return False
        try:
            return self.health.status(name) == DOWN
        except Exception as e:  # noqa: BLE001 - ranking must not fail a read
            log.debug("health of %s not known: %s", name, e)
            return False

    def failed(self, name: str, err: BaseException, latency: float) -> None:
        """A request to ``name`` failed after ``latency`` s: into its stats and, if it
        says the store is unwell, to the mount's health (which throttles what it persists).
        """
        self.stats.get(name).record_error(err)
        if self.health is None or not counts_against(err):
            return
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        try:
            self.health.report(name, False, latency, text)
        except Exception as e:  # noqa: BLE001 - health bookkeeping must never fail a read
            log.debug("read failure of %s not reported: %s", name, e)

    def hedge_delay(self, replica: Replica, nbytes: int,
                    next_replica: Replica | None = None) -> float:
        """How long to wait for ``replica`` before asking ``next_replica`` too.

        Its recent p95 (twice its mean while it has too few samples, a short
        default while unmeasured), never below the floor, and never before
        the next replica's own first-byte latency (or the time its first
        probe has gone unanswered) plus the floor has passed: a store known
        to be that much slower cannot answer before the request we already
        have, unless that one hangs, and a needless hedge costs the stores a
        second full request.
        """
        st = self.stats.get(replica.name)
        p95 = st.p95(nbytes)
        if p95 is None:
            p95 = 2 * st.expected(nbytes) if st.measured else self.hedge_default
        delay = max(p95, self.hedge_floor)
        if next_replica is not None:
            bound = self.stats.get(next_replica.name).latency_bound()
            if bound is not None:
                delay = max(delay, bound + self.hedge_floor)
        return delay

    def probe(self, providers: Sequence[Provider], rounds: int = PROBE_ROUNDS) -> list[cf.Future]:
        """Measure each provider's round trip in the background, before any read needs it.

        Without it the first read of a mount goes to the first replica in
        placement order, slow or not, and pays a hedge delay whenever that
        one is slow. A probe is a HEAD of a key that does not exist
        (:data:`PROBE_KEY`): a real request to the store that moves no data;
        "not found" is the expected answer. A store that fails its probe is
        counted as failed (ranked last) like after a failed read.
        """
        for p in providers:
            self.stats.get(p.name).probe_sent()  # before any read can rank them
        return [self._pool.submit(self._probe, p, rounds) for p in providers]

    def _probe(self, provider: Provider, rounds: int) -> None:
        st = self.stats.get(provider.name)
        for _ in range(rounds):
            t0 = time.monotonic()
            try:
                probe(provider, PROBE_KEY)
            except Exception as e:  # noqa: BLE001 - a probe must never escape its thread
                st.probing_since = None
                self.failed(provider.name, e, time.monotonic() - t0)
                return
            st.record_probe(time.monotonic() - t0)

    def fetch(self, replicas: Sequence[Replica], start: int, end: int) -> bytes:
        """Bytes ``[start, end)``; exactly that many or an error.

        The range must lie in the file.
        """
        if end - start <= 0:
            return b""
        return self._race(replicas, end - start,
                          lambda r, cancel: self._attempt(r, start, end, cancel), None)

    def open_stream(self, replicas: Sequence[Replica], start: int, end: int
                    ) -> tuple[Replica, ReadStream, bytes, float]:
        """A stream of ``[start, end)`` from the fastest replica.

        Returns (replica, stream, first piece, ttfb).

        For sequential read-ahead: one long GET instead of one per block
        (some stores, moto among them, pay per request in proportion to the
        object's size). The open is hedged and failed over like ``fetch``;
        the caller owns (and must close) the stream.
        """
        return self._race(replicas, min(end - start, CHUNK),
                          lambda r, cancel: self._open_attempt(r, start, end, cancel),
                          lambda result: _close_quietly(result[1]))

    def _race(self, replicas: Sequence[Replica], want: int,
              attempt: Callable[[Replica, threading.Event], T],
              discard: Callable[[T], None] | None) -> T:
        """Run ``attempt`` on the best replica, hedging on slowness and failing over on errors."""
        if not replicas:
            raise NotFound("no store holds its current version")
        queue = self.rank(replicas, want)
        cancel = threading.Event()
        running: dict[cf.Future, tuple[Replica, float]] = {}
        last_err: BaseException | None = None
        missing: list[str] = []  # replicas whose store said it has no such object
        archived: list[str] = []  # replicas that must be restored before a read
        winner: cf.Future | None = None
        hedged: set[cf.Future] = set()

        def launch(hedge: bool = False) -> None:
            if self._closed.is_set():
                raise Unavailable("the mount is closing")
            replica = queue.pop(0)
            fut = self._pool.submit(attempt, replica, cancel)
            running[fut] = (replica, time.monotonic())
            if hedge:
                hedged.add(fut)

        launch()
        try:
            while running:
                newest_replica, newest_start = list(running.values())[-1]
                timeout = CLOSE_POLL
                if queue:
                    deadline = newest_start + self.hedge_delay(newest_replica, want, queue[0])
                    timeout = min(CLOSE_POLL, max(0.0, deadline - time.monotonic()))
                done, _ = cf.wait(running, timeout=timeout, return_when=cf.FIRST_COMPLETED)
                if self._closed.is_set() and not done:
                    raise Unavailable("the mount is closing")
                if not done:
                    if not queue:
                        continue  # nothing to hedge on: wait for the attempts out
                    if time.monotonic() < newest_start + self.hedge_delay(newest_replica, want,
                                                                          queue[0]):
                        continue  # the next one's probe is still out: its bound grew
                    # the newest attempt is slower than its provider's p95: hedge
                    self.stats.get(newest_replica.name).note_hedge()
                    log.debug("hedging on %s after %.3fs", queue[0].name,
                              time.monotonic() - newest_start)
                    launch(hedge=True)
                    continue
                for fut in done:
                    replica, _started = running.pop(fut)
                    err = fut.exception()
                    if err is None:
                        if winner is None:
                            winner = fut
                            if fut in hedged:
                                self.stats.get(replica.name).note("hedge_wins")
                        elif discard is not None:
                            discard(fut.result())
                        continue
                    last_err = err
                    if isinstance(err, NotFound):
                        missing.append(replica.name)
                    elif isinstance(err, Archived):
                        archived.append(replica.name)
                    log.info("read of %s from %s failed (%s); trying the next replica",
                             replica.key, replica.name, err)
                    if queue and winner is None:
                        self.stats.get(replica.name).note("failovers")
                        launch()
                if winner is not None:
                    return winner.result()
            assert last_err is not None
            if len(missing) == len(replicas):
                raise NotFound(f"missing from every store that should hold it "
                               f"({', '.join(missing)})") from None
            if archived and len(missing) + len(archived) == len(replicas):
                raise Archived(f"archived on {', '.join(archived)}: it must be restored "
                               "before it can be read") from None
            msg = str(last_err).splitlines()[0] if str(last_err) else type(last_err).__name__
            raise Unavailable(f"every replica failed ({len(replicas)}); last: {msg}") from None
        finally:
            cancel.set()
            for fut, (replica, started) in running.items():
                if not fut.done():
                    self.stats.get(replica.name).record_slow(time.monotonic() - started)
                if discard is not None:
                    fut.add_done_callback(lambda f: f.exception() is None and discard(f.result()))

    def _open_attempt(self, replica: Replica, start: int, end: int, cancel: threading.Event
                      ) -> tuple[Replica, ReadStream, bytes, float]:
        st = self.stats.get(replica.name)
        t0 = time.monotonic()
        stream = None
        try:
            stream = replica.provider.open_read(replica.key, start, end)
            first = stream.read(min(CHUNK, end - start))
        except OmnifsError as e:
            _close_quietly(stream)
            self.failed(replica.name, e, time.monotonic() - t0)
            raise
        except Exception as e:  # noqa: BLE001 - a provider bug must not hide the other replicas
            _close_quietly(stream)
            err = Unavailable(f"unexpected {type(e).__name__}: {e}", provider=replica.name,
                              key=replica.key)
            self.failed(replica.name, err, time.monotonic() - t0)
            raise err from None
        ttfb = time.monotonic() - t0
        if cancel.is_set():
            _close_quietly(stream)
            raise _Cancelled
        if not first:
            _close_quietly(stream)
            empty = IntegrityError(f"empty stream at offset {start}", provider=replica.name,
                                   key=replica.key)
            self.failed(replica.name, empty, time.monotonic() - t0)
            raise empty
        with st._lock:
            st.requests += 1
            st.latency = ttfb if st.latency is None else (1 - ALPHA) * st.latency + ALPHA * ttfb
        return replica, stream, first, ttfb

    def _attempt(self, replica: Replica, start: int, end: int, cancel: threading.Event) -> bytes:
        st = self.stats.get(replica.name)
        want = end - start
        t0 = time.monotonic()
        ttfb: float | None = None
        buf = bytearray()
        try:
            with replica.provider.open_read(replica.key, start, end) as stream:
                while len(buf) < want:
                    if cancel.is_set():
                        raise _Cancelled
                    piece = stream.read(min(CHUNK, want - len(buf)))
                    if ttfb is None:
                        ttfb = time.monotonic() - t0
                    if not piece:
                        break
                    buf += piece
        except _Cancelled:
            raise
        except OmnifsError as e:
            self.failed(replica.name, e, time.monotonic() - t0)
            raise
        except Exception as e:  # noqa: BLE001 - a provider bug must not hide the other replicas
            log.warning("unexpected error reading %s from %s: %r", replica.key, replica.name, e)
            err = Unavailable(f"unexpected {type(e).__name__}: {e}", provider=replica.name,
                              key=replica.key)
            self.failed(replica.name, err, time.monotonic() - t0)
            raise err from None
        if cancel.is_set():
            raise _Cancelled
        if len(buf) != want:
            short = IntegrityError(f"short read: got {len(buf)} of {want} bytes at offset {start}",
                                   provider=replica.name, key=replica.key)
            self.failed(replica.name, short, time.monotonic() - t0)
            raise short
        st.record(ttfb or 0.0, want, time.monotonic() - t0)
        return bytes(buf)

    def close(self) -> None:
        """Stop: reads still waiting on a store end within :data:`CLOSE_POLL` seconds."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
