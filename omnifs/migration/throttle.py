"""A bandwidth limit shared by every worker of a run: bytes/s over all transfers together.

Each caller reserves the time its bytes take at the rate, in turn, and sleeps
until its slot ends: ``n`` bytes at ``rate`` cost ``n / rate`` seconds of the
one shared link, so eight workers at ``--bandwidth 100MiB/s`` move 100 MiB/s
between them, not 800. A small burst (``burst`` seconds of unused time) lets
a worker that found the link idle start without waiting.
"""

from __future__ import annotations

import re
import threading
import time

from omnifs.providers import InvalidInput

from ..progress import Stats

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?)b?\s*(?:/\s*s)?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
            "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


def parse_rate(text: str) -> float:
    """'100MiB/s' -> bytes per second (also '100MiB', '1.5GB/s', '800k'); InvalidInput else."""
    m = _RATE.match(text)
    if not m or m.group(2).lower() not in _FACTORS:
        raise InvalidInput(f"--bandwidth {text!r} is not a rate: write e.g. 100MiB/s or 20MB/s")
    rate = float(m.group(1)) * _FACTORS[m.group(2).lower()]
    if rate <= 0:
        raise InvalidInput(f"--bandwidth {text!r} must be more than 0")
    return rate


class TokenBucket:
    """``consume(n)`` blocks until ``n`` more bytes fit within ``rate`` bytes/s."""

    def __init__(self, rate: float, burst: float = 0.05):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def consume(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now - self.burst, self._next)
            self._next = start + nbytes / self.rate
            wake = self._next
        delay = wake - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class MeteredStats(Stats):
    """The copy engine's byte counter, holding the bytes to a shared :class:`TokenBucket`."""

    def __init__(self, bucket: TokenBucket | None):
        super().__init__()
        self._bucket = bucket

    def add_bytes(self, n: int, key: str | None = None) -> None:
        if self._bucket is not None:
            self._bucket.consume(n)
        super().add_bytes(n, key)
