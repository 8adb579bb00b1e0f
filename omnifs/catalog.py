"""The catalog: the namespace, where every file's bytes are, and the work queue.

One SQLite file in WAL mode. The mount answers every metadata operation from
it, the CLI and the daemon read and write it from their own processes. The
schema lives in :mod:`omnifs.catalog_schema` (documented column by column).

Durability: ``synchronous=NORMAL`` in WAL mode means a committed transaction
survives a crash of any process (kill -9); only a power loss can drop the
last commits. Every public method that changes something commits before it
returns unless it runs inside :meth:`Catalog.transaction`.

Threads: a ``Catalog`` object belongs to one thread (the mount's trio
thread); other processes open their own. Names are ``str`` (``os.fsdecode``
of the kernel's bytes, so any byte string round-trips).

Work queue protocol (for daemon workers in other processes)::

    items = cat.claim("worker-1", kinds=("replicate",), limit=8, lease=300)
    for item in items:
        try:
            do(item.payload)
        except TransientError as e:
            cat.fail(item.id, str(e), retry_in=backoff(item.attempts))
        else:
            cat.complete(item.id)

A claim is atomic across processes (BEGIN IMMEDIATE + UPDATE ... RETURNING);
a claim older than its lease is taken over by the next ``claim`` (the worker
died). Executors must therefore be idempotent.

Provider health (tables of migration 3) is where the mount and the daemon
meet about stores: the daemon records probe samples
(:meth:`Catalog.record_health_samples`) and its verdict per provider
(:meth:`Catalog.set_provider_health`); the mount records its failed requests
(:meth:`Catalog.record_health_sample`, source ``mount``) and reads the
verdicts (:meth:`Catalog.provider_health`) to place writes and rank reads;
:meth:`Catalog.queued_by_provider` is placement's load.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from policy.health import Sample
from providers.errors import Conflict, InvalidInput, NotFound, OmnifsError

from .catalog_schema import ROOT_INODE, migrate

#: how long a statement waits for another connection's write lock before it fails
BUSY_TIMEOUT_MS = 30_000

__all__ = ["KIND_OF_MODE", "ROOT_INODE", "Catalog", "Inode", "ProviderHealth", "Replica",
           "WorkItem"]

#: st_mode type bits -> inodes.kind
KIND_OF_MODE = {
    stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk",
}

_INODE_COLS = ("id, parent, name, kind, mode, uid, gid, rdev, size, atime_ns, mtime_ns, "
               "ctime_ns, target, sha256, version, nlink, staged")
#: readdir offsets of hard-link entries start here (primary names use inode ids)
LINK_OFFSET = 1 << 48
_REPLICA_COLS = "inode, provider, key, version, state, etag, tier, verified_at"


@dataclass(slots=True)
class Inode:
    id: int
    parent: int | None
    name: str | None
    kind: str
    mode: int
    uid: int
    gid: int
    rdev: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    target: str | None
    sha256: str | None
    version: int
    nlink: int
    staged: int

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


@dataclass(slots=True)
class Replica:
    inode: int
    provider: str
    key: str
    version: int
    state: str
    etag: str | None
    tier: str | None
    verified_at: float | None


@dataclass(slots=True)
class WorkItem:
    id: int
    kind: str
    payload: dict
    state: str
    attempts: int
    not_before: float
    claimed_by: str | None
    claimed_at: float | None
    last_error: str | None


@dataclass(slots=True)
class ProviderHealth:
    """One ``provider_health`` row: the daemon's verdict after its last probe round."""

    provider: str
    status: str
    p50: float | None
    p95: float | None
    error_rate: float
    down_since: float | None
    updated_at: float


#: meta key of :meth:`Catalog.catalog_id`
CATALOG_ID_KEY = "catalog_id"

#: health sample sources (``health_samples.source``)
HEALTH_SOURCES = ("probe", "worker", "mount", "daemon")


def now_ns() -> int:
    return time.time_ns()


class NoCatalog(OmnifsError):
    """A read-only command found no catalog: it says how to get one instead of making it."""

    def __init__(self, path: Path):
        super().__init__(f"no catalog yet at {path}: `omnifs mount MOUNTPOINT` creates it, "
                         "or `omnifs import` builds it from what the stores hold")
        self.path = path


