"""``omnifs daemon``: one trio process keeping every file on ``copies`` providers.

Tasks in one nursery, each owned and cancelled in an explicit order:

* the health prober (every ``probe_interval`` s) - feeds the board the
  workers, the failover step and the mount (through ``provider_health``) use;
* ``workers`` replication workers claiming queued work (daemon/workers.py);
* the reconciler, which scrubs every store (every ``reconcile_interval`` s,
  daemon/reconcile.py);
* catalog snapshots to every store (``snapshot_interval``/``snapshot_quiet``,
  omnifs/snapshot.py): what rebuilds the tree if the catalog is lost;
* the stats loop (queue depth, lag, under-replicated files -> metrics);
* the watchdog pinger when systemd watches us; signal handling.

Shutdown (SIGTERM/SIGINT): STOPPING=1, stop claiming, let in-flight items
finish for up to ``drain_timeout`` s, then cancel the rest and hand their
claims back. SIGHUP re-reads the config: probe, retry, loss, reconcile and drain
settings, the conflict policy, copies and governance rules change in place;
worker counts and added or removed providers need a restart (logged).
"""

from __future__ import annotations

import collections
import functools
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import trio

from omnifs import sd_notify as notify
from omnifs.audit import open_audit
from omnifs.audit.checkpoint import publisher
from omnifs.blockcache import BlockCache
from omnifs.cached_content import open_cache
from omnifs.catalog import Catalog, CatalogUnavailable
from omnifs.config import Config, load_config
from omnifs.metrics.alerts import AlertBook
from omnifs.policy.placement import rules_from_config, views_from_config
from omnifs.processes import DAEMON_KEY, WORKER_PREFIX, this_process
from omnifs.providers import OmnifsError, Provider, metered, open_provider
from omnifs.usage_log import Source, UsageLog, process_source
from omnifs.work import KINDS

from .alerting import alert_loop, sample_loop
from .dr import EXPECTED_FAILURES, DrJobs
from .health import HealthBoard, Prober
from .metrics import Metrics
from .settings import DaemonSettings, parse_daemon
from .state import State
from .workers import Executor, ThreadCatalogs, Workers, heartbeat, release_dead_claims

#: the under-replicated count (a scan of every file, and the repair after it) takes at
#: most about 1/SCAN_PACE of the time
SCAN_PACE = 20

log = logging.getLogger("omnifs.daemon")


def default_executor(cache: BlockCache | None, metrics: Metrics,
                     config: Config | None = None) -> Executor:
    """The executor of one work item (omnifs/replication.py).

    With the local block cache: files written through a mount on this host
    are copied from there, not downloaded from their first store again.
    With ``[dr] keep_versions_for``, versions about to be deleted or
    overwritten go to the backup target first (omnifs/dr/versions.py).
    """
    from omnifs import replication
    from omnifs.dr.versions import keeper_for

    return functools.partial(replication.execute, cache=cache,
                             on_copy=lambda c: metrics.copies.labels(c.source).inc(),
                             keep=keeper_for(config.dr) if config is not None else None)


