"""A provider wrapper that makes any store slow, narrow, flaky, down or lying.

Why: replication, failover, hedged reads, integrity checks and DR drills all
need a store that misbehaves on cue and reproducibly. Wrapping (as S3QL wraps
backends for compression) keeps every real provider free of test hooks.

Not a URI scheme: build it in code, ``FaultyProvider(inner, latency=0.05)``.
Every knob is a plain attribute, read on each call, so a test or a drill can
flip it at runtime (``p.outage = True``) while other threads use the provider:

* ``latency``: seconds added before every request;
* ``jitter``: standard deviation (seconds) of a normal variation around
  ``latency`` (the sum clipped at 0), drawn from its own seeded RNG so the
  error sequence stays the same with or without it;
* ``bandwidth``: bytes/s shared by all streams of this provider (reads and
  writes), ``None`` for no cap;
* ``error_rate``: probability (0..1) that a request fails with one of
  ``error_types`` (Unavailable or Throttled), drawn from a seeded RNG;
* ``outage``: every request, and every chunk of a stream already open,
  raises Unavailable at once;
* ``corrupt_reads``: the first byte of every read stream comes back flipped,
  so integrity checks have something to catch (moto does not verify
  checksums itself).

``calls`` counts requests by operation, so a test can assert that something
did (or did not) reach the store.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

from .base import Capabilities, ObjectInfo, Provider, ReadStream, WriteSource, read_info
from .capabilities import CompatTable
from .errors import OmnifsError, Throttled, Unavailable


class _Bandwidth:
    """One link's capacity: callers reserve time slots in turn and sleep through them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0

    def consume(self, nbytes: int, rate: float | None) -> None:
        if not rate or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / rate
            wake = self._next
        delay = wake - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class _ReadStream(io.RawIOBase):
    """The inner provider's read stream, throttled, interruptible and maybe corrupted."""

    def __init__(self, owner: FaultyProvider, inner: ReadStream, key: str):
        self._owner = owner
        self._inner = inner
        self._key = key
        self._corrupt_pending = owner.corrupt_reads
        #: the inner read's description of the object (``Provider.open_read``)
        self.info = read_info(inner)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        self._owner._check_outage(self._key)
        view = memoryview(b)
        chunk = self._inner.read(min(len(view), self._owner.chunk_size))
        n = len(chunk)
        if n:
            view[:n] = chunk
            if self._corrupt_pending:
                view[0] ^= 0xFF
                self._corrupt_pending = False
            self._owner._link.consume(n, self._owner.bandwidth)
        return n

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class _WriteStream:
    """The caller's stream as the inner provider sees it: throttled and interruptible."""

    def __init__(self, owner: FaultyProvider, inner: WriteSource, key: str):
        self._owner = owner
        self._inner = inner
        self._key = key

    def read(self, n: int = -1) -> bytes:
        self._owner._check_outage(self._key)
        data = self._inner.read(n)
        self._owner._link.consume(len(data), self._owner.bandwidth)
        return data

    def readable(self) -> bool:
        return True


class FaultyProvider(Provider):
    """Wraps ``inner``; see the module docstring for the knobs."""

    schemes = ()

    def __init__(
        self,
        inner: Provider,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        bandwidth: float | None = None,
        error_rate: float = 0.0,
        error_types: tuple[type[OmnifsError], ...] = (Unavailable, Throttled),
        outage: bool = False,
        corrupt_reads: bool = False,
        seed: int = 0,
        name: str | None = None,
    ):
        # deliberately not Provider.__init__: there is no URI of our own
        self.inner = inner
        self.settings = inner.settings
        self.name = name or inner.name
        self.uri = inner.uri
        self.location = inner.location
        self.latency = latency
        self.jitter = jitter
        self.bandwidth = bandwidth
        self.error_rate = error_rate
        self.error_types = error_types
        self.outage = outage
        self.corrupt_reads = corrupt_reads
        #: largest piece a stream passes through at once, so throttling and outages bite mid-stream
        self.chunk_size = 256 * 1024
        self.calls: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._jitter_rng = random.Random(seed)
        self._link = _Bandwidth()

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # the inner store's, read-only
        return self.inner.capabilities

    @property
    def compat(self) -> CompatTable | None:  # type: ignore[override]  # the inner store's
        return self.inner.compat

    def seed(self, seed: int) -> None:
        """Restart the error sequence, e.g. at the start of a drill."""
        with self._rng_lock:
            self._rng.seed(seed)
            self._jitter_rng.seed(seed)

    def object_name(self, key: str) -> str:
        return self.inner.object_name(key)

    def key_limit(self) -> int:
        return self.inner.key_limit()

    def key_of(self, name: str) -> str:
        return self.inner.key_of(name)

    # -- the faults -----------------------------------------------------
    def _check_outage(self, key: str | None) -> None:
        if self.outage:
            raise Unavailable("store is down (injected outage)", provider=self.name, key=key)

    def _before(self, op: str, key: str | None) -> None:
        self.calls[op] += 1
        self._check_outage(key)
        delay = self.latency
        if self.jitter > 0:
            with self._rng_lock:
                delay += self._jitter_rng.gauss(0.0, self.jitter)
        if delay > 0:
            time.sleep(delay)
        if self.error_rate > 0:
            with self._rng_lock:
                hit = self._rng.random() < self.error_rate
                cls = self._rng.choice(self.error_types) if hit else None
            if cls is not None:
                raise cls(f"injected {cls.__name__.lower()} error", provider=self.name, key=key)

    # -- the primitives ------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        self._before("head", key)
        return self.inner.head(key)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        self._before("list", prefix or None)
        return self.inner.list(prefix, recursive, metadata)

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        self._before("open_read", key)
        return _ReadStream(self, self.inner.open_read(key, start, end), key)

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        self._before("write", key)
        wrapped = _WriteStream(self, stream, key)
        return self.inner.write(key, wrapped, size, metadata, content_type,
                                if_absent=if_absent, if_match=if_match)

    def match_token(self, info: ObjectInfo) -> str | None:
        return self.inner.match_token(info)

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        self._before("copy", dst_key)
        return self.inner.copy(src_key, dst_key, metadata)

    def delete(self, key: str) -> None:
        self._before("delete", key)
        self.inner.delete(key)

    def set_tier(self, key: str, tier: str) -> None:
        self._before("set_tier", key)
        self.inner.set_tier(key, tier)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<FaultyProvider over {self.inner!r}>"
