"""``omnifs migrate run``'s engine: a plan carried out in parallel, its state in the catalog.

One thread (the caller's) owns the catalog: it records the migration and its
items (``cat.migrations``), hands pending items to ``parallel`` worker
threads through a bounded queue, and commits what the workers report in
batches (``batch_rows`` rows or ``batch_seconds``, whichever comes first).
Every catalog call happens under one lock, so a worker that must see its
row committed before it goes on (see below) flushes the batch itself.

Resuming after kill -9: before a page of items is handed out, their
``started_at`` is committed. The next run checks an item that was started
but not done at the destination first (size and SHA-256 equal to the
source's) and marks it done without copying it again when the copy had
completed; so no object is copied twice, and the check costs a HEAD only
for the few items in flight when the run died.

Order of changes per item, each step committed before the next when it
guards data:

* overwrite, delete: the old destination object is kept
  (:mod:`.saved`) and ``saved`` committed, then the destination changes;
* copy, overwrite: :func:`omnifs.object_copy.copy_object` (verified,
  server-side on one store);
* move: the destination is checked against the source (``verified='ok'``
  committed), then the source is deleted (``source_deleted``). A source
  whose copy is not verified is never deleted.

Failures: an object that still fails after the copy engine's retries is
tried again ``attempts`` times in all with backoff, then recorded ``failed``
with its error; the others go on. A store that goes down pauses the run
(:mod:`.outage`). ``max_cost`` stops handing out objects before the priced
usage (:func:`.costing.usage_cost`) plus the next object would exceed it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnifs.catalog import Catalog
from omnifs.catalog.migrations import MigrationItem, migration_id
from omnifs.prices import PriceOverride
from omnifs.providers import InvalidInput, NotFound, ObjectInfo, OmnifsError, Provider

from ..copy_options import Options, retrying
from ..object_copy import copy_object
from ..same_store import same_store
from ..tree_copy import dir_prefix
from .budget import Budget, check_estimate, expected_usage, merged
from .compare import same_bytes
from .outage import Outage
from .outcome import RunProgress, RunResult
from .plan import Entry
from .planfile import MigrationPlan
from .saved import keep_old, one_runner
from .throttle import MeteredStats, TokenBucket

log = logging.getLogger("omnifs.migrate")

#: the stores' name in usage counters
SRC, DST = "src", "dst"


@dataclass
class RunOptions:
    #: objects worked on at once
    parallel: int = 8
    #: bytes/s over all workers together; None: no limit
    bandwidth: float | None = None
    #: stop before the priced usage would exceed this (the plan's currency)
    max_cost: Decimal | None = None
    #: tries per object in one run (the copy engine's own retries come on top)
    attempts: int = 3
    #: seconds between tries of an object, doubled each time
    backoff: float = 0.5
    #: give up after a store was unreachable this long
    wait_down: float = 300.0
    copy: Options = field(default_factory=lambda: Options(retries=3))
    #: called in the caller's thread every ``interval`` s and once at the end
    progress: Any = None
    interval: float = 0.5
    batch_rows: int = 200
    batch_seconds: float = 0.5


class Mismatch(OmnifsError):
    """The destination does not hold the source's bytes after the copy."""


