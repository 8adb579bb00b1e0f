"""The scrub: compare what the catalog says each store holds with what the store lists.

One comparison, used by ``omnifs check`` and by the daemon's reconciler every
``reconcile_interval``. Per store it costs one listing, asked for with
``metadata=False`` so a store whose listing lacks user metadata (S3, MinIO)
is not sent a HEAD per object, and, when verifying, one read of each object
verified.

What the catalog claims is a replica row ``synced`` at the file's current
version; files still staged, replicas in motion (pending, stale) and
unlinked-but-open files make no claim. Each claim against the listing:

* ``missing``: no object at the replica's key (the row's ``key``, which is
  not always the file's path);
* ``wrong-size``: the object's size is not the file's;
* ``wrong-hash``: the listing carries the object's SHA-256 metadata (GCS,
  Azure, file://) and it is not the catalog's (``source`` "listing"), or,
  when verifying, the bytes read back hash to something else (``source``
  "bytes");
* otherwise fine. Where the listing carries no SHA-256 only the size was
  compared, and the report says so for the store.

An object in the listed range that no replica row of the store points at is
``extra`` (long-path objects under ``.omnifs/long/`` included); omnifs's own
objects under ``.omnifs/`` and directory markers
(keys ending in ``/``) never are. A store whose bucket, container or
directory is gone fails its listing with NotFound (listing a prefix that
holds nothing is not an error): the report says so (``root_missing``) and
every claim is missing.

The claims are read before the listing starts, so a file uploaded while the
store is being listed is not taken for a missing one; whoever acts on a
problem first checks that the replica is still the one found
(:func:`still_current`), since the listing is a snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from omnifs.providers import RESERVED_PREFIX, NotFound, ObjectInfo, OmnifsError, Provider

from .catalog import ROOT_INODE, Catalog
from .layout import is_long_key
from .replication import queue_replicate

MISSING = "missing"
EXTRA = "extra"
WRONG_SIZE = "wrong-size"
WRONG_HASH = "wrong-hash"
#: an object verification could not read (a store error, not a verdict on the object)
UNREADABLE = "unreadable"
KINDS = (MISSING, WRONG_SIZE, WRONG_HASH, EXTRA, UNREADABLE)
#: problems a copy from a good replica fixes
REPAIRABLE = (MISSING, WRONG_SIZE, WRONG_HASH)

R = TypeVar("R")

#: catalog meta key of each store's last scrub (+ provider name)
META_PREFIX = "scrub:"
#: bytes read at a time when verifying: memory per verifying thread
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Claim:
    """A replica the catalog says a store holds."""

    inode: int
    key: str
    version: int
    size: int
    sha256: str | None
    mtime_ns: int
    verified_at: float | None


@dataclass(slots=True)
class Problem:
    kind: str
    provider: str
    key: str
    inode: int | None = None
    version: int | None = None
    #: the file's path in the namespace (filled in for reports; None for extras)
    path: str | None = None
    expected_size: int | None = None
    size: int | None = None
    expected_sha256: str | None = None
    sha256: str | None = None
    #: wrong-hash: "listing" (the object's SHA-256 metadata) or "bytes" (read back)
    source: str | None = None
    #: unreadable: the store's error
    detail: str | None = None
    #: the object as listed (None when missing); not part of reports
    info: ObjectInfo | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("info")
        return {k: v for k, v in d.items() if v is not None}

    def describe(self) -> str:
        """One line: kind, store, name, and what differs."""
        name = self.path if self.path is not None else self.key
        where = f" (key {self.key})" if self.path is not None and self.path != self.key else ""
        if self.kind == WRONG_SIZE:
            why = f": catalog {self.expected_size} B, store {self.size} B"
        elif self.kind == WRONG_HASH:
            got = self.sha256[:12] if self.sha256 else "none"
            why = (f": catalog sha256 {(self.expected_sha256 or '')[:12]}, "
                   f"{'bytes hash to' if self.source == 'bytes' else 'object says'} {got}")
        elif self.kind == EXTRA:
            why = f": {self.size} B, not in the catalog"
        elif self.kind == UNREADABLE:
            why = f": {self.detail}"
        else:
            why = ""
        return f"{self.kind:<11} {self.provider}  {name}{where}{why}"


@dataclass
class StoreReport:
    """One store's scrub."""

    provider: str
    started: float
    finished: float | None = None
    #: replicas the catalog says the store holds (in the checked range)
    claims: int = 0
    #: objects the listing showed (in the checked range)
    listed: int = 0
    #: claims whose SHA-256 the listing gave and matched / compared by size only
    by_hash: int = 0
    by_size: int = 0
    #: objects read back and hashed (whatever the verdict), and their bytes
    verified: int = 0
    verified_bytes: int = 0
    #: claims with no SHA-256 in the catalog: their bytes cannot be verified
    unverifiable: int = 0
    #: the bucket/container/directory itself does not exist
    root_missing: bool = False
    #: why the store could not be listed (root missing included)
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    #: claims found with the right size and hash: the candidates for verification
    present: list[Claim] = field(default_factory=list, repr=False)

    @property
    def clean(self) -> bool:
        return not self.problems and self.error is None

    @property
    def method(self) -> str:
        """How the listing was compared: "sha256", "size", "size and sha256", or "-"."""
        if self.by_hash and self.by_size:
            return "size and sha256"
        if self.by_hash:
            return "sha256"
        return "size" if self.by_size else "-"

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for p in self.problems:
            out[p.kind] += 1
        return out

    def summary(self) -> dict:
        """Everything but the problem list: what ``status`` shows and --json prints per store."""
        return {"provider": self.provider, "started": self.started, "finished": self.finished,
                "claims": self.claims, "listed": self.listed, "method": self.method,
                "by_hash": self.by_hash, "by_size": self.by_size, "verified": self.verified,
                "verified_bytes": self.verified_bytes, "unverifiable": self.unverifiable,
                "root_missing": self.root_missing, "error": self.error,
                "problems": self.counts()}


