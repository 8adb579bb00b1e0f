"""Replication workers: claim queued work, run it in a thread, settle it.

Each worker claims one item at a time (atomically, with a lease, through the
catalog), reads it as its typed work item (omnifs/work.py), checks that
every provider it touches is usable, and runs the executor
(omnifs/replication.py) for the item in a worker thread, holding the
capacity limiter of each provider involved (acquired in name order, so two
items never wait on each other's limiters). Outcomes:

* success -> the item leaves the queue;
* a provider it needs is down -> deferred (back to pending, not counted as
  an attempt) until the next health round; it is caught up when the
  provider returns;
* the provider it acts on is lost -> the item is dropped (the failover
  step re-places that provider's copies);
* an item no kind reads (unknown kind, missing field) -> parked as failed;
* an error -> retried after ``retry_base * 2**attempts`` (jittered, capped),
  parked as failed after ``max_attempts``; transient errors also count as a
  failed health sample of that provider, so the board reacts faster.

kill -9 safety comes from the executor being idempotent and from claims
being leases: a restarted daemon first releases the claims of its dead
predecessors (same host, pid gone) instead of waiting for their leases.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import trio

from omnifs.catalog import Catalog, CatalogUnavailable, WorkItem
from omnifs.catalog.health import Transfer
from omnifs.governance_scan import refusal
from omnifs.layout import long_key
from omnifs.policy.health import LOST, Sample
from omnifs.processes import WORKER_PREFIX, worker_record
from omnifs.providers import OmnifsError, Provider
from omnifs.replication import item_path
from omnifs.work import KINDS, FileWork, Malformed, Replicate, from_item

log = logging.getLogger("omnifs.daemon")

#: omnifs.replication.execute: (catalog of this thread, usable providers, item) -> bytes it
#: copied (None counts as 0); raises an OmnifsError, or its ``Retry`` when the item cannot run yet
Executor = Callable[[Catalog, dict[str, Provider], WorkItem], "int | None"]


def lock_keys(catalog: Catalog, item: WorkItem) -> list[str]:
    """(provider, key) pairs the item may write or delete: two items sharing one must not overlap.

    The executor's contract: items touching the same object never run at
    once. A replicate/move writes at the file's current path; a move also
    reads and deletes ``src``; a delete removes ``key`` (the item's
    ``objects``). An item no kind reads locks nothing: it never runs.
    """
    try:
        work = from_item(item)
    except Malformed:
        return []
    keys = list(work.objects)
    if isinstance(work, FileWork):
        ino = work.inode
        path = catalog.ns.path_of(ino)
        keys.append(path if path is not None else f"orphan:{ino}")
        if path is not None:  # where the path is too long for a store's keys, it writes here
            keys.append(long_key(path))
        keys.append(f"inode:{ino}")
    return sorted({f"{work.provider}\0{k}" for k in keys})


def claim_with_keys(catalog: Catalog, worker: str, *, kinds, limit: int,
                    lease: float) -> list[tuple[WorkItem, list[str]]]:
    """Claim a batch and look up each item's lock keys in the same catalog call.

    One thread hop per batch instead of one more per item: with small files
    the daemon's per-item overhead, not the bytes, bounds throughput. A
    rename between claim and execution can change an item's keys; reading them
    just before it runs would not prevent that (no catalog lock is held then).
    """
    items = catalog.work.claim(worker, kinds=kinds, limit=limit, lease=lease)
    return [(it, lock_keys(catalog, it)) for it in items]


_RNG = random.Random()


def backoff(attempts: int, base: float, cap: float, rng: random.Random = _RNG) -> float:
    """Exponential backoff with full jitter on the upper half."""
    delay = min(cap, base * (2 ** max(attempts, 0)))
    return delay / 2 + rng.random() * delay / 2


def worker_prefix() -> str:
    return f"daemon:{socket.gethostname()}:{os.getpid()}"


def release_dead_claims(catalog: Catalog) -> int:
    """Hand back items claimed by daemons of this host whose process is gone."""
    host = socket.gethostname()
    released = 0
    for holder in catalog.work.claim_holders(f"daemon:{host}:"):
        try:
            pid = int(holder.split(":")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            catalog.work.release_claims(holder)
            released += 1
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def heartbeat(d) -> None:
    """The daemon ``d``'s record among the workers ``omnifs status`` lists (any host)."""
    done = failed = 0
    for metric in d.metrics.items.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                if sample.labels.get("result") == "done":
                    done += int(sample.value)
                elif sample.labels.get("result") == "failed":
                    failed += int(sample.value)
    d.catalog.set_meta(WORKER_PREFIX + d.workers.prefix,
                       worker_record(d.workers.prefix, d.started, done, failed, time.time()))


