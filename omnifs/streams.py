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
from collections.abc import Callable

from providers import IntegrityError, OmnifsError, Unavailable

_END = b""


class Prefetch(io.RawIOBase):
    def __init__(self, f, *, chunk: int, depth: int, provider: str, key: str):
        super().__init__()
        self._f = f
        self._chunk = chunk
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._eof = False
        self._where = (provider, key)
        self._thread = threading.Thread(target=self._run, name=f"prefetch {key}", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._f.read(self._chunk)
                if not self._put(data) or not data:
                    return
        except OmnifsError as e:
            self._put(e)
        except Exception as e:  # noqa: BLE001 - an SDK's raw socket error mid-body
            provider, key = self._where
            self._put(Unavailable(f"reading failed mid-stream: {type(e).__name__}: {e}".splitlines()[0],
                                  provider=provider, key=key))

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
                self._buf = memoryview(item)
            take = self._buf if want < 0 else self._buf[:want]
            parts.append(take)
            self._buf = self._buf[len(take):]
            if want > 0:
                want -= len(take)
        return b"".join(parts)

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            with contextlib.suppress(Exception):  # closing a half-read body may complain
                self._f.close()
        super().close()


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
        self._h = {"sha256": hashlib.sha256()}
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

    def readinto(self, b) -> int:  # type: ignore[override]
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
                raise IntegrityError(f"{algo} mismatch: source recorded {want}, bytes read hash to {got}",
                                     provider=provider, key=key)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()