@dataclass(frozen=True)
class Scope:
    """The part of the namespace checked: everything, one directory tree, or one file."""

    path: str = ""
    is_file: bool = False
    #: the files under ``path`` (None: every file)
    inodes: frozenset[int] | None = None

    @property
    def prefix(self) -> str:
        """What to list: the keys of files under ``path`` start with it."""
        if not self.path or self.is_file:
            return self.path
        return self.path + "/"

    def covers(self, key: str) -> bool:
        if not self.path:
            return True
        return key == self.path if self.is_file else key.startswith(self.prefix)


def scope_of(cat: Catalog, path: str | None) -> Scope:
    """The scope of a namespace path; NotFound when the catalog has nothing there."""
    clean = (path or "").strip("/")
    if not clean:
        return Scope()
    inode = cat.ns.resolve(clean)
    if inode.kind not in ("file", "dir"):
        return Scope(clean, True, frozenset())
    files = frozenset(ino for ino, _ in cat.ns.files_under(inode.id))
    return Scope(clean, inode.kind == "file", files)


def claims(cat: Catalog, provider: str, scope: Scope = Scope()) -> list[Claim]:
    """The replicas the catalog says ``provider`` holds, within ``scope``."""
    rows = (Claim(*r) for r in cat.replicas.synced(provider))
    if scope.inodes is None:
        return list(rows)
    return [c for c in rows if c.inode in scope.inodes]


def list_store(provider: Provider, scope: Scope = Scope()) -> dict[str, ObjectInfo]:
    """One listing of ``scope``; raises NotFound when the store's root is gone."""
    return {o.key: o for o in provider.list(scope.prefix, recursive=True, metadata=False)
            if o.key and not o.is_prefix and scope.covers(o.key)}


def look_up(provider: Provider, keys: Iterable[str]) -> dict[str, ObjectInfo]:
    """HEAD the claimed keys a scoped listing does not cover (renames in flight, long-path keys)."""
    found = {}
    for key in keys:
        with contextlib.suppress(NotFound):
            found[key] = provider.head(key)
    return found


def is_bookkeeping(key: str) -> bool:
    """omnifs's own objects and directory markers: never files, never extra.

    Long-path objects (``.omnifs/long/``) hold files' bytes: one no replica
    points at is extra like any other.
    """
    return (key.startswith(RESERVED_PREFIX) and not is_long_key(key)) or key.endswith("/")