class Catalog:
    """One connection to the catalog file; see the module docstring."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        """``create=False``: a missing catalog raises :class:`NoCatalog` (read-only commands)."""
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise NoCatalog(self.path)
        # mode=rw: SQLite itself never creates the file when asked not to
        target = str(self.path) if create else f"file:{quote(str(self.path))}?mode=rw"
        try:
            self.db = sqlite3.connect(target, isolation_level=None, uri=not create,
                                      check_same_thread=False, timeout=30.0)
        except sqlite3.Error as e:
            if not create and not self.path.exists():
                raise NoCatalog(self.path) from None
            raise InvalidInput(f"catalog {self.path}: cannot open: {e}") from None
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.schema_version = migrate(self.db)
        self._depth = 0
        if self.get(ROOT_INODE) is None:
            t = now_ns()
            with self.transaction():
                self.db.execute(
                    f"INSERT INTO inodes ({_INODE_COLS}) VALUES "
                    "(?, NULL, '', 'dir', ?, ?, ?, 0, 0, ?, ?, ?, NULL, NULL, 0, 2, 0)",
                    (ROOT_INODE, stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), t, t, t))
                self.catalog_id()

    def close(self) -> None:
        self.db.close()

    # -- transactions ------------------------------------------------------
    def write_lock_free(self) -> bool:
        """Whether a write could start this instant; never waits (the mount's event loop asks).

        False while another connection (the daemon, ``omnifs import``, another
        command) holds SQLite's write lock: :meth:`wait_write_lock` then waits
        for it in a worker thread.
        """
        if self.db.in_transaction:
            return True
        self.db.execute("PRAGMA busy_timeout=0")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as e:
            if _busy(e):
                return False
            raise
        finally:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def wait_write_lock(self, timeout: float) -> bool:
        """Block until no other connection holds the write lock, at most ``timeout`` seconds.

        For a worker thread: it waits on a connection of its own, so the
        catalog's connection stays free for the thread that owns it.
        """
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as e:
            if _busy(e):
                return False
            raise
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # e.g. a full disk: leave no transaction open
                self.db.execute("ROLLBACK")
            raise

    # -- meta --------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def meta_items(self, prefix: str) -> dict[str, str]:
        """Every meta row whose key starts with ``prefix``."""
        return dict(self.db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                    (len(prefix), prefix)).fetchall())

    def catalog_id(self) -> str:
        """This catalog's identity, made once and kept by snapshots, dump and load.

        Objects carry it with their inode (``omnifs_origin``), so an import
        that restored a snapshot of this catalog can tell its own files'
        objects from others'.
        """
        value = self.get_meta(CATALOG_ID_KEY)
        if value is None:
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                            (CATALOG_ID_KEY, uuid.uuid4().hex[:16]))
            value = self.get_meta(CATALOG_ID_KEY)
        assert value is not None
        return value

    def is_empty(self) -> bool:
        """Nothing but the root, never imported: a snapshot may be restored into it."""
        return (self.get_meta("imported") is None and self.count_inodes() == 1
                and self.db.execute("SELECT 1 FROM replicas LIMIT 1").fetchone() is None)

    def change_mark(self) -> tuple:
        """A cheap value that moves whenever the namespace changes (creates, removals,
        renames, attributes, xattrs, content): the daemon's cue for a snapshot.

        Every such change sets some inode's ctime to now or adds or removes a
        row; replica states and the work queue are left out on purpose.
        """
        return self.db.execute(
            "SELECT (SELECT count(*) FROM inodes), (SELECT max(ctime_ns) FROM inodes), "
            "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'inodes'), "
            "(SELECT count(*) FROM links), (SELECT count(*) FROM xattrs)").fetchone()

    # -- the tree ----------------------------------------------------------
    def get(self, ino: int) -> Inode | None:
        row = self.db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE id = ?", (ino,)).fetchone()
        return Inode(*row) if row else None

    def lookup(self, parent: int, name: str) -> Inode | None:
        """The inode named ``name`` in ``parent`` (a primary name or a hard link).

        The Inode's ``parent``/``name`` are always its primary name.
        """
        row = self.db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE parent = ? AND name = ?",
                              (parent, name)).fetchone()
        if row is None:
            link = self.db.execute("SELECT inode FROM links WHERE parent = ? AND name = ?",
                                   (parent, name)).fetchone()
            return self.get(link[0]) if link else None
        return Inode(*row)

    def entries(self, parent: int, after: int = 0,
                limit: int = 1000) -> list[tuple[int, str, Inode]]:
        """(offset, name, inode) of ``parent``'s entries, hard links included.

        Offsets are stable: primary names by inode id, then extra links at
        :data:`LINK_OFFSET` + their row id.
        """
        out: list[tuple[int, str, Inode]] = []
        if after < LINK_OFFSET:
            for inode in self.children(parent, after_id=after, limit=limit):
                out.append((inode.id, inode.name or "", inode))
            if len(out) >= limit:
                return out
            after = LINK_OFFSET
        rows = self.db.execute(
            f"SELECT l.id, l.name, {', '.join('i.' + c.strip() for c in _INODE_COLS.split(','))} "
            "FROM links l JOIN inodes i ON i.id = l.inode WHERE l.parent = ? AND l.id > ? "
            "ORDER BY l.id LIMIT ?", (parent, after - LINK_OFFSET, limit - len(out))).fetchall()
        out.extend((LINK_OFFSET + r[0], r[1], Inode(*r[2:])) for r in rows)
        return out

    def link_names(self, ino: int) -> list[tuple[int, str]]:
        """(parent, name) of an inode's extra names (hard links), oldest first."""
        return self.db.execute("SELECT parent, name FROM links WHERE inode = ? ORDER BY id",
                               (ino,)).fetchall()

    def _name_taken(self, parent: int, name: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM inodes WHERE parent = ? AND name = ? UNION ALL "
            "SELECT 1 FROM links WHERE parent = ? AND name = ? LIMIT 1",
            (parent, name, parent, name)).fetchone() is not None

    def add_link(self, ino: int, parent: int, name: str) -> Inode:
        """A further name for a non-directory (link(2)); Conflict if the name exists."""
        with self.transaction():
            inode = self.get(ino)
            if inode is None or inode.parent is None:
                raise NotFound("no such file in the catalog", key=name)
            if inode.kind == "dir":
                raise InvalidInput("directories cannot have hard links")
            if self._name_taken(parent, name):
                raise Conflict("file exists", key=name)
            self.db.execute("INSERT INTO links (parent, name, inode) VALUES (?, ?, ?)",
                            (parent, name, ino))
            self.db.execute("UPDATE inodes SET nlink = nlink + 1, ctime_ns = ? WHERE id = ?",
                            (now_ns(), ino))
        inode = self.get(ino)
        assert inode is not None
        return inode

    def remove_name(self, parent: int, name: str) -> tuple[Inode, bool] | None:
        """Remove one name (unlink/rmdir/rename's victim); None if there is none.

        Returns the inode as it is afterwards (``nlink == 0``: it is an orphan
        now) and whether its primary name changed (a link was promoted: the
        caller queues moving its objects to the new path).
        """
        with self.transaction():
            t = now_ns()
            link = self.db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
                                   (parent, name)).fetchone()
            if link is not None:
                self.db.execute("DELETE FROM links WHERE id = ?", (link[0],))
                self.db.execute("UPDATE inodes SET nlink = nlink - 1, ctime_ns = ? WHERE id = ?",
                                (t, link[1]))
                inode = self.get(link[1])
                assert inode is not None
                return inode, False
            inode = self.lookup(parent, name)
            if inode is None:
                return None
            heir = self.db.execute("SELECT id, parent, name FROM links WHERE inode = ? "
                                   "ORDER BY id LIMIT 1", (inode.id,)).fetchone()
            if heir is None:
                self.detach(inode.id)
                promoted = False
            else:
                self.db.execute("DELETE FROM links WHERE id = ?", (heir[0],))
                self.db.execute("UPDATE inodes SET parent = ?, name = ?, nlink = nlink - 1, "
                                "ctime_ns = ? WHERE id = ?", (heir[1], heir[2], t, inode.id))
                promoted = True
            after = self.get(inode.id)
            assert after is not None
            return after, promoted

    def rename_name(self, old_parent: int, old_name: str, new_parent: int,
                    new_name: str) -> tuple[Inode, bool]:
        """Move one name (the new one must be free); returns the inode and whether
        it was the primary name (then the objects' keys are to follow)."""
        with self.transaction():
            link = self.db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
                                   (old_parent, old_name)).fetchone()
            if link is None:
                inode = self.lookup(old_parent, old_name)
                if inode is None:
                    raise NotFound("no such file in the catalog", key=old_name)
                self.move_entry(inode.id, new_parent, new_name)
                primary = True
            else:
                self.db.execute("UPDATE links SET parent = ?, name = ? WHERE id = ?",
                                (new_parent, new_name, link[0]))
                self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (now_ns(), link[1]))
                primary = False
            inode = self.get(link[1] if link else inode.id)
            assert inode is not None
            return inode, primary

    def exchange_names(self, pa: int, na: str, pb: int, nb: str) -> tuple[bool, bool]:
        """RENAME_EXCHANGE of two names; returns, per name, whether it was a primary name."""
        with self.transaction():
            la = self.db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
                                 (pa, na)).fetchone()
            lb = self.db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
                                 (pb, nb)).fetchone()
            if la is None and lb is None:
                a, b = self.lookup(pa, na), self.lookup(pb, nb)
                assert a is not None and b is not None
                self.exchange(a.id, b.id)
                return True, True
            t = now_ns()
            # park one name so the unique (parent, name) constraints hold mid-swap
            tmp = "/exchange"  # no real name holds a slash
            for (p, n), (np_, nn) in (((pa, na), (pb, tmp)), ((pb, nb), (pa, na)),
                                      ((pb, tmp), (pb, nb))):
                moved = self.db.execute("UPDATE links SET parent = ?, name = ? WHERE parent = ? "
                                        "AND name = ? RETURNING inode", (np_, nn, p, n)).fetchone()
                if moved is None:
                    moved = self.db.execute(
                        "UPDATE inodes SET parent = ?, name = ? WHERE parent = ? AND name = ? "
                        "RETURNING id, kind", (np_, nn, p, n)).fetchone()
                    if moved[1] == "dir" and p != np_:
                        self.db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (p,))
                        self.db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (np_,))
                self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (t, moved[0]))
            return la is None, lb is None

    def children(self, parent: int, after_id: int = 0, limit: int = 1000) -> list[Inode]:
        """Entries of ``parent`` in id order: ids are stable readdir offsets."""
        rows = self.db.execute(
            f"SELECT {_INODE_COLS} FROM inodes WHERE parent = ? AND id > ? ORDER BY id LIMIT ?",
            (parent, after_id, limit)).fetchall()
        return [Inode(*r) for r in rows]

    def has_children(self, ino: int) -> bool:
        return self.db.execute("SELECT 1 FROM inodes WHERE parent = ? UNION ALL "
                               "SELECT 1 FROM links WHERE parent = ? LIMIT 1",
                               (ino, ino)).fetchone() is not None

    def count_inodes(self) -> int:
        return self.db.execute("SELECT count(*) FROM inodes").fetchone()[0]

    def staged_count(self) -> int:
        """Files whose newest bytes are only in a mount's staging area (not yet on a store)."""
        return self.db.execute("SELECT count(*) FROM inodes WHERE staged = 1 AND kind = 'file' "
                               "AND parent IS NOT NULL").fetchone()[0]

    def create(self, parent: int, name: str, mode: int, uid: int, gid: int, *,
               target: str | None = None, rdev: int = 0, size: int = 0,
               mtime_ns: int | None = None, sha256: str | None = None,
               version: int = 0) -> Inode:
        """A new entry; Conflict if the name exists."""
        kind = KIND_OF_MODE.get(stat.S_IFMT(mode))
        if kind is None:
            raise InvalidInput(f"unsupported file type in mode {mode:o}")
        t = now_ns()
        m = t if mtime_ns is None else mtime_ns
        try:
            with self.transaction():
                if self.db.execute("SELECT 1 FROM links WHERE parent = ? AND name = ?",
                                   (parent, name)).fetchone():
                    raise sqlite3.IntegrityError("name taken by a hard link")
                cur = self.db.execute(
                    "INSERT INTO inodes (parent, name, kind, mode, uid, gid, rdev, size, atime_ns, "
                    "mtime_ns, ctime_ns, target, sha256, version, nlink, staged) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    (parent, name, kind, mode, uid, gid, rdev, size, m, m, t, target, sha256,
                     version, 2 if kind == "dir" else 1))
                if kind == "dir":
                    self.db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (parent,))
        except sqlite3.IntegrityError:
            raise Conflict("file exists", key=name) from None
        inode = self.get(cur.lastrowid)
        assert inode is not None
        return inode

    _UPDATABLE = frozenset(("mode", "uid", "gid", "size", "atime_ns", "mtime_ns", "ctime_ns",
                            "sha256", "version", "nlink", "staged", "target"))

    def update(self, ino: int, **fields) -> None:
        if not fields:
            return
        bad = set(fields) - self._UPDATABLE
        if bad:
            raise ValueError(f"not updatable: {bad}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE inodes SET {cols} WHERE id = ?", (*fields.values(), ino))

    def touch_dir(self, ino: int, t: int | None = None) -> None:
        """A directory's entries changed: mtime and ctime move."""
        t = now_ns() if t is None else t
        self.db.execute("UPDATE inodes SET mtime_ns = ?, ctime_ns = ? WHERE id = ?", (t, t, ino))

    def detach(self, ino: int) -> None:
        """Remove every name of ``ino``; the inode lives on as an orphan (nlink 0)."""
        inode = self.get(ino)
        if inode is None:
            return
        with self.transaction():
            self.db.execute("DELETE FROM links WHERE inode = ?", (ino,))
            if inode.kind == "dir" and inode.parent is not None:
                self.db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (inode.parent,))
            self.db.execute("UPDATE inodes SET parent = NULL, name = NULL, nlink = 0, "
                            "ctime_ns = ? WHERE id = ?", (now_ns(), ino))

    def delete(self, ino: int) -> None:
        """Forget an inode entirely (its replicas, history and xattrs go with it)."""
        self.db.execute("DELETE FROM inodes WHERE id = ?", (ino,))

    def orphans(self) -> list[Inode]:
        rows = self.db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE parent IS NULL "
                               "AND id != ?", (ROOT_INODE,)).fetchall()
        return [Inode(*r) for r in rows]

    def move_entry(self, ino: int, new_parent: int, new_name: str) -> None:
        """Re-link ``ino`` under ``new_parent/new_name`` (the target name must be free)."""
        inode = self.get(ino)
        assert inode is not None
        with self.transaction():
            if inode.kind == "dir" and inode.parent != new_parent:
                self.db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (inode.parent,))
                self.db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (new_parent,))
            self.db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ?",
                            (new_parent, new_name, now_ns(), ino))

    def exchange(self, a: int, b: int) -> None:
        """Swap two entries' places (RENAME_EXCHANGE)."""
        ia, ib = self.get(a), self.get(b)
        assert ia is not None and ib is not None
        with self.transaction():
            t = now_ns()
            self.db.execute("UPDATE inodes SET parent = NULL, name = NULL WHERE id = ?", (a,))
            self.db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ?",
                            (ia.parent, ia.name, t, b))
            self.db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ?",
                            (ib.parent, ib.name, t, a))
            if ia.parent != ib.parent:
                for ino, old, new in ((ia, ia.parent, ib.parent), (ib, ib.parent, ia.parent)):
                    if ino.kind == "dir":
                        self.db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (old,))
                        self.db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (new,))

    def is_ancestor(self, maybe_ancestor: int, ino: int) -> bool:
        """True when ``maybe_ancestor`` is ``ino`` or one of its parents."""
        cur: int | None = ino
        while cur is not None:
            if cur == maybe_ancestor:
                return True
            if cur == ROOT_INODE:
                return False
            row = self.db.execute("SELECT parent FROM inodes WHERE id = ?", (cur,)).fetchone()
            cur = row[0] if row else None
        return False

    def path_of(self, ino: int) -> str | None:
        """'a/b.txt' for a linked inode, '' for the root, None for orphans."""
        parts: list[str] = []
        cur = ino
        while cur != ROOT_INODE:
            row = self.db.execute("SELECT parent, name FROM inodes WHERE id = ?", (cur,)).fetchone()
            if row is None or row[0] is None:
                return None
            parts.append(row[1])
            cur = row[0]
        return "/".join(reversed(parts))

    def resolve(self, path: str) -> Inode:
        """The inode at ``path`` (relative to the namespace root); NotFound otherwise."""
        inode = self.get(ROOT_INODE)
        assert inode is not None
        for part in (p for p in path.strip("/").split("/") if p):
            nxt = self.lookup(inode.id, part)
            if nxt is None:
                raise NotFound("no such file in the catalog", key=path)
            inode = nxt
        return inode

    def ensure_dirs(self, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> int:
        """Create missing directories along ``path``; return the last one's inode."""
        cur = ROOT_INODE
        for part in (p for p in path.strip("/").split("/") if p):
            nxt = self.lookup(cur, part)
            if nxt is None:
                nxt = self.create(cur, part, stat.S_IFDIR | mode, uid, gid)
            elif nxt.kind != "dir":
                raise Conflict("a file is in the way of a directory", key=path)
            cur = nxt.id
        return cur

    def files_under(self, ino: int) -> Iterator[tuple[int, str]]:
        """(inode, path) of every file at or below ``ino``, depth first."""
        base = self.path_of(ino)
        if base is None:
            return
        inode = self.get(ino)
        if inode is not None and inode.kind == "file":
            yield ino, base
            return
        stack = [(ino, base)]
        while stack:
            d, dpath = stack.pop()
            rows = self.db.execute("SELECT id, name, kind FROM inodes WHERE parent = ?",
                                   (d,)).fetchall()
            for cid, name, kind in rows:
                cpath = f"{dpath}/{name}" if dpath else name
                if kind == "file":
                    yield cid, cpath
                elif kind == "dir":
                    stack.append((cid, cpath))

    # -- replicas ------------------------------------------------------------
    def replicas(self, ino: int) -> list[Replica]:
        rows = self.db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE inode = ?",
                               (ino,)).fetchall()
        return [Replica(*r) for r in rows]

    def replica(self, ino: int, provider: str) -> Replica | None:
        row = self.db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE inode = ? "
                              "AND provider = ?", (ino, provider)).fetchone()
        return Replica(*row) if row else None

    def set_replica(self, ino: int, provider: str, key: str, version: int, state: str,
                    etag: str | None = None, verified_at: float | None = None) -> None:
        self.db.execute(
            f"INSERT INTO replicas ({_REPLICA_COLS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?) "
            "ON CONFLICT(inode, provider) DO UPDATE SET key = excluded.key, "
            "version = excluded.version, state = excluded.state, etag = excluded.etag, "
            "verified_at = coalesce(excluded.verified_at, verified_at)",
            (ino, provider, key, version, state, etag, verified_at))

    def set_replica_state(self, ino: int, provider: str, state: str) -> None:
        self.db.execute("UPDATE replicas SET state = ? WHERE inode = ? AND provider = ?",
                        (state, ino, provider))

    def mark_others_stale(self, ino: int, version: int) -> None:
        """Replicas older than ``version`` no longer hold the current content."""
        self.db.execute("UPDATE replicas SET state = 'stale' WHERE inode = ? AND version < ? "
                        "AND state != 'pending'", (ino, version))

    def drop_replica(self, ino: int, provider: str) -> None:
        self.db.execute("DELETE FROM replicas WHERE inode = ? AND provider = ?", (ino, provider))

    def holders(self, provider: str, key: str) -> list[Replica]:
        """Replica rows (of any inode) that point at ``provider``/``key``."""
        rows = self.db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE provider = ? "
                               "AND key = ?", (provider, key)).fetchall()
        return [Replica(*r) for r in rows]

    def synced_replicas(self, provider: str) -> list[tuple[int, str, int, int, str | None, int,
                                                          float | None]]:
        """What ``provider`` must hold: its replicas of the current version of uploaded files.

        Rows (inode, key, version, size, sha256, mtime_ns, verified_at). Replicas in
        motion (pending, stale), files still staged and unlinked-but-open files are
        left out: a scrub has no claim about them to check.
        """
        return self.db.execute(
            "SELECT r.inode, r.key, r.version, i.size, i.sha256, i.mtime_ns, r.verified_at "
            "FROM replicas r JOIN inodes i ON i.id = r.inode WHERE r.provider = ? AND "
            "r.state = 'synced' AND r.version = i.version AND i.staged = 0 AND "
            "i.kind = 'file' AND i.parent IS NOT NULL", (provider,)).fetchall()

    def replica_keys(self, provider: str) -> set[str]:
        """Every key a replica row of ``provider`` points at, in any state."""
        return {r[0] for r in self.db.execute("SELECT key FROM replicas WHERE provider = ?",
                                              (provider,))}

    def mark_verified(self, ino: int, provider: str, version: int, when: float) -> None:
        """The replica's bytes were read back and hashed to the catalog's SHA-256 at ``when``."""
        self.db.execute("UPDATE replicas SET verified_at = ? WHERE inode = ? AND provider = ? "
                        "AND version = ? AND state = 'synced'", (when, ino, provider, version))

    def under_replicated(self, copies: int) -> int:
        return self.db.execute(
            "SELECT count(*) FROM inodes i WHERE i.kind = 'file' AND i.parent IS NOT NULL AND "
            "(SELECT count(*) FROM replicas r WHERE r.inode = i.id AND r.state = 'synced' "
            "AND r.version = i.version) < ?", (copies,)).fetchone()[0]

    # -- history -------------------------------------------------------------
    def add_version(self, ino: int, version: int, sha256: str | None, size: int,
                    mtime_ns: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO versions (inode, version, sha256, size, mtime_ns, "
                        "time) VALUES (?, ?, ?, ?, ?, ?)",
                        (ino, version, sha256, size, mtime_ns, time.time()))

    def versions(self, ino: int) -> list[tuple[int, str | None, int, int, float]]:
        return self.db.execute("SELECT version, sha256, size, mtime_ns, time FROM versions "
                               "WHERE inode = ? ORDER BY version", (ino,)).fetchall()

    # -- xattrs --------------------------------------------------------------
    def get_xattr(self, ino: int, name: bytes) -> bytes | None:
        row = self.db.execute("SELECT value FROM xattrs WHERE inode = ? AND name = ?",
                              (ino, name)).fetchone()
        return bytes(row[0]) if row else None

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        self.db.execute("INSERT INTO xattrs (inode, name, value) VALUES (?, ?, ?) "
                        "ON CONFLICT(inode, name) DO UPDATE SET value = excluded.value",
                        (ino, name, value))

    def list_xattrs(self, ino: int) -> list[bytes]:
        return [bytes(r[0]) for r in
                self.db.execute("SELECT name FROM xattrs WHERE inode = ? ORDER BY name", (ino,))]

    def remove_xattr(self, ino: int, name: bytes) -> bool:
        return self.db.execute("DELETE FROM xattrs WHERE inode = ? AND name = ?",
                               (ino, name)).rowcount > 0

    # -- the work queue --------------------------------------------------------
    def enqueue(self, kind: str, payload: dict, *, dedup: str | None = None,
                not_before: float = 0.0) -> int:
        """Queue work; with ``dedup``, a pending item with that key is updated instead."""
        data = json.dumps(payload, sort_keys=True)
        if dedup is None:
            cur = self.db.execute("INSERT INTO work (kind, payload, not_before, created_at) "
                                  "VALUES (?, ?, ?, ?)", (kind, data, not_before, time.time()))
            return cur.lastrowid
        row = self.db.execute(
            "INSERT INTO work (kind, payload, not_before, dedup, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(dedup) WHERE state = 'pending' DO UPDATE SET payload = excluded.payload, "
            "not_before = excluded.not_before RETURNING id",
            (kind, data, not_before, dedup, time.time())).fetchone()
        return row[0]

    def claim(self, worker: str, *, kinds: Sequence[str] | None = None, limit: int = 1,
              lease: float = 300.0) -> list[WorkItem]:
        """Atomically take up to ``limit`` ready items (oldest first) for ``worker``."""
        t = time.time()
        kind_sql, args = "", []
        if kinds:
            kind_sql = f" AND kind IN ({','.join('?' * len(kinds))})"
            args = list(kinds)
        with self.transaction():
            rows = self.db.execute(
                "UPDATE work SET state = 'claimed', claimed_by = ?, claimed_at = ?, dedup = NULL "
                "WHERE id IN (SELECT id FROM work WHERE ((state = 'pending' AND not_before <= ?) "
                f"OR (state = 'claimed' AND claimed_at < ?)){kind_sql} ORDER BY id LIMIT ?) "
                "RETURNING id, kind, payload, state, attempts, not_before, claimed_by, "
                "claimed_at, last_error",
                (worker, t, t, t - lease, *args, limit)).fetchall()
        items = [WorkItem(r[0], r[1], json.loads(r[2]), *r[3:]) for r in rows]
        items.sort(key=lambda w: w.id)
        return items

    def complete(self, work_id: int) -> None:
        """The work is done: it leaves the queue."""
        self.db.execute("DELETE FROM work WHERE id = ?", (work_id,))

    def fail(self, work_id: int, error: str, *, retry_in: float | None = 30.0,
             max_attempts: int = 10) -> None:
        """Record a failure; retry after ``retry_in`` s, or park it as 'failed'."""
        row = self.db.execute("SELECT attempts FROM work WHERE id = ?", (work_id,)).fetchone()
        if row is None:
            return
        attempts = row[0] + 1
        if retry_in is None or attempts >= max_attempts:
            self.db.execute("UPDATE work SET state = 'failed', attempts = ?, last_error = ?, "
                            "claimed_by = NULL WHERE id = ?", (attempts, error[:500], work_id))
        else:
            self.db.execute("UPDATE work SET state = 'pending', attempts = ?, last_error = ?, "
                            "not_before = ?, claimed_by = NULL, claimed_at = NULL WHERE id = ?",
                            (attempts, error[:500], time.time() + retry_in, work_id))

    def release_claims(self, worker: str) -> None:
        """Give back what ``worker`` held (clean shutdown)."""
        self.db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL "
                        "WHERE state = 'claimed' AND claimed_by = ?", (worker,))

    def release_claims_of(self, work_id: int) -> None:
        """Give back one claimed item untouched (a worker that filtered it out)."""
        self.db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL "
                        "WHERE id = ? AND state = 'claimed'", (work_id,))

    def complete_many(self, work_ids: Iterable[int]) -> None:
        """Several items done at once, in one transaction (a worker settling a batch)."""
        with self.transaction():
            self.db.executemany("DELETE FROM work WHERE id = ?", [(i,) for i in work_ids])

    def defer(self, work_id: int, until: float) -> None:
        """Back to pending until ``until`` without counting an attempt.

        Why not :meth:`fail`: the item is fine, a provider it needs is down;
        its attempts must not run out while the provider is away.
        """
        self.db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL, "
                        "not_before = ? WHERE id = ?", (until, work_id))

    def release_deferred(self, kinds: Sequence[str]) -> int:
        """Pending items of ``kinds`` waiting out a delay become claimable now; how many.

        Called when a provider returns, so its backlog is caught up at once.
        """
        if not kinds:
            return 0
        marks = ",".join("?" * len(kinds))
        return self.db.execute(
            f"UPDATE work SET not_before = 0 WHERE state = 'pending' AND kind IN ({marks})",
            tuple(kinds)).rowcount

    def claim_holders(self, prefix: str) -> list[str]:
        """Distinct workers whose name starts with ``prefix`` holding claims now.

        A restarted daemon looks for the claims of its dead predecessors on
        this host and hands them back with :meth:`release_claims`.
        """
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT claimed_by FROM work WHERE state = 'claimed' "
            "AND claimed_by LIKE ? ESCAPE '\\'", (pattern,))]

    def failed_count(self) -> int:
        """Items parked as failed (out of attempts, or not retryable)."""
        return self.db.execute("SELECT count(*) FROM work WHERE state = 'failed'").fetchone()[0]

    def pending_count(self, kinds: Sequence[str] | None = None) -> int:
        sql = "SELECT count(*) FROM work WHERE state IN ('pending', 'claimed')"
        args: list = []
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args = list(kinds)
        return self.db.execute(sql, args).fetchone()[0]

    def work_items(self, state: str | None = None) -> list[WorkItem]:
        sql = ("SELECT id, kind, payload, state, attempts, not_before, claimed_by, claimed_at, "
               "last_error FROM work")
        args: tuple = ()
        if state:
            sql += " WHERE state = ?"
            args = (state,)
        return [WorkItem(r[0], r[1], json.loads(r[2]), *r[3:])
                for r in self.db.execute(sql + " ORDER BY id", args)]

    def oldest_pending_age(self) -> float | None:
        row = self.db.execute("SELECT min(created_at) FROM work WHERE state IN "
                              "('pending', 'claimed')").fetchone()
        return None if row[0] is None else time.time() - row[0]

    # -- provider health -------------------------------------------------------
    # Written by the daemon (probes, the verdict per provider) and by the mount
    # (its failed requests, an occasional success); read by both and by
    # ``omnifs status``. Every method is one short autocommitted statement
    # unless called inside :meth:`transaction`.
    def record_health_sample(self, provider: str, ok: bool, latency: float, *,
                             error: str | None = None, source: str = "mount",
                             at: float | None = None) -> None:
        """One timed request against ``provider``; ``error`` is one line (kept to 300 chars)."""
        self.record_health_samples(provider, [Sample(time.time() if at is None else at,
                                                     latency, ok)],
                                   source=source, error=error)

    def record_health_samples(self, provider: str, samples: Iterable[Sample], *,
                              source: str = "probe", error: str | None = None) -> None:
        """Several samples at once (a probe round); ``error`` applies to the failed ones."""
        if source not in HEALTH_SOURCES:
            raise InvalidInput(f"health sample source {source!r}: expected one of "
                               f"{', '.join(HEALTH_SOURCES)}")
        line = error.splitlines()[0][:300] if error else None
        self.db.executemany(
            "INSERT INTO health_samples (provider, at, latency, ok, source, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(provider, s.at, s.latency, int(s.ok), source, None if s.ok else line)
             for s in samples])

    def health_samples(self, provider: str, since: float) -> list[Sample]:
        """``provider``'s samples from every source at or after ``since``, oldest first."""
        rows = self.db.execute("SELECT at, latency, ok FROM health_samples WHERE provider = ? "
                               "AND at >= ? ORDER BY at", (provider, since)).fetchall()
        return [Sample(at, latency, bool(ok)) for at, latency, ok in rows]

    def health_errors(self, provider: str, since: float) -> list[tuple[float, str, str | None]]:
        """(at, source, error) of ``provider``'s failed samples since ``since``, newest first."""
        return self.db.execute("SELECT at, source, error FROM health_samples WHERE provider = ? "
                               "AND at >= ? AND ok = 0 ORDER BY at DESC",
                               (provider, since)).fetchall()

    def prune_health_samples(self, before: float) -> None:
        self.db.execute("DELETE FROM health_samples WHERE at < ?", (before,))

    def set_provider_health(self, provider: str, status: str, *, p50: float | None = None,
                            p95: float | None = None, error_rate: float = 0.0,
                            down_since: float | None = None,
                            updated_at: float | None = None) -> None:
        """The daemon's verdict on ``provider`` (one row per provider, replaced)."""
        self.db.execute(
            "INSERT INTO provider_health (provider, status, p50, p95, error_rate, down_since, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET "
            "status = excluded.status, p50 = excluded.p50, p95 = excluded.p95, "
            "error_rate = excluded.error_rate, down_since = excluded.down_since, "
            "updated_at = excluded.updated_at",
            (provider, status, p50, p95, error_rate, down_since,
             time.time() if updated_at is None else updated_at))

    def provider_health(self, max_age: float | None = None, *,
                        now: float | None = None) -> dict[str, ProviderHealth]:
        """The daemon's verdicts by provider; with ``max_age``, only rows updated that recently.

        A row older than a minute means no daemon is running: callers that
        act on a verdict (placement) should pass ``max_age`` so a dead
        daemon's last "down" does not steer writes forever.
        """
        sql = ("SELECT provider, status, p50, p95, error_rate, down_since, updated_at "
               "FROM provider_health")
        args: tuple = ()
        if max_age is not None:
            sql += " WHERE updated_at >= ?"
            args = ((time.time() if now is None else now) - max_age,)
        return {r[0]: ProviderHealth(*r) for r in self.db.execute(sql, args)}

    def forget_provider_health(self, provider: str) -> None:
        self.db.execute("DELETE FROM provider_health WHERE provider = ?", (provider,))

    def add_counter(self, name: str, amount: float) -> None:
        """Grow the total ``name`` by ``amount`` (daemon_counters)."""
        self.db.execute("INSERT INTO daemon_counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (name, amount))

    def counters(self) -> dict[str, float]:
        return dict(self.db.execute("SELECT name, value FROM daemon_counters").fetchall())

    def queued_copies(self, ino: int) -> set[str]:
        """Providers a queued (pending or claimed) replicate item of ``ino`` copies to.

        A replica row left ``pending`` whose item was parked as failed is no
        copy on its way: the repair step must not wait for it.
        """
        return {r[0] for r in self.db.execute(
            "SELECT json_extract(payload, '$.provider') FROM work WHERE kind = 'replicate' "
            "AND state IN ('pending', 'claimed') AND json_extract(payload, '$.inode') = ?",
            (ino,))}

    def queued_by_provider(self) -> dict[str, int]:
        """Queued (pending or claimed) replicate items per target provider: placement's load.

        Why the queue and not bytes: it is what the catalog knows without
        asking a store, and a provider with a long backlog is the one a new
        write should avoid when another is as good.
        """
        rows = self.db.execute(
            "SELECT json_extract(payload, '$.provider'), count(*) FROM work "
            "WHERE state IN ('pending', 'claimed') AND kind = 'replicate' GROUP BY 1").fetchall()
        return {name: n for name, n in rows if name is not None}


def _busy(err: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock ("database is locked")."""
    return getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(err)
