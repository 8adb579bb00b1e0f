"""The one instrumentation point of the provider layer: every request to every store.

``open_provider`` (registry.py) wraps each provider it opens in a
:class:`MeteredProvider`, so the CLI, the mount and the daemon measure their
requests the same way, with one set of names for every kind of store:

* ``omnifs_store_requests_total{provider,kind,op}``;
* ``omnifs_store_request_seconds{provider,kind,op}``: a histogram of how long
  a request took as the caller saw it (for ``get``, until the response's
  first byte could be read: ``open_read`` returning; for ``list``, the whole
  listing; for ``put``, the whole upload);
* ``omnifs_store_read_bytes_total`` and ``omnifs_store_written_bytes_total``
  (counted as a read stream is consumed, and as an upload's source is read);
* ``omnifs_store_errors_total{provider,kind,op,error}`` with ``error`` the
  normalised class of ``providers.errors`` (``not_found``, ``throttled``,
  ``unavailable``, ``timed_out``, ...);
* ``omnifs_store_retries_total``: retries the SDKs made inside one request,
  reported by each provider's own retry hook through :func:`note_retry`
  (botocore's ``RetryAttempts``, google-api-core's ``on_error``, azure-core's
  and urllib3's ``increment``). Retries in an SDK's own worker threads (the
  parts of a parallel upload) are not seen.

``op`` is one of :data:`OPS`; no label names a file, so the number of series
is bounded by providers x ops x error classes.

:func:`tally` gives the same counts as plain numbers for this process (the
cost report persists them). ``enabled(False)`` makes ``open_provider`` hand
out bare providers: no measuring at all, the baseline of the overhead bench.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from .base import Capabilities, ObjectInfo, Provider, ReadStream, WriteSource, read_info
from .errors import OmnifsError

#: the operations requests are counted under (``set_tier`` is a copy in place)
OPS = ("get", "put", "head", "list", "delete", "copy")

#: latency buckets, seconds: from a cached local head to a slow multipart upload
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0)

# no ``_created`` series: they double what a scrape carries and no dashboard reads them
disable_created_metrics()

#: the process's store metrics (the daemon and the mount export it beside their own)
REGISTRY = CollectorRegistry(auto_describe=True)
_LABELS = ("provider", "kind", "op")
REQUESTS = Counter("omnifs_store_requests", "Requests to a store", _LABELS, registry=REGISTRY)
SECONDS = Histogram("omnifs_store_request_seconds", "Latency of a request to a store",
                    _LABELS, buckets=BUCKETS, registry=REGISTRY)
READ_BYTES = Counter("omnifs_store_read_bytes", "Bytes read from a store", _LABELS,
                     registry=REGISTRY)
WRITTEN_BYTES = Counter("omnifs_store_written_bytes", "Bytes written to a store", _LABELS,
                        registry=REGISTRY)
ERRORS = Counter("omnifs_store_errors", "Failed requests to a store, by normalised error class",
                 (*_LABELS, "error"), registry=REGISTRY)
RETRIES = Counter("omnifs_store_retries", "Retries an SDK made within a request", _LABELS,
                  registry=REGISTRY)

_on = True
_tally_lock = threading.Lock()
#: (provider, op) -> [requests, errors, bytes_in, bytes_out]
_tally: dict[tuple[str, str], list[int]] = {}
_retries = threading.local()


def enabled(on: bool | None = None) -> bool:
    """Whether ``open_provider`` meters the providers it opens; ``on`` sets it first."""
    global _on
    if on is not None:
        _on = bool(on)
    return _on


def tally() -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """Cumulative for this process: (provider name, op) -> (requests, errors, bytes_in,
    bytes_out), ``op`` one of :data:`OPS`; bytes_in were read from the store."""
    with _tally_lock:
        return {k: (v[0], v[1], v[2], v[3]) for k, v in _tally.items()}


def note_retry(n: int = 1) -> None:
    """Called by a provider's SDK retry hook: the request in this thread was retried."""
    _retries.n = getattr(_retries, "n", 0) + n


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def error_class(exc: BaseException) -> str:
    """The normalised class of ``exc`` (``TimedOut`` -> ``timed_out``), ``other`` for
    anything that is not an omnifs error."""
    if not isinstance(exc, OmnifsError):
        return "other"
    name = type(exc).__name__.removesuffix("Error") or "omnifs"
    return _SNAKE.sub("_", name).lower()