def compare(provider: str, mine: Iterable[Claim], listing: Mapping[str, ObjectInfo],
            known: Container[str], report: StoreReport | None = None) -> StoreReport:
    """Compare the claims with one listing; ``known``: every key a replica row points at."""
    report = report or StoreReport(provider, started=time.time())
    report.listed = len(listing)
    for c in mine:
        report.claims += 1
        info = listing.get(c.key)
        if info is None:
            report.problems.append(Problem(MISSING, provider, c.key, c.inode, c.version,
                                           expected_size=c.size, expected_sha256=c.sha256))
            continue
        if info.size != c.size:
            report.problems.append(Problem(WRONG_SIZE, provider, c.key, c.inode, c.version,
                                           expected_size=c.size, size=info.size,
                                           expected_sha256=c.sha256, info=info))
            continue
        theirs = info.sha256 if info.metadata_known else None
        if theirs and c.sha256:
            if theirs != c.sha256:
                report.problems.append(Problem(WRONG_HASH, provider, c.key, c.inode, c.version,
                                               expected_size=c.size, size=info.size,
                                               expected_sha256=c.sha256, sha256=theirs,
                                               source="listing", info=info))
                continue
            report.by_hash += 1
        else:
            report.by_size += 1
        report.present.append(c)
    for key, info in listing.items():
        if key not in known and not is_bookkeeping(key):
            report.problems.append(Problem(EXTRA, provider, key, size=info.size, info=info))
    return report


def root_missing(provider: str, mine: Sequence[Claim], error: OmnifsError,
                 report: StoreReport | None = None) -> StoreReport:
    """The store's root is gone: every claim is missing."""
    report = report or StoreReport(provider, started=time.time())
    report.root_missing = True
    report.error = _line(error)
    report.claims = len(mine)
    report.problems = [Problem(MISSING, provider, c.key, c.inode, c.version,
                               expected_size=c.size, expected_sha256=c.sha256) for c in mine]
    return report


def rehash(provider: Provider, key: str) -> tuple[int, str]:
    """(size, hex SHA-256) of the object's bytes, read in CHUNK pieces."""
    h = hashlib.sha256()
    n = 0
    with provider.open_read(key) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def verify(provider: Provider, report: StoreReport, candidates: Iterable[Claim], *,
           workers: int = 4) -> list[Claim]:
    """Read back and hash ``candidates`` (at most ``workers`` at once); the claims that held.

    A mismatch becomes a problem in ``report``: ``wrong-hash`` (source "bytes"),
    ``wrong-size`` when the object changed size since the listing, ``missing``
    when it went away, ``unreadable`` on a store error.
    """
    good: list[Claim] = []
    name = provider.name

    def check(c: Claim) -> tuple[Problem | None, int]:
        try:
            size, sha = rehash(provider, c.key)
        except NotFound:
            return Problem(MISSING, name, c.key, c.inode, c.version, expected_size=c.size,
                           expected_sha256=c.sha256), 0
        except OmnifsError as e:
            return Problem(UNREADABLE, name, c.key, c.inode, c.version, detail=_line(e)), 0
        if size != c.size:
            return Problem(WRONG_SIZE, name, c.key, c.inode, c.version, expected_size=c.size,
                           size=size, expected_sha256=c.sha256, source="bytes"), size
        if sha != c.sha256:
            return Problem(WRONG_HASH, name, c.key, c.inode, c.version, expected_size=c.size,
                           size=size, expected_sha256=c.sha256, sha256=sha,
                           source="bytes"), size
        return None, size

    hashable = []
    for c in candidates:
        if c.sha256:
            hashable.append(c)
        else:
            report.unverifiable += 1
    for (problem, size), c in _bounded(check, hashable, workers):
        report.verified_bytes += size
        if problem is None or problem.source == "bytes":
            report.verified += 1
        if problem is None:
            good.append(c)
        else:
            report.problems.append(problem)
    return good


def _bounded(fn: Callable[[Claim], R], items: Sequence[Claim],
             workers: int) -> Iterator[tuple[R, Claim]]:
    """``fn`` over ``items`` in ``workers`` threads, never more than 2 x workers queued."""
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omnifs-verify") as pool:
        running: dict[Future, Claim] = {}
        for item in items:
            if len(running) >= 2 * workers:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result(), running.pop(f)
            running[pool.submit(fn, item)] = item
        for f in list(running):
            yield f.result(), running.pop(f)


def pick_for_verification(present: Iterable[Claim], budget: int) -> list[Claim]:
    """The least recently verified claims, in that order, whose sizes add up to at most
    ``budget`` bytes (stopping at the first that does not fit)."""
    chosen, spent = [], 0
    for c in sorted(present, key=lambda c: (c.verified_at or 0.0, c.inode)):
        if spent + c.size > budget:
            break
        chosen.append(c)
        spent += c.size
    return chosen


