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
  (counted as a read stream is consumed, and as an upload's source is read;
  added to the totals each MiB and when the stream or upload ends; the bytes of
  ``read_bytes`` and ``write_bytes``, which move at once, with their request);
* ``omnifs_store_errors_total{provider,kind,op,error}`` with ``error`` the
  normalised class of ``providers.errors`` (``not_found``, ``throttled``,
  ``unavailable``, ``timed_out``, ...);
* ``omnifs_store_retries_total``: retries the SDKs made inside one request,
  reported by each provider's own retry hook through :func:`note_retry`
  (botocore's attempts sent less its calls, google-api-core's ``on_error``,
  azure-core's and urllib3's ``increment``). Retries in an SDK's own worker
  threads (the parts of a parallel upload) are not seen.

``op`` is one of :data:`OPS`; no label names a file, so the number of series
is bounded by providers x ops x error classes.

What a request costs: each (provider, kind, op) keeps plain numbers (:class:`_Op`),
resolved once per wrapper; a request adds to them under one uncontended lock
(acquire/release, no object created) and :class:`_Collector` turns them into
series only when ``/metrics`` is scraped. No prometheus-client metric object is
touched per request.

:func:`tally` gives the same counts as plain numbers for this process (the
cost report persists them). ``enabled(False)`` makes ``open_provider`` hand
out bare providers: no measuring at all, the baseline of the overhead bench.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Iterator
from time import perf_counter
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .base import Capabilities, ObjectInfo, Provider, ReadStream, WriteSource
from .errors import OmnifsError
from .metered_streams import CountedRead, CountedSource, listing

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: the operations requests are counted under (``set_tier`` is a copy in place)
OPS = ("get", "put", "head", "list", "delete", "copy")

#: latency buckets, seconds: from a cached local head to a slow multipart upload
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0)
#: the first bucket's bound: most requests of a local store fall below it
_FIRST = BUCKETS[0]

# no ``_created`` series: they double what a scrape carries and no dashboard reads them
disable_created_metrics()

#: the process's store metrics (the daemon and the mount export it beside their own)
REGISTRY = CollectorRegistry(auto_describe=False)

_on = True
_ops_lock = threading.Lock()
#: (provider, kind, op) -> its counts, shared by every wrapper of that store in this process
_OPS: dict[tuple[str, str, str], _Op] = {}


class _Retries(threading.local):
    """Retries noted in this thread since its current request began (0 until one is)."""

    n = 0


_retries = _Retries()


def enabled(on: bool | None = None) -> bool:
    """Whether ``open_provider`` meters the providers it opens; ``on`` sets it first."""
    global _on
    if on is not None:
        _on = bool(on)
    return _on


def tally() -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """Cumulative for this process: (provider name, op) -> (requests, errors, bytes_in,
    bytes_out), ``op`` one of :data:`OPS`; bytes_in were read from the store."""
    out: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    with _ops_lock:
        ops = list(_OPS.items())
    for (provider, _kind, op), o in ops:
        with o.lock:
            row = (o.requests, sum(o.errors.values()), o.read, o.written)
        old = out.get((provider, op), (0, 0, 0, 0))
        out[(provider, op)] = (old[0] + row[0], old[1] + row[1], old[2] + row[2],
                               old[3] + row[3])
    return out


def note_retry(n: int = 1) -> None:
    """Called by a provider's SDK retry hook: the request in this thread was retried."""
    _retries.n += n


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def error_class(exc: BaseException) -> str:
    """The normalised class of ``exc`` (``TimedOut`` -> ``timed_out``), ``other`` for
    anything that is not an omnifs error."""
    if not isinstance(exc, OmnifsError):
        return "other"
    name = type(exc).__name__.removesuffix("Error") or "omnifs"
    return _SNAKE.sub("_", name).lower()


class _Op:
    """One (provider, kind, op)'s counts: plain numbers under one lock, so a request costs
    one lock and no label lookup; :class:`_Collector` turns them into series at a scrape."""

    __slots__ = ("buckets", "errors", "lock", "read", "requests", "retries", "seconds",
                 "written")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.read = self.written = self.retries = 0
        self.seconds = 0.0
        #: requests per latency bucket (not cumulative); the last is +Inf
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.errors: dict[str, int] = {}

    @staticmethod
    def of(provider: str, kind: str, op: str) -> _Op:
        with _ops_lock:
            o = _OPS.get((provider, kind, op))
            if o is None:
                o = _OPS[(provider, kind, op)] = _Op()
            return o

    def ok(self, took: float, read: int, written: int, error: str | None = None) -> None:
        """One request answered after ``took`` seconds, with the bytes it moved (or one
        that failed with the normalised ``error``).

        The hot path of every request: one cheap acquire/release (not a ``with``), a
        comparison instead of a bisection for the fastest bucket, no object created.
        """
        i = 0 if took <= _FIRST else bisect_left(BUCKETS, took)
        retried = _retries.n
        lock = self.lock
        lock.acquire()
        try:
            self.requests += 1
            self.seconds += took
            self.buckets[i] += 1
            if read:
                self.read += read
            if written:
                self.written += written
            if retried:
                self.retries += retried
            if error is not None:
                self.errors[error] = self.errors.get(error, 0) + 1
        finally:
            lock.release()
        if retried:
            _retries.n = 0

    def failed(self, started: float, exc: BaseException) -> None:
        """One request that raised ``exc``, begun at ``started`` (``perf_counter``)."""
        self.ok(perf_counter() - started, 0, 0, error_class(exc))

    def moved(self, nbytes: int, *, read: bool) -> None:
        with self.lock:
            if read:
                self.read += nbytes
            else:
                self.written += nbytes