class MigrationRun:
    """Runs ``plan`` from ``src`` to ``dst`` (the providers the plan's places resolve to)."""

    def __init__(self, cat: Catalog, plan: MigrationPlan, src: Provider, dst: Provider,
                 options: RunOptions | None = None,
                 overrides: dict[str, PriceOverride] | None = None):
        self.cat, self.plan, self.src, self.dst = cat, plan, src, dst
        self.o = options or RunOptions()
        if self.o.parallel < 1:
            raise InvalidInput("--parallel must be at least 1")
        self.checksum = plan.checksum()  # streamed: the whole plan as JSON at once is 2x its size
        self.mid = migration_id(self.checksum)
        self.src_prefix, self.dst_prefix = dir_prefix(plan.src.key), dir_prefix(plan.dst.key)
        self.entries = {(e.key, e.action): e for e in plan.entries}
        self.move = plan.mode == "move"
        self.server_side = self.o.copy.server_side and same_store(src, dst)
        #: the config's [prices] tables, for --max-cost
        self._overrides = overrides or {}
        self._lock = threading.RLock()
        self._updates: dict[str, dict[str, Any]] = {}
        self._usage_new: Counter[tuple[str, str]] = Counter()
        self._usage_run: Counter[tuple[str, str]] = Counter()
        self._usage_base: dict[str, dict[str, float]] = {}
        self._last_flush = time.monotonic()
        self._last_progress = 0.0
        self._n: Counter[str] = Counter()
        self._budget: Budget | None = None
        self._stop = threading.Event()
        #: set when the run ends by an exception: workers leave what is queued
        self._abort = threading.Event()
        self._stopped: str | None = None
        self._queue: queue.Queue[MigrationItem | None] = queue.Queue(self.o.parallel * 2)
        bucket = TokenBucket(self.o.bandwidth) if self.o.bandwidth else None
        self.stats = MeteredStats(bucket)
        self.outage = Outage(self._probe, self.o.wait_down)
        self._total = (0, 0)
        self._t0 = time.monotonic()

    # -- the run -------------------------------------------------------------
    def check_cost(self) -> None:
        """Refuse (InvalidInput, nothing done) a plan whose estimate exceeds ``max_cost``."""
        if self.o.max_cost is None:
            return
        check_estimate(self.plan.estimate, self.o.max_cost)
        self._budget = Budget(self.o.max_cost, self.src.settings, self.dst.settings,
                              self._overrides)
        self._budget.cost({})  # a store no table prices: refused now, in one line

    def run(self) -> RunResult:
        self.check_cost()
        with one_runner(self.cat, self.mid):
            return self._run()

    def _run(self) -> RunResult:
        m = self.cat.migrations
        p = self.plan
        mig = m.create(self.mid, plan_checksum=self.checksum, src=p.src.given, dst=p.dst.given,
                       mode=p.mode, plan={"src": p.src.to_json(), "dst": p.dst.to_json(),
                                          "summary": p.summary, "estimate": p.estimate},
                       entries=[(e.key, e.action, e.size) for e in p.entries])
        if mig.state in ("rolled_back", "finalized"):
            raise InvalidInput(f"migration {self.mid} was {mig.state.replace('_', ' ')}: "
                               "make a new plan to migrate again")
        now = time.time()
        with self.cat.transaction():
            m.set_state(self.mid, "running", started_at=None if mig.started_at else now)
            if not self.move:  # nothing to do for an equal copy
                m.update_items(self.mid, ((i.key, {"state": "done", "finished_at": now})
                                          for i in list(m.items(self.mid, states=["pending"],
                                                                actions=["skip"]))))
        self._usage_base = m.usage(self.mid)
        todo = [c for a in m.counts(self.mid).values()
                for s, c in a.items() if s in ("pending", "failed")]
        self._total = (sum(c["objects"] for c in todo), sum(c["bytes"] for c in todo))
        self._t0 = time.monotonic()
        workers = [threading.Thread(target=self._worker, name=f"migrate-{i}", daemon=True)
                   for i in range(self.o.parallel)]
        for w in workers:
            w.start()
        try:
            self._dispatch()
        except BaseException:  # Ctrl-C, a catalog error: the items not begun stay pending
            self._abort.set()
            self._stop_workers(workers)
            self.flush()
            m.set_state(self.mid, "incomplete", finished_at=time.time())
            raise
        self._stop_workers(workers)
        return self._finish()

    def _dispatch(self) -> None:
        it = self.cat.migrations.items(self.mid, states=["pending", "failed"])
        while not self._stop.is_set():
            with self._lock:
                page = list(itertools.islice(it, self.o.batch_rows))
                if not page:
                    return
                now = time.time()
                self.cat.migrations.update_items(
                    self.mid, [(i.key, {"started_at": now}) for i in page])
            for item in page:
                if self._stop.is_set() or not self._cost_allows(item):
                    return
                while True:
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        self._tick()
                        if self._stop.is_set():
                            return
                self._tick()

    def _stop_workers(self, workers: list[threading.Thread]) -> None:
        for _ in workers:
            while True:
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    self._tick()
        for w in workers:
            while w.is_alive():
                w.join(0.1)
                self._tick()

    def _finish(self) -> RunResult:
        self.flush()
        m = self.cat.migrations
        counts = m.counts(self.mid)
        left = sum(c["objects"] for a in counts.values() for s, c in a.items() if s != "done")
        state = "done" if left == 0 else "incomplete"
        m.set_state(self.mid, state, finished_at=time.time())
        snap = self.stats.snapshot()
        failed = [(i.key, i.error or "failed") for i in m.items(self.mid, states=["failed"])]
        pending = sum(a.get("pending", {}).get("objects", 0) for a in counts.values())
        result = RunResult(
            migration=self.mid, state=state, copied=self._n["copied"],
            copied_bytes=self._n["copied_bytes"], resumed=self._n["resumed"],
            skipped=self._n["skipped"], deleted=self._n["deleted"],
            sources_deleted=self._n["sources_deleted"], failed=failed, pending=pending,
            stopped=self.outage.gave_up or self._stopped, elapsed=time.monotonic() - self._t0,
            bytes=snap.done_bytes)
        if self.o.progress is not None:
            self.o.progress(self.progress(final=True))
        return result

    # -- catalog batches and progress (the caller's thread, or a worker under the lock) --
    def _record(self, key: str, fields: dict[str, Any], *, commit: bool = False) -> None:
        with self._lock:
            self._updates.setdefault(key, {}).update(fields)
            if commit:
                self.flush()

    def _count(self, side: str, kind: str, n: int = 1) -> None:
        with self._lock:
            self._usage_new[(side, kind)] += n
            self._usage_run[(side, kind)] += n

    def flush(self) -> None:
        """Commit the recorded rows and usage in one transaction."""
        with self._lock:
            self._last_flush = time.monotonic()
            if not self._updates and not self._usage_new:
                return
            rows, usage = list(self._updates.items()), list(self._usage_new.items())
            with self.cat.transaction():
                if rows:
                    self.cat.migrations.update_items(self.mid, rows)
                if usage:
                    self.cat.migrations.add_usage(self.mid, [(s, k, v) for (s, k), v in usage])
            self._updates.clear()
            self._usage_new.clear()

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = (len(self._updates) >= self.o.batch_rows
                   or now - self._last_flush >= self.o.batch_seconds)
        if due:
            self.flush()
        if self.o.progress is not None and now - self._last_progress >= self.o.interval:
            self._last_progress = now
            self.o.progress(self.progress())
        if self.outage.gave_up is not None:
            self._stop.set()

    def progress(self, final: bool = False) -> RunProgress:
        snap = self.stats.snapshot()
        elapsed = time.monotonic() - self._t0
        with self._lock:
            done, failed = self._n["done"], self._n["failed"]
        return RunProgress(total=self._total[0], total_bytes=self._total[1], done=done,
                           failed=failed, pending=self._total[0] - done - failed,
                           bytes=snap.done_bytes, elapsed=elapsed,
                           bytes_per_s=snap.done_bytes / elapsed if elapsed > 0 else 0.0,
                           final=final)

    # -- cost ------------------------------------------------------------------
    def _expected(self, item: MigrationItem) -> dict[str, dict[str, float]]:
        return expected_usage(item.action, item.size, server_side=self.server_side,
                              move=self.move)

    def _cost_allows(self, item: MigrationItem) -> bool:
        if self._budget is None:
            return True
        with self._lock:
            spent = merged(self._usage_base, _nested(self._usage_run))
        why = self._budget.reserve(spent, self._expected(item))
        if why is not None:
            self._stopped = why
            self._stop.set()
            return False
        return True

    def _release_cost(self, item: MigrationItem) -> None:
        if self._budget is not None:
            self._budget.release(self._expected(item))

    # -- the workers -------------------------------------------------------------
    def _probe(self) -> None:
        for p, prefix, side in ((self.src, self.src_prefix, SRC),
                                (self.dst, self.dst_prefix, DST)):
            self._count(side, "head_requests")
            with contextlib.suppress(NotFound):
                p.head(prefix + ".omnifs-probe")

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._abort.is_set() or self.outage.gave_up is not None:
                self._release_cost(item)
                continue
            try:
                self._work(item)
            finally:
                self._release_cost(item)

    def _work(self, item: MigrationItem) -> None:
        """Carry out one item: tries with backoff, an outage costing no try."""
        tries = 0
        while True:
            if not self.outage.wait_up():
                return  # given up on a store: the item stays pending
            epoch = self.outage.epoch
            try:
                self._do(item)
                return
            except OmnifsError as e:
                err: Exception = e
                if e.transient and self.outage.was_down(e, epoch):
                    item.started_at = item.started_at or time.time()
                    continue
            except Exception as e:  # a bug with one object must not stop the others
                log.exception("%s: unexpected error", item.key)
                err = e
            tries += 1
            item.started_at = item.started_at or time.time()
            error = str(err).splitlines()[0] if str(err) else type(err).__name__
            self._record(item.key, {"attempts": item.attempts + tries, "error": error})
            if tries >= self.o.attempts:
                self._record(item.key, {"state": "failed", "finished_at": time.time()})
                with self._lock:
                    self._n["failed"] += 1
                return
            time.sleep(self.o.backoff * 2 ** (tries - 1) * (0.5 + random.random()))

    def _do(self, item: MigrationItem) -> None:
        e = self.entries[(item.key, item.action)]
        skey, dkey = self.src_prefix + item.key, self.dst_prefix + item.key
        if item.action == "delete":
            self._keep_old(item)
            self._count(DST, "delete_requests")
            retrying(lambda: self.dst.delete(dkey), self.o.copy)
            self._done(item, {}, "deleted")
            return
        fields: dict[str, Any] = {}
        outcome = "skipped"
        if item.action in ("copy", "overwrite") and item.verified != "ok":
            if item.started_at is not None and self._matches(skey, dkey) is True:
                outcome = "resumed"
            else:
                if item.action == "overwrite":
                    self._keep_old(item)
                out = copy_object(self.src, skey, self.dst, dkey, options=self.o.copy,
                                  stats=self.stats, src_info=self._listed(e, skey))
                self._count_copy(e.size)
                item.started_at = item.started_at or time.time()
                outcome = "copied"
                if out is not None and out.sha256:
                    fields["sha256"] = out.sha256
        if self.move and e.delete_source and not item.source_deleted:
            if item.verified != "ok":
                verdict = self._matches(skey, dkey)
                if verdict is not True:
                    self._record(item.key, {"verified": verdict})
                    raise Mismatch("the destination does not hold the source's bytes "
                                   f"({verdict}): source kept", provider=self.dst.name, key=dkey)
                item.verified = "ok"
                self._record(item.key, {"verified": "ok"}, commit=True)
            self._count(SRC, "delete_requests")
            retrying(lambda: self.src.delete(skey), self.o.copy)
            item.source_deleted = True
            fields["source_deleted"] = 1
            with self._lock:
                self._n["sources_deleted"] += 1
        self._done(item, fields, outcome)

    def _done(self, item: MigrationItem, fields: dict[str, Any], outcome: str) -> None:
        self._record(item.key, {**fields, "state": "done", "error": None,
                                "finished_at": time.time()})
        with self._lock:
            self._n["done"] += 1
            self._n[outcome] += 1
            if outcome == "copied":
                self._n["copied_bytes"] += item.size

    def _listed(self, e: Entry, skey: str) -> ObjectInfo:
        """The source as the plan's listing saw it: the copy reads its metadata on the way."""
        return ObjectInfo(key=skey, size=e.size, checksums=dict(e.checksums), tier=e.src_tier,
                          metadata_known=False)

    def _count_copy(self, size: int) -> None:
        if self.server_side:
            self._count(DST, "copy_requests")
            return
        for side, kind, n in ((SRC, "get_requests", 1), (SRC, "bytes_out", size),
                              (DST, "put_requests", 1), (DST, "bytes_in", size)):
            self._count(side, kind, n)

    def _keep_old(self, item: MigrationItem) -> None:
        """Keep the destination object about to change (committed before it changes)."""
        if item.saved:
            return
        self._count(DST, "copy_requests")
        saved = keep_old(self.dst, self.dst_prefix, self.mid, item.key, self.o.copy)
        if saved is not None:
            item.saved = saved
            self._record(item.key, {"saved": saved}, commit=True)

    def _matches(self, skey: str, dkey: str) -> bool | str:
        """Does the destination hold the source's bytes? True, 'missing' or 'mismatch'."""
        return same_bytes(self.src, skey, self.dst, dkey, self.o.copy, self._count)


def _nested(flat: Counter[tuple[str, str]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (side, kind), n in flat.items():
        out.setdefault(side, {})[kind] = n
    return out