def scrub_store(cat: Catalog, provider: Provider, scope: Scope = Scope(), *,
                verify_workers: int = 0, mark_verified: bool = False) -> StoreReport:
    """Check one store in one call (``omnifs check``); the daemon runs the same steps one by
    one in its threads.

    ``verify_workers`` > 0: read back every object found with the right size
    and hash it, that many at once; ``mark_verified``: record the time on the
    replicas that held (the daemon verifies the least recently verified first).
    """
    report = StoreReport(provider.name, started=time.time())
    mine = claims(cat, provider.name, scope)
    try:
        listing = list_store(provider, scope)
        listing.update(look_up(provider, {c.key for c in mine if not scope.covers(c.key)}))
    except NotFound as e:
        root_missing(provider.name, mine, e, report)
    except OmnifsError as e:
        report.error = _line(e)
    else:
        compare(provider.name, mine, listing, cat.replicas.keys(provider.name), report)
        if verify_workers > 0:
            good = verify(provider, report, report.present, workers=verify_workers)
            if mark_verified:
                now = time.time()
                with cat.transaction():
                    for c in good:
                        cat.replicas.mark_verified(c.inode, provider.name, c.version, now)
    report.finished = time.time()
    return report


def fill_paths(cat: Catalog, problems: Iterable[Problem]) -> None:
    """Give each problem its file's namespace path (what a user recognises)."""
    todo = [(p, p.inode) for p in problems if p.inode is not None and p.path is None]
    if len(todo) > 1000:
        paths = dict(cat.ns.files_under(ROOT_INODE))
        for p, ino in todo:
            p.path = paths.get(ino)
    else:
        for p, ino in todo:
            p.path = cat.ns.path_of(ino)


# -- acting on what was found ---------------------------------------------------------------

def still_current(cat: Catalog, p: Problem) -> bool:
    """The replica is still the one the scrub compared (the listing is a snapshot)."""
    if p.inode is None:
        return False
    inode = cat.ns.get(p.inode)
    rep = cat.replicas.get(p.inode, p.provider)
    return (inode is not None and inode.version == p.version and rep is not None
            and rep.state == "synced" and rep.version == p.version and rep.key == p.key)


@dataclass
class Repair:
    queued: int = 0
    #: changed since the scrub (rewritten, renamed, deleted): nothing to do
    skipped: int = 0
    #: no good replica left to copy from: left as they are
    unrepairable: list[Problem] = field(default_factory=list)


def repair(cat: Catalog, problems: Iterable[Problem]) -> Repair:
    """Queue a copy from a good replica over every missing or wrong replica.

    The replica is marked pending (it is not counted as a copy any more) and
    a ``replicate`` item rewrites it at its key; the daemon or ``omnifs
    replicate --now`` runs it. A good replica is a synced one of the current
    version on another store that this scrub did not find wrong. A replica
    with no good one left is not touched: it may be the only bytes there
    are. Extra objects are never touched.
    """
    todo = [p for p in problems if p.kind in REPAIRABLE and p.inode is not None]
    bad = {(p.inode, p.provider) for p in todo}
    out = Repair()
    for p in todo:
        ino, version = p.inode, p.version
        with cat.transaction():
            if ino is None or version is None or not still_current(cat, p):
                out.skipped += 1
                continue
            sources = [r for r in cat.replicas.of(ino) if r.provider != p.provider
                       and r.state == "synced" and r.version == version
                       and (ino, r.provider) not in bad]
            if not sources:
                out.unrepairable.append(p)
                continue
            queue_replicate(cat, ino, p.provider, p.key, version)
            out.queued += 1
    return out


# -- what status shows ------------------------------------------------------------------------

def record(cat: Catalog, report: StoreReport, by: str) -> None:
    """Keep the store's last scrub in the catalog (``omnifs status`` shows it)."""
    cat.set_meta(META_PREFIX + report.provider, json.dumps(report.summary() | {"by": by}))


def last_scrubs(cat: Catalog) -> dict[str, dict]:
    """The last scrub of each store, by provider name."""
    out = {}
    for key, value in cat.meta_items(META_PREFIX).items():
        try:
            out[key[len(META_PREFIX):]] = json.loads(value)
        except ValueError:
            continue
    return out


def _line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text