class _Collector(Collector):
    """The store series, rendered from every :class:`_Op` at a scrape."""

    def collect(self) -> Iterator[Metric]:
        labels = ["provider", "kind", "op"]
        requests = CounterMetricFamily("omnifs_store_requests", "Requests to a store",
                                       labels=labels)
        seconds = HistogramMetricFamily("omnifs_store_request_seconds",
                                        "Latency of a request to a store", labels=labels)
        read = CounterMetricFamily("omnifs_store_read_bytes", "Bytes read from a store",
                                   labels=labels)
        written = CounterMetricFamily("omnifs_store_written_bytes", "Bytes written to a store",
                                      labels=labels)
        errors = CounterMetricFamily("omnifs_store_errors", "Failed requests to a store, by "
                                     "normalised error class", labels=[*labels, "error"])
        retries = CounterMetricFamily("omnifs_store_retries",
                                      "Retries an SDK made within a request", labels=labels)
        with _ops_lock:
            ops = list(_OPS.items())
        for key, o in ops:
            with o.lock:
                n, total, counts = o.requests, o.seconds, list(o.buckets)
                moved_in, moved_out, again = o.read, o.written, o.retries
                failed = dict(o.errors)
            values = list(key)
            requests.add_metric(values, n)
            running, cumulative = 0, []
            for bound, count in zip(_BOUNDS, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            seconds.add_metric(values, cumulative, total)
            read.add_metric(values, moved_in)
            written.add_metric(values, moved_out)
            retries.add_metric(values, again)
            for cls, count in failed.items():
                errors.add_metric([*values, cls], count)
        yield from (requests, seconds, read, written, errors, retries)


_BOUNDS = [*(f"{b:g}" for b in BUCKETS), "+Inf"]
REGISTRY.register(_Collector())


def _call(op: _Op, fn, *args):
    """``fn(*args)``: one request, counted with its outcome."""
    _retries.n = 0
    started = perf_counter()
    try:
        result = fn(*args)
    except Exception as e:
        op.failed(started, e)
        raise
    op.ok(perf_counter() - started, 0, 0)
    return result


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
        self._ops = {op: _Op.of(self.name, self.kind, op) for op in OPS}
        self._get, self._put = self._ops["get"], self._ops["put"]

    @property
    def capabilities(self) -> Capabilities:  # the inner store's
        return self.inner.capabilities

    @capabilities.setter
    def capabilities(self, caps: Capabilities) -> None:  # compat's forced fallbacks
        self.inner.capabilities = caps

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
        return _call(self._ops["head"], self.inner.head, key)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        op = self._ops["list"]
        _retries.n = 0
        started = perf_counter()
        try:
            entries = self.inner.list(prefix, recursive, metadata)
        except Exception as e:
            op.failed(started, e)
            raise
        return listing(entries, op, started)

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        op = self._get
        return CountedRead(_call(op, self.inner.open_read, key, start, end), op)

    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The GET of ``Provider.read_bytes``; the bytes come back at once, so they are
        counted with the request, without a counting stream around the inner one."""
        op = self._get
        _retries.n = 0
        started = perf_counter()
        try:
            stream = self.inner.open_read(key, start, end)
        except Exception as e:
            op.failed(started, e)
            raise
        took = perf_counter() - started
        try:
            with stream:
                data = stream.read()
        except BaseException:
            op.ok(took, 0, 0)  # the request was answered; its body failed
            raise
        op.ok(took, len(data), 0)
        return data

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        """The inner store's write, its source counted."""
        op = self._put
        source = CountedSource(stream, op)
        _retries.n = 0
        started = perf_counter()
        try:
            info = self.inner.write(key, source, size, metadata, content_type,
                                    if_absent=if_absent, if_match=if_match)
        except Exception as e:
            op.failed(started, e)
            raise
        finally:
            source.settle()
        op.ok(perf_counter() - started, 0, 0)
        return info

    def write_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                    content_type: str | None = None, *, if_absent: bool = False,
                    if_match: str | None = None) -> ObjectInfo:
        """The PUT of ``Provider.write_bytes``: ``data`` is counted as written once the
        store took it, without a counting source around it."""
        op = self._put
        _retries.n = 0
        started = perf_counter()
        try:
            info = self.inner.write_bytes(key, data, metadata, content_type,
                                          if_absent=if_absent, if_match=if_match)
        except Exception as e:
            op.failed(started, e)
            raise
        op.ok(perf_counter() - started, 0, len(data))
        return info

    def match_token(self, info: ObjectInfo) -> str | None:
        return self.inner.match_token(info)


    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        return _call(self._ops["copy"], self.inner.copy, src_key, dst_key, metadata)

    def delete(self, key: str) -> None:
        _call(self._ops["delete"], self.inner.delete, key)

    def set_tier(self, key: str, tier: str) -> None:
        _call(self._ops["copy"], self.inner.set_tier, key, tier)

    def restore(self, key: str, days: int = 1) -> bool:
        # a POST (S3 RestoreObject) or a tier change (Azure): billed like a write
        return _call(self._ops["put"], self.inner.restore, key, days)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<MeteredProvider over {self.inner!r}>"


def metered(provider: Provider) -> Provider:
    """``provider`` measured (once: an already metered one as it is); bare when disabled."""
    if not _on or isinstance(provider, MeteredProvider):
        return provider
    return MeteredProvider(provider)
