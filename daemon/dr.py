"""The daemon's disaster-recovery jobs: scheduled backups, pruning, drills, the recovery point.

Every :data:`TICK` seconds: each ``[[dr.backups]]`` whose schedule is due
(from the last backup the catalog records, omnifs/dr/state.py) is taken, and
pruned after by its retention; a due ``[dr] drill_schedule`` drills each
target. The recovery point (the oldest change not yet in a backup) is
exported as ``omnifs_dr_recovery_point_seconds`` and warned about once it
passes ``[dr] rpo``; failed backups and drills count in
``omnifs_dr_failures_total`` and are logged as warnings (the alerts path).
The jobs run in threads, one at a time, and never stop the daemon.
"""

from __future__ import annotations

import logging
import time

import trio
from prometheus_client import Counter, Gauge

from omnifs.catalog import CatalogError
from omnifs.dr import backup, drill, prune, state
from omnifs.errors import OmnifsError

#: what a background job may fail with and the daemon survives (logged in one line)
EXPECTED_FAILURES: tuple[type[BaseException], ...] = (OmnifsError, OSError, *CatalogError)

log = logging.getLogger("omnifs.daemon")

#: seconds between looks at the schedules
TICK = 1.0


class DrJobs:
    def __init__(self, daemon) -> None:
        self.d = daemon
        self.dr = daemon.config.dr
        r = daemon.metrics.registry
        self.point = Gauge("omnifs_dr_recovery_point_seconds",
                           "Age of the oldest change not yet in a backup", registry=r)
        self.exceeded = Gauge("omnifs_dr_rpo_exceeded",
                              "1 while the recovery point is older than [dr] rpo", registry=r)
        self.failures = Counter("omnifs_dr_failures", "Failed backups, prunes and drills",
                                ["job"], registry=r)
        self.last_drill: float | None = None
        self._warned = False

    async def run(self) -> None:
        if not self.dr.backups:
            return
        while True:
            await trio.sleep(TICK)
            for spec in self.dr.backups:
                if spec.schedule is not None and await self._due(spec):
                    await self._job("backup", self._backup, spec)
            if self.dr.drill_schedule is not None and await self._drill_due():
                self.last_drill = time.time()
                for spec in self.dr.backups:
                    await self._job("drill", self._drill, spec)
            await self._job("recovery point", self._recovery_point)

    async def _due(self, spec) -> bool:
        records = await self.d.db(state.recorded, self.d.catalog, state.BACKUP_PREFIX)
        last = records.get(spec.name, {}).get("at")
        now = time.time()
        return spec.schedule.next_after(last, now) <= now

    async def _drill_due(self) -> bool:
        """Due by ``drill_schedule`` (from the last drill this catalog records), once some
        backup exists to drill."""
        backups = await self.d.db(state.recorded, self.d.catalog, state.BACKUP_PREFIX)
        if not backups:
            return False
        if self.last_drill is None:
            drills = await self.d.db(state.recorded, self.d.catalog, state.DRILL_PREFIX)
            self.last_drill = max((d.get("at", 0.0) for d in drills.values()), default=None)
        now = time.time()
        return self.dr.drill_schedule.next_after(self.last_drill, now) <= now

    async def _job(self, what: str, fn, *args) -> None:
        try:
            await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
        except EXPECTED_FAILURES as e:
            self.failures.labels(what).inc()
            log.warning("dr %s failed: %s", what, str(e).splitlines()[0])

    def _backup(self, spec) -> None:
        target = state.open_target(spec)
        try:
            usable = {n: p for n, p in self.d.providers.items() if self.d.board.usable(n)}
            done = backup.run(self.d.catalog.target, usable, target, name=spec.name,
                              paths=list(spec.paths))
            cat = self.d.thread_catalogs.get()
            state.record(cat, state.BACKUP_PREFIX, spec.name,
                         {"id": done.id, "at": done.at, "files": done.files,
                          "bytes_new": done.bytes_new, "seconds": done.seconds})
            log.info("dr backup %s to %s: %d files, %d bytes new in %.1f s", done.id,
                     spec.name, done.files, done.bytes_new, done.seconds)
            if not spec.retention.keeps_all():
                pruned = prune.prune(target, spec.retention)
                log.info("dr prune of %s: forgot %d backups, deleted %d objects", spec.name,
                         len(pruned.forgotten), pruned.objects_deleted)
        finally:
            target.provider.close()

    def _drill(self, spec) -> None:
        outcome = drill.run_drill(self.d.config, spec, sample=self.dr.drill_sample)
        if not outcome.ok:
            self.failures.labels("drill").inc()
            log.warning("dr %s", outcome.line)
        else:
            log.info("dr %s", outcome.line)

    def _recovery_point(self) -> None:
        cat = self.d.thread_catalogs.get()
        point = state.recovery_point(cat, [b.name for b in self.dr.backups], time.time(),
                                     self.d.config.copies)
        self.point.set(point["exposed"])
        over = self.dr.rpo is not None and point["exposed"] > self.dr.rpo
        self.exceeded.set(1 if over else 0)
        if over and not self._warned:
            log.warning("dr: RPO exceeded: %.0f s of changes are not in any backup "
                        "(rpo %g s)", point["exposed"], self.dr.rpo)
        self._warned = over
