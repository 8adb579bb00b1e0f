"""The copy engine's options, and the retry and warn-once helpers all of it shares.

:class:`Options` is what ``omnifs cp``/``omnifs sync`` flags and the
replication executor set; :func:`retrying` retries a head, list or delete
on a transient error with exponential backoff and jitter (not a timeout:
``err.retry_now`` is false for a store silent that long); :func:`warn_once`
says each thing a destination cannot keep once, not once per object.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from omnifs.providers import OmnifsError

log = logging.getLogger("omnifs.transfer")

MiB = 1024 * 1024


@dataclass
class Options:
    #: objects copied in parallel
    transfers: int = 4
    #: parallel head()/delete() calls while planning and pruning
    checkers: int = 8
    keep_tier: bool = False
    #: extra attempts of one object after a transient error
    retries: int = 3
    backoff: float = 0.25
    #: objects up to this size without a recorded SHA-256 are hashed in memory before upload
    small_object: int = 8 * MiB
    chunk: int = 4 * MiB
    #: prefetched chunks per transfer (memory bound: chunk * prefetch)
    prefetch: int = 2
    #: bytes per ranged read of the source (see streams.Prefetch)
    window: int = 8 * MiB
    #: allow the server-side copy between two providers over the same store
    server_side: bool = True
    #: how a big source without a recorded SHA-256 gets one: "auto" (see
    #: ``object_copy._wants_prepass``), "prepass" (hash the source first, then stream it)
    #: or "record" (stream, then copy in place)
    hash_mode: str = "auto"


#: what was already said by :func:`warn_once`
_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(text: str) -> None:
    """Log ``text`` as a warning the first time it is said in this process."""
    with _warned_lock:
        if text in _warned:
            return
        _warned.add(text)
    log.warning(text)


def sleep_backoff(options: Options, attempt: int) -> None:
    time.sleep(options.backoff * (2 ** attempt) * (0.5 + random.random()))


def retrying(fn, options: Options):
    """Call ``fn`` retrying transient errors with backoff (for heads, lists, deletes)."""
    attempt = 0
    while True:
        try:
            return fn()
        except OmnifsError as e:
            if not e.retry_now or attempt >= options.retries:
                raise
            sleep_backoff(options, attempt)
            attempt += 1
