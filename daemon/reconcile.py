"""The reconciler: the daemon's scrub of every store, and what it does about what it finds.

Every ``reconcile_interval`` s each usable store (and each one down because its
bucket is missing) is compared with the catalog by the one comparison of
:mod:`omnifs.scrub` (the one ``omnifs check`` runs): one listing per store,
without a HEAD per object, plus, with ``[daemon] scrub_verify_bytes``,
reading back the least recently verified objects up to that many bytes per
store and interval. What it finds:

* an object is missing -> the replica is marked pending and a copy from a
  good replica is queued (a deletion behind our back is undone: the catalog,
  not the store, is the source of truth for the namespace);
* the store's bucket/container/directory itself is gone -> its replicas are
  marked stale (they are no copies any more: ``status`` counts those files
  as under-replicated) and one warning per round names the missing bucket.
  The daemon does not create buckets: a bucket that vanished more often
  means a wrong name, endpoint or account than a wiped store, and creating
  one decides its region, access and billing. While it is missing,
  placement leaves the store out; once it exists again the repair step
  queues the copies and the store is restored;
* an object's bytes do not match its own SHA-256 claim (a wrong size or,
  when verifying, bytes that hash to something else while its metadata
  still claims the catalog's SHA-256) -> it is corrupt and rewritten from a
  good replica, never adopted;
* an object was changed (another size, or SHA-256 metadata that is not the
  catalog's) -> a conflict, settled by ``[replication] conflict``. Where the
  listing carries no metadata the changed object alone is HEADed for it.

  - ``newest``: the side with the later mtime wins - the store's object
    (its ``omnifs_mtime`` metadata, else its last-modified time) against the
    catalog's mtime. If the store wins it becomes the file's new version and
    the other replicas are rewritten from it; else the store is rewritten;
  - ``primary``: the first provider in the config wins; a change found on
    the primary is adopted, a change anywhere else is overwritten;
  - ``keep-both``: the changed object is kept as a new file
    ``NAME.conflict-PROVIDER-YYYYmmddTHHMMSSZ`` beside the original (a
    server-side copy in the same store, replicated like any file) and the
    original is rewritten from a good replica.

Objects no replica row points at (new files put there by another tool) are
counted and left to ``omnifs import``. Each store's report is kept in the
catalog (:func:`omnifs.scrub.record`): ``omnifs status`` shows when each store
was last scrubbed and what was found.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import trio

from omnifs import scrub
from omnifs.catalog import Catalog
from omnifs.conflicts import keep_both
from omnifs.providers import NotFound, ObjectInfo, OmnifsError, Provider
from omnifs.replication import queue_replicate
from omnifs.scrub import EXTRA, MISSING, Problem, StoreReport

log = logging.getLogger("omnifs.daemon")

#: per-object log lines per store and round; the rest are counted in one line
LOGGED = 20


@dataclass
class Outcome:
    restored: int = 0
    adopted: int = 0
    kept_both: int = 0
    unknown_objects: int = 0
    #: replicas of a store whose root is gone, no longer counted as copies
    marked_stale: int = 0
    #: missing or wrong replicas with no good replica left to copy from
    unrepairable: int = 0

    def add(self, other: Outcome) -> None:
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))


def settle(cat: Catalog, provider: Provider, report: StoreReport, *, policy: str,
           primary: str | None, copies: int) -> Outcome:
    """Act on one store's scrub report; see the module docstring."""
    out = Outcome(unknown_objects=report.counts()[EXTRA])
    name = provider.name
    if report.root_missing:
        out.marked_stale = _mark_stale(cat, report.problems)
        lost = f"; {out.marked_stale} replica(s) there are lost" if out.marked_stale else ""
        log.warning("%s%s: create it and the daemon restores its copies (omnifs does not "
                    "create buckets)", report.error, lost)
        return out
    rewrite: list[tuple[Problem, str]] = []
    for p in report.problems:
        if p.kind == MISSING:
            rewrite.append((p, "was deleted outside omnifs; restoring it"))
        elif p.kind in (scrub.WRONG_SIZE, scrub.WRONG_HASH):
            info = _described(provider, p)
            if info is None:
                rewrite.append((p, "was deleted outside omnifs; restoring it"))
            elif info.sha256 and info.sha256 == p.expected_sha256:
                rewrite.append((p, "is corrupt (not the bytes its SHA-256 names); rewriting it"))
            else:
                _conflict(cat, provider, p, info, policy=policy, primary=primary,
                          copies=copies, out=out, rewrite=rewrite)
    fixed = scrub.repair(cat, [p for p, _ in rewrite])
    out.restored += fixed.queued
    out.unrepairable += len(fixed.unrepairable)
    bad = {(p.inode, p.provider) for p in fixed.unrepairable}
    logged = 0
    for p, why in rewrite:
        if (p.inode, p.provider) in bad:
            log.error("%s: %s %s, but no good replica is left to copy from", name, p.key,
                      why.split(";")[0])
        elif logged < LOGGED:
            log.warning("%s: %s %s", name, p.key, why)
            logged += 1
    if len(rewrite) > logged + len(bad):
        log.warning("%s: %d more object(s) restored or rewritten", name,
                    len(rewrite) - logged - len(bad))
    return out


