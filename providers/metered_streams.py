"""The stream wrappers of ``metered``: a read, an upload's source and a listing, counted.

Each counts into an ``Op`` of ``metered`` (any object with ``ok``, ``failed`` and
``moved``), which imports this module; nothing here imports it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from time import perf_counter
from typing import Protocol

from .base import ObjectInfo, ReadStream, WriteSource


class Op(Protocol):
    """What a wrapper counts into: ``metered._Op``."""

    def ok(self, took: float, read: int, written: int, error: str | None = None) -> None: ...
    def failed(self, started: float, exc: BaseException) -> None: ...
    def moved(self, nbytes: int, *, read: bool) -> None: ...


#: bytes a stream counts on its own before adding them to its op's totals (under the lock)
FLUSH_BYTES = 1 << 20


class CountedRead:
    """A read stream whose bytes are counted as the caller consumes them.

    A plain object, not an ``io.RawIOBase``: half the cost per read, which is
    what a small GET of a local store is made of. Anything else a store's
    stream offers is passed through. A stream is read by one thread at a time,
    so it counts its bytes in a plain attribute and adds them to its op's totals
    (one lock) each :data:`FLUSH_BYTES` and when it closes: a cold read through
    the mount calls ``readinto`` once per socket read, thousands of times per MiB
    object, and a lock each time was measurable there.
    """

    __slots__ = ("_inner", "_into", "_op", "_pending", "closed", "info")

    def __init__(self, inner: ReadStream, op: Op):
        self._inner = inner
        self._op = op
        self._into = getattr(inner, "readinto", None)
        self._pending = 0
        self.closed = False
        #: the inner read's description of the object (``Provider.open_read``, read_info)
        info = getattr(inner, "info", None)
        self.info = info if isinstance(info, ObjectInfo) else None

    def readable(self) -> bool:
        return True

    def _flush(self, n: int) -> int:
        """Add ``n`` pending bytes to the op's totals; what is left pending (0)."""
        self._op.moved(n, read=True)
        return 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        n = self._pending + len(data)
        self._pending = n if n < FLUSH_BYTES else self._flush(n)
        return data

    def readinto(self, b) -> int:
        into = self._into
        if into is None:
            data = self._inner.read(len(b))
            got = len(data)
            memoryview(b)[:got] = data
        else:
            got = into(b) or 0
        n = self._pending + got
        self._pending = n if n < FLUSH_BYTES else self._flush(n)
        return got

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._pending:
                self._op.moved(self._pending, read=True)
                self._pending = 0
            self._inner.close()

    def __enter__(self) -> CountedRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class CountedSource:
    """An upload's source whose bytes are counted as the store reads them (added to the
    op's totals each :data:`FLUSH_BYTES` and by :meth:`settle` when the upload ends)."""

    def __init__(self, inner: WriteSource, op: Op):
        self._inner = inner
        self._op = op
        self._pending = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._inner.read(n)
        if data:
            total = self._pending + len(data)
            if total >= FLUSH_BYTES:
                self._op.moved(total, read=False)
                total = 0
            self._pending = total
        return data

    def settle(self) -> None:
        """Add the bytes not yet added to the op's totals."""
        if self._pending:
            self._op.moved(self._pending, read=False)
            self._pending = 0

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def listing(entries: Iterator[ObjectInfo], op: Op, started: float) -> Iterator[ObjectInfo]:
    """A listing's entries; the request is counted once they are all read (or it failed)."""
    failed = False
    try:
        yield from entries
    except Exception as e:
        failed = True
        op.failed(started, e)
        raise
    finally:
        if not failed:  # read to the end, or left early by its reader
            op.ok(perf_counter() - started, 0, 0)
