"""``omnifs gov apply``: the retention rules as the stores' own locks (providers/retention.py).

For each file a ``retention`` rule covers, each store holding a synced copy
gets a lock until the file's creation plus the longest retention that
applies (a lock already longer is left alone), and a legal hold when a
``legal_hold`` rule covers it (S3 Object Lock). A GCS store listed in
``[governance] bucket_retention`` gets its bucket's retention policy raised
to the longest retention its protected copies want (every object in that
bucket is then kept that long from its own creation). Stores that cannot
hold a lock are named once each, with the reason; they count as failures
(exit 1), since the rule is then only enforced by omnifs itself.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .catalog import ROOT_INODE, Catalog
from .config import Config
from .policy.governance import CLASS_XATTR, GovRule
from .providers import OmnifsError, Provider, open_provider
from .providers.retention import (
    GCS_NO_HOLD,
    bucket_retention,
    lock_state,
    set_bucket_retention,
    set_legal_hold,
    set_retention,
    unsupported,
)


@dataclass
class LockGap:
    """A copy whose store-side lock is shorter than its rule wants (or missing)."""

    path: str
    store: str
    rule: str
    #: what is (dry run: would be) set, e.g. "until 2033-12-06 10:00:00 UTC"
    detail: str


@dataclass
class Applied:
    lines: list[str] = field(default_factory=list)
    locked: int = 0
    kept: int = 0
    failed: int = 0
    #: the copies locked (dry run: to lock), per rule
    gaps: list[LockGap] = field(default_factory=list)
    #: store -> why it holds no lock, for the stores holding a protected copy
    unlockable: dict[str, str] = field(default_factory=dict)
    #: rule label -> the stores holding its files where only omnifs enforces it
    omnifs_only: dict[str, set[str]] = field(default_factory=dict)


#: said of a store that holds no lock
ONLY_OMNIFS = "; the rule is omnifs-enforced there (mount, daemon, CLI), not store-enforced"
#: lock reads (HEADs) in flight per run; copies judged before their reads are sent together
READERS = 8
BATCH = 512


def apply(cat: Catalog, cfg: Config, *, dry_run: bool = False) -> Applied:
    """Lock every protected file's synced copies (``dry_run``: say what would be locked)."""
    run = _Run(cfg, dry_run)
    gov = cfg.governance.engine
    try:
        with ThreadPoolExecutor(READERS, thread_name_prefix="gov-lock") as run.pool:
            for ino, rel in cat.ns.files_under(ROOT_INODE):
                inode = cat.ns.get(ino)
                if inode is None:
                    continue
                path = "/" + rel.strip("/")
                cls = gov.class_of(path, cat.ns.get_xattr(ino, CLASS_XATTR))
                rules = [r for r in gov.rules_for(path, cls) if r.protects]
                for rep in cat.replicas.of(ino) if rules else ():
                    if rep.state == "synced" and rep.provider in cfg.providers:
                        run.copy(path, inode.birth_ns, rules, rep.provider, rep.key)
            run.flush()
        run.bucket_policies()
    finally:
        for p in run.opened.values():
            p.close()
    out = run.out
    out.lines.append(f"{out.locked} object(s) {'to lock' if dry_run else 'locked'}, "
                     f"{out.kept} already locked long enough, {out.failed} not lockable")
    return out


@dataclass
class _Lock:
    """A copy whose store-side lock is to be read back, and set where short."""

    path: str
    store: str
    p: Provider
    key: str
    keeper: GovRule
    until: datetime | None
    holder: GovRule | None