def _described(provider: Provider, p: Problem) -> ObjectInfo | None:
    """The changed object with its metadata: the listing's, or one HEAD where it had none."""
    if p.info is not None and p.info.metadata_known and p.source != "bytes":
        return p.info
    try:
        return provider.head(p.key)
    except NotFound:
        return None


def _conflict(cat: Catalog, provider: Provider, p: Problem, info: ObjectInfo, *, policy: str,
              primary: str | None, copies: int, out: Outcome,
              rewrite: list[tuple[Problem, str]]) -> None:
    """An object changed behind omnifs's back: adopt it, keep both, or rewrite it."""
    name = provider.name
    ino, key = p.inode, p.key
    inode = None if ino is None else cat.ns.get(ino)
    if inode is None or not scrub.still_current(cat, p):
        return  # rewritten or moved through omnifs since the listing: not a conflict
    theirs = info.mtime or 0.0
    ours = inode.mtime_ns / 1e9
    if policy == "newest":
        adopt = theirs > ours
    elif policy == "primary":
        adopt = name == primary
    else:
        adopt = False
    if policy == "keep-both" and keep_both(cat, provider, inode.id, key, info, copies):
        out.kept_both += 1
    if adopt:
        if _adopt(cat, p, info):
            out.adopted += 1
            log.warning("%s: %s was changed outside omnifs; adopted as the new version (%s)",
                        name, key, policy)
    else:
        rewrite.append((p, f"was changed outside omnifs; rewriting it ({policy})"))


def _mark_stale(cat: Catalog, problems: list[Problem]) -> int:
    marked = 0
    with cat.transaction():
        for p in problems:
            if p.kind == MISSING and p.inode is not None and scrub.still_current(cat, p):
                cat.replicas.set_state(p.inode, p.provider, "stale")
                marked += 1
    return marked


def _adopt(cat: Catalog, p: Problem, info: ObjectInfo) -> bool:
    with cat.transaction():
        ino, version = p.inode, p.version
        if ino is None or version is None or not scrub.still_current(cat, p):
            return False
        provider, key = p.provider, p.key
        new = version + 1
        mtime_ns = int((info.mtime or time.time()) * 1e9)
        cat.ns.update(ino, sha256=info.sha256, size=info.size, mtime_ns=mtime_ns, version=new)
        cat.replicas.add_version(ino, new, info.sha256, info.size, mtime_ns)
        cat.replicas.set(ino, provider, key, new, "synced", etag=info.etag)
        cat.replicas.mark_others_stale(ino, new)
        for r in cat.replicas.of(ino):
            if r.provider != provider:
                queue_replicate(cat, ino, r.provider, r.key, new)
    return True