class Daemon:
    def __init__(self, config: Config, *, executor: Executor | None = None,
                 providers: dict[str, Provider] | None = None,
                 clock: Callable[[], float] = time.time,
                 usage_source: Source | None = None) -> None:
        self.config = config
        self.settings: DaemonSettings = parse_daemon(config.daemon, str(config.path or "config"))
        #: the SQLite file or the postgresql:// URL (``Catalog(self.catalog_path)`` opens it)
        self.catalog_path: str | Path = config.catalog_target()
        self.catalog = Catalog(self.catalog_path)
        self.state = State(self.catalog_path)
        self.thread_catalogs = ThreadCatalogs(self.catalog_path)
        self.metrics = Metrics()
        if metered.enabled(config.metrics.enabled):
            self.metrics.include(config)
        self.cache = open_cache(config) if executor is None else None
        self.executor = executor or default_executor(self.cache, self.metrics, config)
        self.clock = clock
        #: the store requests this process makes, recorded in the catalog (cat.usage)
        self.usage = UsageLog(self.catalog_path, usage_source or process_source())
        self._own_providers = providers is None
        self.providers = providers if providers is not None else {
            name: open_provider(s) for name, s in config.providers.items()}
        self.limiters = {name: trio.CapacityLimiter(self.settings.per_provider)
                         for name in self.providers}
        self.board = HealthBoard()
        self.stopping = trio.Event()
        self.wake = trio.Event()
        self._db_limiter = trio.CapacityLimiter(1)
        self._state_limiter = trio.CapacityLimiter(1)
        self.workers = Workers(self)
        #: the catalog's server did not answer the last call (:meth:`db` waits for it)
        self.catalog_down = False
        #: when this process started (its worker record, ``omnifs status``)
        self.started = time.time()
        self.metrics_port: int | None = None
        self.prober: Prober | None = None
        #: the alerts ``[alerts]`` configures, once the alert loop runs (daemon/alerting.py)
        self.alerts: AlertBook | None = None
        #: totals since the last flush to daemon_counters (bytes_replicated, items_done)
        self.totals: collections.Counter = collections.Counter()
        self.rules = rules_from_config(config.governance_rules)
        #: the audit log: every item run, every copy governance refused (omnifs/audit/)
        self.audit = open_audit(config, "daemon",
                                publisher(lambda: list(self.providers.values())))
        #: stores whose last scrub found their bucket/container gone: placement leaves them out
        self.missing_roots: set[str] = set()
        #: (provider, new status) from the prober, handled by the failover loop
        self._events_send, self._events = trio.open_memory_channel[tuple[str, str, str]](1000)

    # -- serialized access to the two connections ---------------------------
    async def db(self, fn, *args, **kwargs):
        """Run a catalog call in a thread; one at a time on the daemon's connection.

        While the catalog's server is unreachable (a PostgreSQL outage) the call
        waits and is tried again: the daemon pauses, and resumes by itself when
        the server answers. A daemon that is stopping gives up instead.
        """
        return await self._through_outages(fn, args, kwargs, self._db_limiter)

    async def sdb(self, fn, *args, **kwargs):
        return await self._through_outages(fn, args, kwargs, self._state_limiter)

    async def _through_outages(self, fn, args, kwargs, limiter):
        delay = 0.2
        while True:
            try:
                result = await trio.to_thread.run_sync(lambda: fn(*args, **kwargs),
                                                       limiter=limiter)
            except CatalogUnavailable as e:
                if self.stopping.is_set():
                    raise
                if not self.catalog_down:
                    self.catalog_down = True
                    log.warning("catalog unreachable, paused until it answers: %s",
                                (str(e).strip().splitlines() or [type(e).__name__])[0])
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self.catalog_down:
                self.catalog_down = False
                log.warning("catalog reachable again: resumed")
            return result

    async def flush_totals(self) -> None:
        """Add the in-memory totals to the persistent counters (best effort)."""
        totals, self.totals = self.totals, collections.Counter()
        try:
            for name, amount in totals.items():
                await self.sdb(self.state.add_counter, name, amount)
        except Exception as e:  # noqa: BLE001 - a counter must never fail the work
            log.debug("counters: %s", e)

    def views(self):
        """Placement's view of the providers right now (a store without its bucket is none)."""
        return views_from_config(
            {n: self.config.provider_tables.get(n, {}) for n in self.providers
             if n not in self.missing_roots},
            status=self.board.statuses() | {n: "lost" for n in self.board.lost},
            latency=self.board.latencies())

    # -- the process -----------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        released = await self.db(release_dead_claims, self.catalog)
        if released:
            log.info("took back the claims of %d dead daemon worker(s)", released)
        await self.db(self.catalog.set_meta, DAEMON_KEY, this_process())  # `omnifs status`
        await self.db(heartbeat, self)
        self.metrics_port = self.metrics.serve(self.config.metrics_port, self.config.metrics.addr)
        self.usage.start()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._signals)
                self.prober = prober = Prober(self.providers, self.state, self.metrics, self.board,
                                interval=self.settings.probe_interval,
                                timeout=self.settings.probe_timeout,
                                lost_after=self.settings.lost_after,
                                on_lost=self._on_lost, on_change=self._on_change,
                                clock=self.clock)
                await nursery.start(prober.run)
                for loop in (self._stats_loop, functools.partial(alert_loop, self),
                             functools.partial(sample_loop, self), self._failover_loop,
                             self._reconcile_loop, self._snapshot_loop, self._cost_loop,
                             DrJobs(self).run):  # DrJobs: [[dr.backups]] schedules, RPO
                    nursery.start_soon(self._resilient, loop)
                watchdog = notify.watchdog_interval()
                if watchdog:
                    nursery.start_soon(self._watchdog, watchdog)
                nursery.start_soon(self._work_then_stop, nursery.cancel_scope)
                notify.notify("READY=1\nSTATUS=replicating")
                task_status.started()
        finally:
            await self._close()

    async def _work_then_stop(self, scope: trio.CancelScope) -> None:
        """Workers run until ``stopping``; then drain within the deadline and end everything."""
        with trio.CancelScope() as work_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.workers.run, self.settings.workers)
                await self.stopping.wait()
                work_scope.deadline = trio.current_time() + self.settings.drain_timeout
        scope.cancel()

    async def _resilient(self, loop) -> None:
        """Run a background loop; a catalog outage that escapes it pauses it and starts it
        again once the catalog answers (the daemon resumes by itself)."""
        while True:
            try:
                return await loop()
            except* CatalogUnavailable:
                if self.stopping.is_set():
                    raise
            await self.db(self.catalog.get_meta, DAEMON_KEY)  # waits for the catalog

    def stop(self) -> None:
        self.state.stopping.set()
        if not self.stopping.is_set():
            notify.notify("STOPPING=1")
            self.stopping.set()
            self.wake.set()

    async def _signals(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Installed before READY=1, so a signal right after readiness is never lost."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("signal %d: draining in-flight work", signum)
                    self.stop()

    def reload(self) -> None:
        """Re-read the config file; keep running on a bad one (and say why, once)."""
        notify.notify("RELOADING=1")
        try:
            cfg = load_config(self.config.path)
            settings = parse_daemon(cfg.daemon, str(cfg.path))
        except OmnifsError as e:
            log.error("reload refused, keeping the running config: %s", e)
            notify.notify("READY=1")
            return
        if set(cfg.providers) != set(self.providers):
            log.warning("reload: providers were added or removed; restart the daemon to use them")
        cfg.providers = {n: s for n, s in cfg.providers.items() if n in self.providers}
        if (settings.workers, settings.per_provider) != (self.settings.workers,
                                                         self.settings.per_provider):
            log.warning("reload: workers and per_provider take effect at the next restart")
        self.config = cfg
        self.settings = settings
        if self.prober is not None:
            self.prober.interval = settings.probe_interval
            self.prober.timeout = settings.probe_timeout
            self.prober.lost_after = settings.lost_after
        self.rules = rules_from_config(cfg.governance_rules)
        log.info("configuration reloaded from %s", cfg.path)
        notify.notify("READY=1")

    async def _watchdog(self, interval: float) -> None:
        while True:
            notify.notify("WATCHDOG=1")
            await trio.sleep(interval)

    async def _stats_loop(self) -> None:
        scan_at = 0.0
        while True:
            depth, failed, lag = await self.db(self._stats)
            self.metrics.queue_depth.set(depth)
            self.metrics.failed_items.set(failed)
            self.metrics.lag.set(lag or 0.0)
            if time.monotonic() >= scan_at:
                # counting under-replicated files reads every file, and so does the repair
                # that follows a fresh count: a count that took t s comes again after
                # SCAN_PACE * t s at the soonest, so it keeps under 1/SCAN_PACE of a
                # daemon's time (and of a shared catalog's, per daemon) however many files
                # there are. t is the query's own time: a wait for an unreachable catalog
                # must not put the next count (and repair) off
                under, took = await self.db(self._count_under)
                self.metrics.under_replicated.set(under)
                if under and not depth:
                    await self._repair()
                scan_at = time.monotonic() + SCAN_PACE * took
            await self.flush_totals()
            await self.db(heartbeat, self)
            await trio.sleep(max(self.settings.probe_interval, 5.0))

    def _count_under(self) -> tuple[int, float]:
        """Files short of their copies, and the seconds the count took."""
        started = time.monotonic()
        under = self.catalog.replicas.under_replicated(self.config.copies)
        return under, time.monotonic() - started

    def _stats(self) -> tuple[int, int, float | None]:
        c = self.catalog
        return c.work.pending_count(), c.work.failed_count(), c.work.oldest_pending_age()

    async def _repair(self) -> None:
        """Nothing queued yet files lack copies: queue what converges them (failover.repair)."""
        from .failover import repair

        queued, dropped = await trio.to_thread.run_sync(
            repair, self.thread_catalogs, self.views(), self.rules, self.config.copies)
        if queued or dropped:
            log.info("repair: %d copy(ies) queued, %d surplus stale replica(s) dropped",
                     queued, dropped)
            self._kick()

    def _on_change(self, name: str, before: str, after: str) -> None:
        self._events_send.send_nowait((name, before, after))

    def _on_lost(self, name: str) -> None:
        """Declared lost: handled through ``_on_change`` (status becomes 'lost')."""

    def _kick(self) -> None:
        self.wake.set()
        self.wake = trio.Event()

    async def _failover_loop(self) -> None:
        """React to status changes: catch a returning provider up, re-place a lost one's copies."""
        from .failover import recreate_elsewhere, undefer

        async for name, before, after in self._events:
            if after == "lost":
                placed = await trio.to_thread.run_sync(
                    recreate_elsewhere, self.thread_catalogs, name, self.views(), self.rules,
                    self.config.copies)
                log.warning("provider %s declared lost: %d replica(s) re-placed elsewhere",
                            name, placed)
                self._kick()
            elif before in ("down", "lost") and after not in ("down", "lost"):
                # its deferred items become claimable at once: catch-up from the queue
                await self.db(undefer, self.catalog, KINDS)
                self._kick()

    async def _reconcile_loop(self) -> None:
        from .reconcile import Reconciler

        reconciler = Reconciler(self)
        await reconciler.restore()
        await self._governance_copies()
        while True:
            interval = self.settings.reconcile_interval  # re-read: SIGHUP may change it
            await trio.sleep(interval if interval > 0 else 5.0)
            if interval > 0:
                await reconciler.round()
                await self._governance_copies()

    async def _governance_copies(self) -> None:
        """Queue the copies the min_copies and distinct_regions rules want (new rules too)."""
        from omnifs.governance_scan import add_wanted_copies

        try:
            queued = await self.db(add_wanted_copies, self.catalog, self.config)
        except Exception as e:  # noqa: BLE001 - the next round tries again
            log.warning("governance copies: %s", e)
            return
        if queued:
            log.info("governance: %d cop%s queued for min_copies/distinct_regions", queued,
                     "y" if queued == 1 else "ies")
            self.wake.set()

    async def _cost_loop(self) -> None:
        """``[cost] auto = true``: queue the recommended moves at start and every
        ``[cost] schedule`` (omnifs/costing/apply.py); the workers run them."""
        from omnifs.costing.apply import apply

        while True:
            if self.config.cost.auto:
                try:
                    _, queued = await self.db(apply, self.catalog, self.config)
                except EXPECTED_FAILURES as e:
                    log.warning("cost moves not queued: %s", e)
                else:
                    if queued:
                        log.info("cost: queued %d move(s)", len(queued))
                        self.wake.set()
                        self.wake = trio.Event()
            await trio.sleep(self.config.cost.schedule_seconds)

    async def _snapshot_loop(self) -> None:
        """Write catalog snapshots to every usable store.

        When: once the catalog has stopped changing for ``snapshot_quiet`` s
        after a change (the end of a burst: a new symlink is in the stores
        within about twice that), and at least every ``snapshot_interval`` s
        while it keeps changing; an unchanged catalog is not written again
        unless a store missed the last snapshot. Cost bound: the next
        snapshot waits at least ten times as long as the last one took. Daemons on
        one catalog (several hosts) take turns: one snapshot of each state.
        """
        written = None  # change mark of the last snapshot every store took
        seen = None  # change mark at the previous look
        last = float("-inf")
        cost = 0.0
        while True:
            s = self.settings  # re-read: SIGHUP may change them
            periods = [p for p in (s.snapshot_quiet, s.snapshot_interval) if p > 0]
            await trio.sleep(min(periods) if s.snapshot_interval > 0 else 5.0)
            if s.snapshot_interval <= 0:
                continue
            # its own connection: the scan must not hold up the workers' catalog calls
            mark = await trio.to_thread.run_sync(
                lambda: self.thread_catalogs.get().ns.change_mark())
            now = trio.current_time()
            quiet = s.snapshot_quiet > 0 and mark == seen
            seen = mark
            if mark == written or now - last < 10 * cost or not (
                    quiet or now - last >= s.snapshot_interval):
                continue
            usable = {n: p for n, p in self.providers.items() if self.board.usable(n)}
            if not usable:
                continue
            take = functools.partial(self._snapshot, usable, mark, s.snapshot_keep)
            last = now
            try:
                taken = await trio.to_thread.run_sync(take, abandon_on_cancel=True)
            except EXPECTED_FAILURES as e:
                log.warning("catalog snapshot failed: %s", str(e).splitlines()[0])
                continue
            if taken is None:  # another daemon on this catalog takes or took it
                continue
            cost = taken.seconds
            written = mark if len(taken.stored) == len(self.providers) else None
            log.info("catalog snapshot %s (%d entries) written to %s in %.1f s", taken.key,
                     taken.inodes, ", ".join(taken.stored), taken.seconds)

    def _snapshot(self, usable: dict, mark: tuple, keep: int):
        """In a worker thread, on its connection: one snapshot unless another daemon on
        this catalog takes or took it (omnifs.snapshot.take_shared)."""
        from omnifs import snapshot

        return snapshot.take_shared(self.thread_catalogs.get(), usable, mark, keep=keep)

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.flush_totals()
                await self.db(self._release_own)
                await self.db(self.catalog.set_meta, DAEMON_KEY, "")  # stopped
                await self.db(self.catalog.delete_meta, WORKER_PREFIX + self.workers.prefix)
            except Exception as e:  # noqa: BLE001 - shutting down anyway
                log.debug("releasing claims: %s", e)
            await trio.to_thread.run_sync(self.audit.close)
        self.metrics.close()
        self.usage.close()  # joins its thread, writes the last counts
        self.thread_catalogs.close()
        self.state.close()
        self.catalog.close()
        if self.cache is not None:
            self.cache.close()
        if self._own_providers:
            for p in self.providers.values():
                p.close()

    def _release_own(self) -> None:
        self.catalog.work.release_claims(self.workers.prefix)


def run(config: Config, *, executor: Executor | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit status."""
    daemon = Daemon(config, executor=executor)
    trio.run(daemon.run)
    return 0