class _Run:
    def __init__(self, cfg: Config, dry_run: bool):
        self.cfg = cfg
        self.dry_run = dry_run
        self.out = Applied()
        self.opened: dict[str, Provider] = {}
        #: GCS stores with a bucket retention policy: the policy read, and the one wanted
        self.policy: dict[str, int | None] = {}
        self.wanted: dict[str, int] = {}
        #: GCS stores whose policy could not be read: why
        self.broken: dict[str, str] = {}
        #: copies whose locks are read (and set) together, on the pool's threads
        self.pending: list[_Lock] = []
        self.pool: ThreadPoolExecutor | None = None

    def provider(self, name: str) -> Provider:
        p = self.opened.get(name)
        if p is None:
            p = self.opened[name] = open_provider(self.cfg.providers[name])
        return p

    def omnifs_only(self, rules: list[GovRule], store: str, why: str, line: str) -> None:
        out = self.out
        out.failed += 1
        for r in rules:
            out.omnifs_only.setdefault(r.label, set()).add(store)
        if store not in out.unlockable:
            out.unlockable[store] = why
            if line:
                out.lines.append(line)

    def copy(self, path: str, born_ns: int, rules: list[GovRule], store: str, key: str) -> None:
        """Lock one copy (or note why its store cannot hold one)."""
        out = self.out
        keeper = max(rules, key=lambda r: r.retention_s or 0)
        holder = next((r for r in rules if r.legal_hold), None)
        if store in self.cfg.governance.bucket_retention:
            self.bucket_copy(path, self.provider(store), keeper, holder, store)
            return
        if store in out.unlockable:
            self.omnifs_only(rules, store, "", "")
            return
        p = self.provider(store)
        why = unsupported(p)
        if why is not None:
            self.omnifs_only(rules, store, why, f"{store}: cannot lock: {why}{ONLY_OMNIFS}")
            return
        until_s = keeper.retained_until(born_ns)
        # whole seconds, rounded up: what every store keeps (the minio SDK sends no fraction)
        until = (datetime.fromtimestamp(math.ceil(until_s), UTC) if until_s is not None
                 else None)
        self.pending.append(_Lock(path, store, p, key, keeper, until, holder))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Read (and set) the pending copies' locks in parallel; the outcomes in order."""
        jobs, self.pending = self.pending, []
        assert self.pool is not None
        for job, got in zip(jobs, self.pool.map(self.lock, jobs), strict=True):
            if isinstance(got, str):
                self.out.failed += 1
                self.out.lines.append(f"{job.path} on {job.store}: {got}")
            else:
                self.done(job.path, job.store, got)

    def lock(self, job: _Lock) -> list[tuple[GovRule, str]] | str:
        """One copy's lock read back (one HEAD) and set where short: what was (or would be)
        done, or the store's error. On a pool thread: no bookkeeping here."""
        p, key = job.p, job.key
        try:
            until, held = lock_state(p, key)
            todo = []
            if job.until is not None and (until is None or until < job.until):
                todo.append((job.keeper, f"until {job.until:%Y-%m-%d %H:%M:%S} UTC"))
                if not self.dry_run:
                    set_retention(p, key, job.until)
            if job.holder is not None and not held:
                todo.append((job.holder, "under legal hold"))
                if not self.dry_run:
                    set_legal_hold(p, key)
        except OmnifsError as e:
            return str(e)
        return todo

    def done(self, path: str, store: str, todo: list[tuple[GovRule, str]]) -> None:
        out = self.out
        if not todo:
            out.kept += 1
            return
        out.locked += 1
        out.gaps.extend(LockGap(path, store, r.label, what) for r, what in todo)
        out.lines.append(f"{path} on {store}: {'would lock' if self.dry_run else 'locked'} "
                         f"{' and '.join(what for _, what in todo)}")

    def bucket_copy(self, path: str, p: Provider, keeper: GovRule, holder: GovRule | None,
                    store: str) -> None:
        """A copy in a GCS bucket whose retention policy `gov apply` keeps (set at the end)."""
        if holder is not None:
            self.omnifs_only([holder], store, GCS_NO_HOLD,
                             f"{store}: cannot hold: {GCS_NO_HOLD}{ONLY_OMNIFS}")
        if not keeper.retention_s:
            return
        if store not in self.policy:
            try:
                self.policy[store] = bucket_retention(p)
            except OmnifsError as e:
                self.policy[store] = None
                self.broken[store] = f"bucket retention policy unreadable: {e}"
                self.out.lines.append(f"{store}: {self.broken[store]}")
        if store in self.broken:
            self.omnifs_only([keeper], store, self.broken[store], "")
            return
        wanted = math.ceil(keeper.retention_s)
        todo = []
        if (self.policy[store] or 0) < wanted:
            self.wanted[store] = max(self.wanted.get(store, 0), wanted)
            todo.append((keeper, f"by the bucket's retention policy ({wanted} s)"))
        self.done(path, store, todo)

    def bucket_policies(self) -> None:
        """Raise each GCS bucket's retention policy to the longest its copies want."""
        for store, seconds in self.wanted.items():
            if not self.dry_run:
                try:
                    set_bucket_retention(self.opened[store], seconds)
                except OmnifsError as e:
                    self.out.failed += 1
                    self.out.lines.append(f"{store}: bucket retention policy not set: {e}")
                    continue
            self.out.lines.append(
                f"{store}: bucket retention policy {'would be set' if self.dry_run else 'set'} "
                f"to {seconds} s ({seconds / 86400:.0f} days; it was "
                f"{self.policy.get(store) or 'none'}): every object in the bucket is kept that "
                "long from its own creation")