class Reconciler:
    """Runs rounds for the daemon: each step of the scrub in a thread, then settle."""

    def __init__(self, daemon) -> None:
        self.d = daemon
        #: verification budget a store saved while a bigger object waits its turn
        self.credit: dict[str, int] = {}

    async def restore(self) -> None:
        """Stores a previous daemon found without their bucket stay avoided until scrubbed."""
        d = self.d
        for name, last in (await self._cat(scrub.last_scrubs)).items():
            if name in d.providers and last.get("root_missing"):
                d.missing_roots.add(name)

    async def _cat(self, fn, *args, **kwargs):
        """``fn(catalog, ...)`` in a worker thread, on that thread's catalog connection."""
        d = self.d
        return await trio.to_thread.run_sync(
            lambda: fn(d.thread_catalogs.get(), *args, **kwargs))

    async def round(self) -> Outcome:
        total = Outcome()
        d = self.d
        for name, provider in d.providers.items():
            if not d.board.usable(name) and name not in d.board.roots_missing:
                continue
            out = await self.scrub(provider)
            total.add(out)
            for action in ("restored", "adopted", "kept_both"):
                if getattr(out, action):
                    d.metrics.conflicts.labels(name, action).inc(getattr(out, action))
        if total.restored or total.adopted or total.kept_both:
            d._kick()
        await d._repair()
        return total

    async def scrub(self, provider: Provider) -> Outcome:
        """One store: claims, one listing, the comparison, verification within budget, settle."""
        d = self.d
        name = provider.name
        report = StoreReport(name, started=time.time())
        mine = await self._cat(scrub.claims, name)
        try:
            async with d.limiters[name]:
                listing = await trio.to_thread.run_sync(scrub.list_store, provider,
                                                        abandon_on_cancel=True)
        except NotFound as e:
            scrub.root_missing(name, mine, e, report)
        except OmnifsError as e:
            report.error = str(e).splitlines()[0]
            log.info("scrub of %s skipped: %s", name, report.error)
        else:
            known = await self._cat(lambda cat, n: cat.replicas.keys(n), name)
            scrub.compare(name, mine, listing, known, report)
            del listing, known
            await self._verify(provider, report)
        if report.root_missing:
            d.missing_roots.add(name)
        elif report.error is None:
            d.missing_roots.discard(name)
        out = Outcome()
        if report.error is None or report.root_missing:
            primary = next(iter(d.providers), None)
            out = await self._cat(settle, provider, report, policy=d.config.conflict,
                                  primary=primary, copies=d.config.copies)
        report.finished = time.time()
        await self._cat(scrub.record, report, "daemon")
        d.metrics.set_scrub(name, report.counts(), report.finished)
        return out

    async def _verify(self, provider: Provider, report: StoreReport) -> None:
        """Read back the least recently verified objects, up to ``scrub_verify_bytes``.

        An object bigger than the budget waits while the budget accumulates,
        and is read in the round the accumulated budget covers it: on average
        a store never reads more than the budget per interval.
        """
        d = self.d
        budget = d.settings.scrub_verify_bytes
        if budget <= 0 or not report.present:
            return
        name = provider.name
        credit = self.credit.get(name, 0) + budget
        chosen = scrub.pick_for_verification(report.present, credit)
        self.credit[name] = 0 if chosen else credit
        if not chosen:
            return
        async with d.limiters[name]:
            good = await trio.to_thread.run_sync(
                lambda: scrub.verify(provider, report, chosen, workers=2),
                abandon_on_cancel=True)
        d.metrics.scrub_verified_bytes.labels(name).inc(report.verified_bytes)
        now = time.time()

        def mark(cat: Catalog) -> None:
            # each mark is one UPDATE of one replica row that re-checks its version and
            # state: row locks suffice (in inode order, so two daemons never deadlock)
            with cat.transaction(exclusive=False):
                for c in sorted(good, key=lambda c: c.inode):
                    cat.replicas.mark_verified(c.inode, name, c.version, now)

        await self._cat(mark)
