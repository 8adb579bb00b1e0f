"""``omnifs migrate verify``: prove that the destination holds the source's bytes.

What is checked, entry by entry of the plan:

* ``copy``, ``overwrite``, ``skip`` (in ``move`` mode too): the destination
  object is read and hashed (SHA-256) and compared with the source's SHA-256,
  the one recorded in its metadata, else the source is read and hashed as
  well. A source a move already deleted (``item.source_deleted``) is
  compared by the SHA-256 the run recorded for the item, else the plan's.
  Sizes are compared first (no read when they differ).
* ``delete``: the destination object must be absent.

``fast``: where both sides report the same kind of native checksum computed
by the store (md5 of a single-part upload, crc32c), equal values are taken as
proof and nothing is read. Without it every destination byte is read: a
checksum a store keeps beside the object does not prove the bytes a read
returns.

Memory is bounded: objects are streamed through the hash a chunk at a time,
and at most ``2 * parallel`` entries are in flight. The verdicts go to the
catalog (``verified`` per item) when the migration is recorded there; the
plan file alone is enough to check, and then the result is only reported.

The helpers shared with rollback (:func:`sha256_of`, :func:`bounded_map`)
live here; the plan's two sides are :mod:`.sides`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from omnifs.catalog.migrations import MigrationItem, Migrations
from omnifs.providers import (
    NotFound,
    ObjectInfo,
    OmnifsError,
    Provider,
)

from ..copy_options import Options, retrying
from ..fallbacks import shared_natives
from .plan import Entry
from .planfile import MigrationPlan
from .sides import Sides, plan_id

#: bytes read per call while hashing
CHUNK = 1024 * 1024
#: mismatches listed one line each before "and N more"
LIST_CAP = 20
#: catalog rows written per transaction
BATCH = 500

T = TypeVar("T")
R = TypeVar("R")


class Usage:
    """Requests and bytes spent, per side and kind (``cat.migrations.add_usage``'s rows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[tuple[str, str]] = Counter()

    def add(self, side: str, kind: str, amount: int = 1) -> None:
        with self._lock:
            self._c[(side, kind)] += amount

    def drain(self) -> list[tuple[str, str, float]]:
        with self._lock:
            out = [(side, kind, float(n)) for (side, kind), n in self._c.items() if n]
            self._c.clear()
        return out


def head(p: Provider, key: str, options: Options, usage: Usage | None = None,
         side: str = "dst") -> ObjectInfo | None:
    """The object's info, None when absent (transient errors retried)."""
    if usage is not None:
        usage.add(side, "head_requests")
    try:
        return retrying(lambda: p.head(key), options)
    except NotFound:
        return None


def digest_of(p: Provider, key: str, options: Options, usage: Usage | None = None,
              side: str = "dst", algo: str = "sha256") -> str:
    """Hex digest of the object's bytes as a read returns them, streamed (a transient
    error restarts the read)."""
    def once() -> str:
        h = hashlib.new(algo)
        n = 0
        try:
            with p.open_read(key) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
        finally:
            if usage is not None:
                usage.add(side, "get_requests")
                usage.add(side, "bytes_out", n)
        return h.hexdigest()

    return retrying(once, options)


def sha256_of(p: Provider, key: str, options: Options, usage: Usage | None = None,
              side: str = "dst") -> str:
    return digest_of(p, key, options, usage, side)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` in ``workers`` threads, results in order, at most
    ``2 * workers`` items taken ahead (so a 100,000-entry plan is not queued at once)."""
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omnifs-check") as ex:
        pending: deque = deque()
        for x in items:
            pending.append(ex.submit(fn, x))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class Check:
    """One entry's verdict: ok | mismatch | missing, or error (it could not be checked)."""

    key: str
    verdict: str
    detail: str = ""


@dataclass
class VerifyResult:
    counts: Counter = field(default_factory=Counter)
    #: the first LIST_CAP problems (verdict other than ok)
    problems: list[Check] = field(default_factory=list)
    #: whether the verdicts were written to the catalog
    recorded: bool = False

    @property
    def failed(self) -> int:
        return sum(n for v, n in self.counts.items() if v != "ok")

    def add(self, c: Check) -> None:
        self.counts[c.verdict] += 1
        if c.verdict != "ok" and len(self.problems) < LIST_CAP:
            self.problems.append(c)

    def lines(self) -> list[str]:
        out = [f"{c.verdict.upper():8} {c.key}{': ' + c.detail if c.detail else ''}"
               for c in self.problems]
        if self.failed > len(self.problems):
            out.append(f"... and {self.failed - len(self.problems)} more")
        total = sum(self.counts.values())
        parts = [f"{self.counts[v]} {v}" for v in ("ok", "mismatch", "missing", "error")
                 if self.counts[v] or v == "ok"]
        note = "" if self.recorded else " (not recorded: no run of this plan in the catalog)"
        out.append(f"verified {total} object{'s' * (total != 1)}: {', '.join(parts)}{note}")
        return out


def _native_proof(sides: Sides, d: ObjectInfo, native: dict[str, str]) -> Check | None:
    """Equal native checksums both stores declare (fallbacks.shared_natives), else None."""
    for algo in shared_natives(sides.src, sides.dst):
        if d.checksums.get(algo) and native.get(algo):
            if d.checksums[algo] == native[algo]:
                return Check(d.key, "ok")
            return Check(d.key, "mismatch", f"{algo} differs from the source's")
    return None


def check_entry(sides: Sides, entry: Entry, item: MigrationItem | None, *, fast: bool = False,
                options: Options | None = None, usage: Usage | None = None) -> Check:
    """The destination object of one plan entry against its source (module docstring)."""
    options = options or Options()
    key, dk = entry.key, sides.dst_key(entry.key)
    try:
        d = head(sides.dst, dk, options, usage)
        if entry.action == "delete":
            return Check(key, "ok" if d is None else "mismatch",
                         "" if d is None else "still at the destination (should be deleted)")
        if d is None:
            return Check(key, "missing", "not at the destination")
        s = None
        if not (item is not None and item.source_deleted):
            s = head(sides.src, sides.src_key(key), options, usage, "src")
        if s is not None:
            size, sha, native = s.size, s.sha256, s.checksums
        else:
            # the source is gone (moved): what the run and the plan recorded of it
            size = entry.size
            sha = (item.sha256 if item is not None else None) or entry.sha256
            native = entry.checksums
        if d.size != size:
            return Check(key, "mismatch", f"{d.size} bytes, the source has {size}")
        if fast:
            proof = _native_proof(sides, d, native)
            if proof is not None:
                return Check(key, proof.verdict, proof.detail)
        if sha is None and s is not None:
            sha = sha256_of(sides.src, sides.src_key(key), options, usage, "src")
        if sha is not None:
            got = sha256_of(sides.dst, dk, options, usage)
            return Check(key, "ok") if got == sha else Check(
                key, "mismatch", "SHA-256 of the destination's bytes differs from the source's")
        if native.get("md5"):
            got = digest_of(sides.dst, dk, options, usage, algo="md5")
            return Check(key, "ok") if got == native["md5"] else Check(
                key, "mismatch", "md5 of the destination's bytes differs from the source's")
        return Check(key, "mismatch", "the source is gone and no checksum of it was recorded")
    except OmnifsError as e:
        return Check(key, "error", str(e).splitlines()[0] if str(e) else type(e).__name__)


def verify(plan: MigrationPlan, sides: Sides, *, migrations: Migrations | None = None,
           parallel: int = 8, fast: bool = False, options: Options | None = None,
           on_check: Callable[[Check], None] | None = None) -> VerifyResult:
    """Check every entry of ``plan``; record the verdicts in ``migrations`` when the plan's
    migration is recorded there."""
    options = options or Options()
    mid = plan_id(plan)
    record = migrations is not None and migrations.get(mid) is not None
    usage = Usage()
    result = VerifyResult(recorded=record)

    def jobs() -> Iterator[tuple[Entry, MigrationItem | None]]:
        for e in plan.entries:
            yield e, (migrations.item(mid, e.key) if record and migrations else None)

    batch: list[tuple[str, dict]] = []

    def flush() -> None:
        if record and migrations is not None:
            if batch:
                migrations.update_items(mid, batch)
            spent = usage.drain()
            if spent:
                migrations.add_usage(mid, spent)
        batch.clear()

    for c in bounded_map(lambda job: check_entry(sides, job[0], job[1], fast=fast,
                                                 options=options, usage=usage),
                         jobs(), parallel):
        result.add(c)
        if on_check is not None:
            on_check(c)
        if c.verdict != "error":
            batch.append((c.key, {"verified": c.verdict}))
        if len(batch) >= BATCH:
            flush()
    flush()
    return result