class _Op:
    """One (provider, op)'s counters, resolved once: a request costs no label lookup."""

    __slots__ = ("errors", "hist", "labels", "read", "requests", "retries", "row", "written")

    def __init__(self, provider: str, kind: str, op: str):
        self.labels = (provider, kind, op)
        self.requests = REQUESTS.labels(*self.labels)
        self.hist = SECONDS.labels(*self.labels)
        self.read = READ_BYTES.labels(*self.labels)
        self.written = WRITTEN_BYTES.labels(*self.labels)
        self.retries = RETRIES.labels(*self.labels)
        self.errors: dict[str, Counter] = {}
        with _tally_lock:
            self.row = _tally.setdefault((provider, op), [0, 0, 0, 0])

    def done(self, started: float, exc: BaseException | None) -> None:
        self.hist.observe(time.perf_counter() - started)
        self.requests.inc()
        retried = getattr(_retries, "n", 0)
        if retried:
            _retries.n = 0
            self.retries.inc(retried)
        with _tally_lock:
            self.row[0] += 1
            if exc is not None:
                self.row[1] += 1
        if exc is not None:
            cls = error_class(exc)
            child = self.errors.get(cls)
            if child is None:
                child = self.errors[cls] = ERRORS.labels(*self.labels, cls)
            child.inc()

    def moved(self, nbytes: int, *, read: bool) -> None:
        (self.read if read else self.written).inc(nbytes)
        with _tally_lock:
            self.row[2 if read else 3] += nbytes


class _Timed:
    """``with op.timed():`` one request, counted with its outcome."""

    __slots__ = ("op", "started")

    def __init__(self, op: _Op):
        self.op = op

    def __enter__(self) -> None:
        _retries.n = 0
        self.started = time.perf_counter()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.op.done(self.started, exc if isinstance(exc, Exception) else None)


class _CountedRead(io.RawIOBase):
    """A read stream whose bytes are counted as the caller consumes them."""

    def __init__(self, inner: ReadStream, op: _Op):
        self._inner = inner
        self._op = op
        #: the inner read's description of the object (``Provider.open_read``)
        self.info = read_info(inner)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        if data:
            self._op.moved(len(data), read=True)
        return data

    def readinto(self, b) -> int:
        into = getattr(self._inner, "readinto", None)
        if into is None:
            data = self._inner.read(len(b))
            n = len(data)
            memoryview(b)[:n] = data
        else:
            n = into(b) or 0
        if n:
            self._op.moved(n, read=True)
        return n

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class _CountedSource:
    """An upload's source whose bytes are counted as the store reads them."""

    def __init__(self, inner: WriteSource, op: _Op):
        self._inner = inner
        self._op = op

    def read(self, n: int = -1, /) -> bytes:
        data = self._inner.read(n)
        if data:
            self._op.moved(len(data), read=False)
        return data

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def _listing(entries: Iterator[ObjectInfo], op: _Op, started: float) -> Iterator[ObjectInfo]:
    """A listing's entries; the request is counted once they are all read (or it failed)."""
    failed: BaseException | None = None
    try:
        yield from entries
    except Exception as e:
        failed = e
        raise
    finally:
        op.done(started, failed)


class MeteredProvider(Provider):
    """Wraps ``inner`` and measures each of its requests (see the module docstring)."""

    schemes = ()

    def __init__(self, inner: Provider):
        # deliberately not Provider.__init__: the inner store has the URI
        self.inner = inner
        self.settings = inner.settings
        self.name = inner.name
        self.uri = inner.uri
        self.location = inner.location
        self.kind = inner.location.scheme
        self._ops = {op: _Op(self.name, self.kind, op) for op in OPS}

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # the inner store's
        return self.inner.capabilities

    @property
    def sdk_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return self.inner.sdk_errors

    def translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        return self.inner.translate(exc, key)

    def object_name(self, key: str) -> str:
        return self.inner.object_name(key)

    def key_limit(self) -> int:
        return self.inner.key_limit()

    def key_of(self, name: str) -> str:
        return self.inner.key_of(name)

    def __getattr__(self, name: str):
        # a store's own extras (an S3 client, a file store's root) stay reachable
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- the primitives ------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        with _Timed(self._ops["head"]):
            return self.inner.head(key)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        op = self._ops["list"]
        _retries.n = 0
        started = time.perf_counter()
        try:
            entries = self.inner.list(prefix, recursive, metadata)
        except Exception as e:
            op.done(started, e)
            raise
        return _listing(entries, op, started)

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        op = self._ops["get"]
        with _Timed(op):
            stream = self.inner.open_read(key, start, end)
        return _CountedRead(stream, op)

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None) -> ObjectInfo:
        op = self._ops["put"]
        with _Timed(op):
            return self.inner.write(key, _CountedSource(stream, op), size, metadata,
                                    content_type)

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        with _Timed(self._ops["copy"]):
            return self.inner.copy(src_key, dst_key, metadata)

    def delete(self, key: str) -> None:
        with _Timed(self._ops["delete"]):
            self.inner.delete(key)

    def set_tier(self, key: str, tier: str) -> None:
        with _Timed(self._ops["copy"]):
            self.inner.set_tier(key, tier)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<MeteredProvider over {self.inner!r}>"


def metered(provider: Provider) -> Provider:
    """``provider`` measured (once: an already metered one as it is); bare when disabled."""
    if not _on or isinstance(provider, MeteredProvider):
        return provider
    return MeteredProvider(provider)