class ThreadCatalogs:
    """One catalog connection per worker thread: sqlite3 transactions must not interleave.

    trio's worker threads come and go (an idle one exits after a few seconds):
    a new thread takes over the catalog of one that has exited instead of
    opening another. Otherwise every idle spell would leave a connection open
    (on PostgreSQL, a server process) and every busy one would open new ones,
    each paying the schema check at open.
    """

    def __init__(self, path) -> None:
        self.path = path
        self._local = threading.local()
        #: every catalog opened, with the thread that uses it
        self._all: list[tuple[threading.Thread, Catalog]] = []
        self._lock = threading.Lock()

    def get(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            me = threading.current_thread()
            with self._lock:
                for i, (thread, spare) in enumerate(self._all):
                    if not thread.is_alive():  # it cannot be in a transaction any more
                        self._all[i] = (me, spare)
                        cat = spare
                        break
            if cat is None:
                cat = Catalog(self.path)
                with self._lock:
                    self._all.append((me, cat))
            self._local.catalog = cat
        return cat

    def open_count(self) -> int:
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        with self._lock:
            for _, cat in self._all:
                with contextlib.suppress(Exception):
                    cat.close()
            self._all.clear()


class Workers:
    def __init__(self, daemon) -> None:
        self.d = daemon
        self.prefix = worker_prefix()
        self.in_flight = 0
        #: (provider, key) -> [lock, users]: see lock_keys
        self._locks: dict[str, list] = {}
        #: finished item ids the settler has not removed from the queue yet
        self._finished: list[int] = []
        self._settle_now = trio.Event()
        self._settled_all = False
        #: provider -> timed copies to it not recorded yet (the store's write throughput)
        self._transfers: dict[str, list[Transfer]] = {}

    async def run(self, count: int) -> None:
        """One claimer feeding ``count`` workers, and one settler recording what they finished.

        Claims and completions are batched (one catalog transaction per batch,
        not per item): with small files the per-item commits, not the bytes,
        are the cost. A completion not yet recorded when the process dies is
        simply executed again (items are idempotent).
        """
        send, receive = trio.open_memory_channel[tuple[WorkItem, list[str]]](count)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.settler)
            async with trio.open_nursery() as workers:
                for _ in range(count):
                    workers.start_soon(self.worker, receive.clone())
                await receive.aclose()
                await self.claimer(send, count)
            self._settle_now.set()
            self._settled_all = True

    async def claimer(self, send: trio.MemorySendChannel[tuple[WorkItem, list[str]]],
                      batch: int) -> None:
        d = self.d
        async with send:
            while not d.stopping.is_set():
                claimed = await d.db(claim_with_keys, d.catalog, self.prefix, kinds=KINDS,
                                     limit=batch, lease=d.settings.lease)
                if not claimed:
                    with trio.move_on_after(d.settings.idle_poll):
                        await d.wake.wait()
                    continue
                for entry in claimed:
                    await send.send(entry)

    async def worker(self, receive: trio.MemoryReceiveChannel[tuple[WorkItem, list[str]]]) -> None:
        async with receive:
            async for item, keys in receive:
                if self.d.stopping.is_set():
                    continue  # claimed but not started: handed back by the shutdown
                await self.handle(item, self.prefix, keys)

    async def settler(self) -> None:
        """Remove finished items from the queue in batches, and record their transfers."""
        d = self.d
        while True:
            with trio.move_on_after(0.05):
                await self._settle_now.wait()
            self._settle_now = trio.Event()
            if self._finished:
                done, self._finished = self._finished, []
                with trio.CancelScope(shield=True):
                    await d.db(d.catalog.work.complete_many, done)
            if self._transfers:
                timed, self._transfers = self._transfers, {}
                with trio.CancelScope(shield=True):
                    for name, transfers in timed.items():
                        await d.db(d.catalog.health.record_transfers, name, "write", transfers)
            if self._settled_all and not self._finished:
                return

    async def handle(self, item: WorkItem, wid: str, keys: list[str] | None = None) -> None:
        d = self.d
        try:
            work = from_item(item)
        except Malformed as e:
            await d.db(d.catalog.fail, item.id, str(e), retry_in=None)
            d.metrics.items.labels(item.kind, "failed").inc()
            return
        involved = list(work.providers)
        unknown = [p for p in involved if p not in d.providers]
        if unknown:
            await d.db(d.catalog.work.fail, item.id, f"{unknown[0]}: provider is not in the config",
                       retry_in=None)
            d.metrics.items.labels(item.kind, "failed").inc()
            return
        target = work.target
        if d.board.status(target) == LOST:
            # the lost provider's copies are re-placed by the failover step
            await d.db(d.catalog.work.complete, item.id)
            d.metrics.items.labels(item.kind, "dropped").inc()
            return
        if isinstance(work, Replicate) and d.config.governance.engine.rules:
            refused = await d.db(refusal, d.catalog, d.config, work.inode, work.provider)
            if refused is not None:  # queued before the rule, or by a tool that ignored it
                path, rule, detail = refused
                log.warning("governance: no copy of %s to %s: %s (%s)", path, work.provider,
                            rule, detail)
                d.audit.record(f"replicate to {work.provider}", path, uid=os.getuid(),
                               pid=os.getpid(), rule=rule, result="denied")
                await d.db(d.catalog.work.complete, item.id)
                d.metrics.items.labels(item.kind, "dropped").inc()
                return
        blocked = [p for p in involved if not d.board.usable(p)]
        if blocked:
            await d.db(d.catalog.work.defer, item.id, time.time() + d.settings.probe_interval * 2)
            d.metrics.items.labels(item.kind, "deferred").inc()
            return
        if keys is None:
            keys = await d.db(lock_keys, d.catalog, item)
        counted: list[str] = []
        self.in_flight += 1
        try:
            async with AsyncExitStack() as stack:
                for k in keys:
                    lock = self._lock(k)
                    counted.append(k)
                    await stack.enter_async_context(lock)
                for name in sorted(involved):
                    await stack.enter_async_context(d.limiters[name])
                started = time.perf_counter()
                moved = await trio.to_thread.run_sync(self._execute, item,
                                                      abandon_on_cancel=True)
                took = time.perf_counter() - started
        except OmnifsError as e:
            await self._failed(item, e, e.provider if e.transient else None)
        except Exception as e:  # one bad item must not stop the daemon
            if type(e).__name__ != "Retry" and not isinstance(e, CatalogUnavailable):
                log.exception("work item %d (%s) failed unexpectedly", item.id, item.kind)
            await self._failed(item, e, None)
        else:
            now = d.clock()
            for name in involved:
                d.board.note_answer(name, now)
            self._finished.append(item.id)
            if d.audit.enabled:
                path = await d.db(item_path, d.catalog, item)
                d.audit.record(f"{item.kind} on {target}", f"/{path}" if path else "?",
                               uid=os.getuid(), pid=os.getpid())
            d.metrics.items.labels(item.kind, "done").inc()
            d.totals["items_done"] += 1
            if moved:
                d.metrics.bytes_replicated.labels(target).inc(moved)
                d.totals["bytes_replicated"] += moved
                # a whole copy to ``target``, timed: its write throughput (migrate plan's
                # time estimate); recorded by the settler with the completions
                self._transfers.setdefault(target, []).append(Transfer(time.time(), moved, took))
        finally:
            self.in_flight -= 1
            for k in counted:
                self._release(k)

    def _lock(self, key: str) -> trio.Lock:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [trio.Lock(), 0]
        entry[1] += 1
        return entry[0]

    def _release(self, key: str) -> None:
        entry = self._locks.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self._locks[key]

    def _execute(self, item: WorkItem) -> int:
        """Run the item in this thread; the bytes the executor reports it moved.

        Not the file's size: an item that found its copy already done (a
        re-run after kill -9, a duplicate) moved nothing and counts nothing.
        """
        d = self.d
        cat = d.thread_catalogs.get()
        usable = {n: p for n, p in d.providers.items() if d.board.usable(n)}
        moved = d.executor(cat, usable, item)
        return moved if isinstance(moved, int) else 0

    async def _failed(self, item: WorkItem, err: BaseException, provider: str | None) -> None:
        d = self.d
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        delay = backoff(item.attempts, d.settings.retry_base, d.settings.retry_max)
        log.info("work item %d (%s) failed, retry in %.1fs: %s", item.id, item.kind, delay, text)
        # Retry means "not yet" (no synced source while it is down): never parked as failed
        limit = 10**9 if type(err).__name__ == "Retry" else d.settings.max_attempts
        await d.db(d.catalog.work.fail, item.id, text, retry_in=delay, max_attempts=limit)
        d.metrics.items.labels(item.kind, "error").inc()
        if provider in d.providers:
            await d.sdb(d.state.add_samples, provider, [Sample(time.time(), 0.0, False)], "worker",
                        text)
