"""The two readers a streamed copy chains between source and destination.

``Prefetch`` decouples the source's reads from the destination's: a thread
fills a bounded queue of chunks, so network reads from one store overlap
uploads to the other while memory stays at ``chunk * depth`` per transfer.

``Verifier`` hashes what passes and checks it against what the source
recorded *before handing over the last byte*: a provider finishes a multipart
upload only after its stream is exhausted, so raising there aborts the upload
and a corrupt object never becomes visible at the destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from omnifs.providers import IntegrityError, OmnifsError, ReadStream, Unavailable

_END = b""


class Prefetch(io.RawIOBase):
    """Reads ``[0, size)`` of one object as ranged windows into a bounded queue.

    Why windows: a window is only requested once the queue has room for all
    of it, so every GET this reader starts can be drained at once. A single
    long GET left half-read while the destination waits would deadlock a
    store that serves one request at a time (the GCS emulator does), and it
    would tie a mid-stream failure to a restart of the whole object: here a
    transient error re-reads from the last delivered byte of the window.

    ``window=None`` streams instead: one GET for the whole object, paced chunk
    by chunk. The caller picks it when source and destination are different
    servers (no deadlock possible), because some stores pay per request in
    proportion to the object (moto and the GCS emulator reassemble a
    multipart object for every ranged GET: 8 MiB windows over 1 GiB made
    the source read quadratic). A transient error still resumes at the last
    delivered byte.
    """

    def __init__(self, open_range: Callable[[int, int], ReadStream], *, size: int, chunk: int,
                 depth: int, window: int | None, provider: str, key: str, retries: int = 3,
                 backoff: float = 0.25):
        super().__init__()
        self._open = open_range
        self._size = size
        self._chunk = chunk
        #: None: one GET for the whole object, credits taken chunk by chunk (see ``streaming``)
        self._window = None if window is None else max(chunk, min(window, chunk * depth))
        self._credits = threading.Semaphore(depth)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._eof = False
        self._where = (provider, key)
        self._retries = retries
        self._backoff = backoff
        self._thread = threading.Thread(target=self._run, name=f"prefetch {key}", daemon=True)
        self._thread.start()

    def _acquire(self, n: int) -> bool:
        got = 0
        while got < n:
            if self._stop.is_set():
                for _ in range(got):
                    self._credits.release()
                return False
            if self._credits.acquire(timeout=0.2):
                got += 1
        return True

    def _read_window(self, start: int, end: int, *, paced: bool = False) -> None:
        """Queue ``[start, end)`` in full chunks, resuming after transient errors.

        ``paced``: no credits were taken up front; each chunk waits for one
        (the streaming mode, where the GET may stay open while the queue is full).
        """
        pos = start
        attempt = 0
        credits = 0 if paced else -(-(end - start) // self._chunk)
        try:
            #: where the last failure happened: progress since then earns a long stream
            #: fresh retries
            failed_at = -1
            while pos < end and not self._stop.is_set():
                try:
                    f = self._open(pos, end)
                    try:
                        while pos < end and not self._stop.is_set():
                            want = min(self._chunk, end - pos)
                            if paced:
                                if not self._acquire(1):
                                    return
                                credits += 1
                            piece = f.read(want)
                            if not piece:
                                provider, key = self._where
                                raise Unavailable(
                                    f"object ended at byte {pos}, expected {self._size}",
                                    provider=provider, key=key)
                            while len(piece) < want:
                                more = f.read(want - len(piece))
                                if not more:
                                    break
                                piece += more
                            self._q.put(piece)
                            credits -= 1
                            pos += len(piece)
                    finally:
                        # closing a half-read body may complain
                        with contextlib.suppress(Exception):
                            f.close()
                except OmnifsError as e:
                    attempt, failed_at = (0 if pos > failed_at else attempt), pos
                    if not e.retry_now or attempt >= self._retries:
                        raise
                    attempt += 1
                    time.sleep(self._backoff * (2 ** attempt))
                except Exception as e:  # noqa: BLE001 - an SDK's raw socket error mid-body
                    provider, key = self._where
                    why = f"{type(e).__name__}: {e}"
                    err = Unavailable(f"reading failed mid-stream: {why}".splitlines()[0],
                                      provider=provider, key=key)
                    attempt, failed_at = (0 if pos > failed_at else attempt), pos
                    if attempt >= self._retries:
                        raise err from None
                    attempt += 1
                    time.sleep(self._backoff * (2 ** attempt))
        finally:
            for _ in range(max(0, credits)):
                self._credits.release()

    def _run(self) -> None:
        try:
            if self._window is None:
                self._read_window(0, self._size, paced=True)
            else:
                pos = 0
                while pos < self._size and not self._stop.is_set():
                    end = min(self._size, pos + self._window)
                    if not self._acquire(-(-(end - pos) // self._chunk)):
                        return
                    self._read_window(pos, end)
                    pos = end
            self._q.put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the reading side
            self._q.put(e)

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        parts: list[memoryview] = []
        want = -1 if n is None or n < 0 else n
        while want != 0 and not self._eof:
            if not self._buf:
                item = self._q.get()
                if isinstance(item, BaseException):
                    self._eof = True
                    raise item
                if not item:
                    self._eof = True
                    break
                self._credits.release()
                self._buf = memoryview(item)
            take = self._buf if want < 0 else self._buf[:want]
            parts.append(take)
            self._buf = self._buf[len(take):]
            if want > 0:
                want -= len(take)
        whole = parts[0].obj if len(parts) == 1 else None
        if isinstance(whole, bytes) and len(parts[0]) == len(whole):
            return whole  # a whole queued chunk: hand it over without a copy
        return b"".join(parts)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
        super().close()


class _Hash(Protocol):
    """hashlib's hashes and google_crc32c's Checksum alike."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


