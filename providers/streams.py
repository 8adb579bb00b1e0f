"""Stream helpers every provider shares: full reads and SDK bodies as plain files."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from .base import ObjectInfo

log = logging.getLogger(__name__)


def read_full(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of stream (pipes and sockets read short)."""
    first = stream.read(n)
    if not first or len(first) >= n:
        return first or b""
    chunks = [first]
    got = len(first)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def whole_size(content_range: str | None, length: int | str | None) -> int | None:
    """The object's size from a read response: ``Content-Range: bytes a-b/N`` gives N,
    else (a whole read) the body's length; None when neither says."""
    if content_range:
        total = content_range.rpartition("/")[2].strip()
        return int(total) if total.isdigit() else None
    if length is None:
        return None
    length = str(length).strip()
    return int(length) if length.isdigit() else None


class TranslatingReader(io.RawIOBase):
    """An SDK's response body as a file whose read errors are omnifs errors.

    A connection that drops mid-read must reach the caller as ``Unavailable``
    like any other failed call, not as the transport's own exception.
    ``info`` is what the response said about the object (``Provider.open_read``).
    """

    def __init__(self, body: Any, errors: tuple[type[BaseException], ...],
                 translate: Callable[[BaseException], BaseException],
                 on_close: Callable[[], None] | None = None, info: ObjectInfo | None = None):
        super().__init__()
        self.info = info
        self._body = body
        self._errors = errors
        self._translate = translate
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed stream")
        try:
            return self._body.read(None if n is None or n < 0 else n)
        except self._errors as e:
            raise self._translate(e) from e

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b) -> int:
        """Into ``b`` without a copy when the body can (providers/s3wire.py's WireBody)."""
        if isinstance(self._body, io.RawIOBase):
            if self.closed:
                raise ValueError("read from a closed stream")
            try:
                return self._body.readinto(b)
            except self._errors as e:
                raise self._translate(e) from e
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
                if self._on_close is not None:
                    self._on_close()
            except Exception as e:  # noqa: BLE001 - closing a broken connection must not fail
                log.debug("closing a response body: %s", e)
        super().close()