class Verifier(io.RawIOBase):
    """Counts, hashes and checks the bytes on their way to the destination.

    ``expect`` maps an algorithm ("sha256", "md5", "crc32c") to the source's
    recorded hex digest; only those (plus sha256, always) are computed.
    """

    def __init__(self, inner, *, size: int, expect: dict[str, str], provider: str, key: str,
                 on_bytes: Callable[[int], None] | None = None):
        super().__init__()
        self._inner = inner
        self.size = size
        self.count = 0
        self.expect = {k: v.lower() for k, v in expect.items() if v}
        self._h: dict[str, _Hash] = {"sha256": hashlib.sha256()}
        if "md5" in self.expect:
            self._h["md5"] = hashlib.md5()
        if "crc32c" in self.expect:
            import google_crc32c

            self._h["crc32c"] = google_crc32c.Checksum()
        self._where = (provider, key)
        self._on_bytes = on_bytes
        self._checked = False
        #: the error this reader raised, in case a provider wraps it into something vaguer
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def digest(self, algo: str = "sha256") -> str:
        return self._h[algo].hexdigest() if algo != "crc32c" else self._h[algo].digest().hex()

    def read(self, n: int | None = -1) -> bytes:
        try:
            data = self._inner.read(n)
        except BaseException as e:
            self.error = e
            raise
        if data:
            for h in self._h.values():
                h.update(data)
            self.count += len(data)
            if self._on_bytes:
                self._on_bytes(len(data))
        if (not data or self.count >= self.size) and not self._checked:
            try:
                self.check()
            except IntegrityError as e:
                self.error = e
                raise
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def check(self) -> None:
        """Raise IntegrityError naming both hashes when the bytes are not the source's."""
        self._checked = True
        provider, key = self._where
        if self.count != self.size:
            raise IntegrityError(f"source sent {self.count} bytes, its listing says {self.size}",
                                 provider=provider, key=key)
        for algo, want in self.expect.items():
            got = self.digest(algo)
            if got != want:
                raise IntegrityError(
                    f"{algo} mismatch: source recorded {want}, bytes read hash to {got}",
                    provider=provider, key=key)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()
