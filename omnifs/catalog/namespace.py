"""The namespace: inodes, directory entries and hard links, attributes, symlinks, xattrs.

What the mount answers every metadata request from, and what the importer,
the reconciler and ``omnifs check`` walk. Names are ``str`` (``os.fsdecode``
of the kernel's bytes, so any byte string round-trips). A method that
changes something commits before it returns unless it runs inside
:meth:`omnifs.catalog.Catalog.transaction`.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from omnifs.providers.errors import Conflict, InvalidInput, NotFound

from .backend import Connection, IntegrityError
from .changes import Changes
from .schema import ROOT_INODE

#: st_mode type bits -> inodes.kind
KIND_OF_MODE = {
    stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk",
}

_INODE_COLS = ("id, parent, name, kind, mode, uid, gid, rdev, size, atime_ns, mtime_ns, "
               "ctime_ns, target, sha256, version, nlink, staged, birth_ns")
#: the same columns of ``inodes`` aliased ``i`` in a join
_INODE_COLS_I = ", ".join("i." + c.strip() for c in _INODE_COLS.split(","))
#: deeper than any path can be (PATH_MAX): a walk up that goes further found a cycle
_MAX_DEPTH = 4096
#: readdir offsets of hard-link entries start here (primary names use inode ids)
LINK_OFFSET = 1 << 48


def now_ns() -> int:
    return time.time_ns()


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
    #: when the entry was created (ns); nothing changes it after (WORM retention counts from it)
    birth_ns: int

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


class Namespace:
    """The tree part of the catalog, on the catalog's connection (``cat.ns``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]], changes: Changes):
        self._db = db
        self._transaction = transaction
        #: every change below is also written to the change log, in its transaction
        self._log = changes

    def create_root(self) -> None:
        """The root directory of a new catalog (owned by the process that creates it)."""
        t = now_ns()
        self._db.execute(
            f"INSERT INTO inodes ({_INODE_COLS}) VALUES "
            "(?, NULL, '', 'dir', ?, ?, ?, 0, 0, ?, ?, ?, NULL, NULL, 0, 2, 0, ?)",
            (ROOT_INODE, stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), t, t, t, t))

    def change_mark(self) -> tuple:
        """A cheap value that moves whenever the namespace changes (creates, removals,
        renames, attributes, xattrs, content): the daemon's cue for a snapshot.

        Every such change sets some inode's ctime to now or adds or removes a
        row; replica states and the work queue are left out on purpose.
        """
        return self._db.execute(
            "SELECT (SELECT count(*) FROM inodes), (SELECT max(ctime_ns) FROM inodes), "
            f"{self._db.dialect.inode_sequence}, "
            "(SELECT count(*) FROM links), (SELECT count(*) FROM xattrs)").fetchone()

    # -- the tree ----------------------------------------------------------
    def get(self, ino: int) -> Inode | None:
        row = self._db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE id = ?", (ino,)).fetchone()
        return Inode(*row) if row else None

    def get_locked(self, ino: int) -> Inode | None:
        """:meth:`get`, and the row stays as read until the transaction ends (a share lock on
        PostgreSQL; SQLite's transactions hold the whole file)."""
        row = self._db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE id = ?"
                               f"{self._db.dialect.for_share}", (ino,)).fetchone()
        return Inode(*row) if row else None

    def lookup(self, parent: int, name: str) -> Inode | None:
        """The inode named ``name`` in ``parent`` (a primary name or a hard link).

        The Inode's ``parent``/``name`` are always its primary name.
        """
        found = self._named(parent, name)
        return found[1] if found else None

    def _named(self, parent: int, name: str) -> tuple[int | None, Inode] | None:
        """The inode ``name`` in ``parent`` names and, when the name is a hard link, its
        ``links`` row (None: the primary name); None when nothing has the name. One
        statement (every FUSE lookup of a missing name asks), both tables at once."""
        row = self._db.execute(
            f"SELECT NULL, {_INODE_COLS} FROM inodes WHERE parent = ? AND name = ? UNION ALL "
            f"SELECT l.id, {_INODE_COLS_I} FROM links l JOIN inodes i ON i.id = l.inode "
            "WHERE l.parent = ? AND l.name = ? LIMIT 1", (parent, name, parent, name)).fetchone()
        return (row[0], Inode(*row[1:])) if row else None

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
        rows = self._db.execute(
            f"SELECT l.id, l.name, {', '.join('i.' + c.strip() for c in _INODE_COLS.split(','))} "
            "FROM links l JOIN inodes i ON i.id = l.inode WHERE l.parent = ? AND l.id > ? "
            "ORDER BY l.id LIMIT ?", (parent, after - LINK_OFFSET, limit - len(out))).fetchall()
        out.extend((LINK_OFFSET + r[0], r[1], Inode(*r[2:])) for r in rows)
        return out

    def link_names(self, ino: int) -> list[tuple[int, str]]:
        """(parent, name) of an inode's extra names (hard links), oldest first."""
        return self._db.execute("SELECT parent, name FROM links WHERE inode = ? ORDER BY id",
                                (ino,)).fetchall()

    def _name_taken(self, parent: int, name: str) -> bool:
        return self._db.execute(
            "SELECT 1 FROM inodes WHERE parent = ? AND name = ? UNION ALL "
            "SELECT 1 FROM links WHERE parent = ? AND name = ? LIMIT 1",
            (parent, name, parent, name)).fetchone() is not None

    def add_link(self, ino: int, parent: int, name: str) -> Inode:
        """A further name for a non-directory (link(2)); Conflict if the name exists."""
        with self._transaction():
            inode = self.get(ino)
            if inode is None or inode.parent is None:
                raise NotFound("no such file in the catalog", key=name)
            if inode.kind == "dir":
                raise InvalidInput("directories cannot have hard links")
            if self._name_taken(parent, name):
                raise Conflict("file exists", key=name)
            self._db.execute("INSERT INTO links (parent, name, inode) VALUES (?, ?, ?)",
                             (parent, name, ino))
            self._log.entry(ino, parent, name)
            self._db.execute("UPDATE inodes SET nlink = nlink + 1, ctime_ns = ? WHERE id = ?",
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
        with self._transaction():
            t = now_ns()
            found = self._named(parent, name)
            if found is None:
                return None
            link, inode = found
            if link is not None:
                self._db.execute("DELETE FROM links WHERE id = ?", (link,))
                after = self._db.execute("UPDATE inodes SET nlink = nlink - 1, ctime_ns = ? "
                                         f"WHERE id = ? RETURNING {_INODE_COLS}",
                                         (t, inode.id)).fetchone()
                self._log.entry(inode.id, parent, name)
                return Inode(*after), False
            # directories have no hard links (add_link): nothing to look for
            heirs = [] if inode.is_dir else self._db.execute(
                "SELECT id, parent, name FROM links WHERE inode = ? ORDER BY id",
                (inode.id,)).fetchall()
            if not heirs:
                return self._detach(inode, []), False
            heir = heirs[0]
            self._db.execute("DELETE FROM links WHERE id = ?", (heir[0],))
            after = self._db.execute("UPDATE inodes SET parent = ?, name = ?, nlink = nlink - 1, "
                                     f"ctime_ns = ? WHERE id = ? RETURNING {_INODE_COLS}",
                                     (heir[1], heir[2], t, inode.id)).fetchone()
            self._log.entry(inode.id, parent, name)
            return Inode(*after), True

    def rename_name(self, old_parent: int, old_name: str, new_parent: int,
                    new_name: str) -> tuple[Inode, bool]:
        """Move one name (the new one must be free); returns the inode and whether
        it was the primary name (then the objects' keys are to follow)."""
        with self._transaction():
            found = self._named(old_parent, old_name)
            if found is None:
                raise NotFound("no such file in the catalog", key=old_name)
            link, inode = found
            if link is None:
                return self._move(inode, new_parent, new_name), True
            self._db.execute("UPDATE links SET parent = ?, name = ? WHERE id = ?",
                             (new_parent, new_name, link))
            after = self._db.execute(f"UPDATE inodes SET ctime_ns = ? WHERE id = ? "
                                     f"RETURNING {_INODE_COLS}", (now_ns(), inode.id)).fetchone()
            self._log.entry(inode.id, old_parent, old_name)
            self._log.entry(inode.id, new_parent, new_name)
            return Inode(*after), False

    def exchange_names(self, pa: int, na: str, pb: int, nb: str) -> tuple[bool, bool]:
        """RENAME_EXCHANGE of two names; returns, per name, whether it was a primary name."""
        with self._transaction():
            la = self._db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
                                  (pa, na)).fetchone()
            lb = self._db.execute("SELECT id, inode FROM links WHERE parent = ? AND name = ?",
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
                moved = self._db.execute("UPDATE links SET parent = ?, name = ? WHERE parent = ? "
                                         "AND name = ? RETURNING inode", (np_, nn, p, n)).fetchone()
                if moved is None:
                    moved = self._db.execute(
                        "UPDATE inodes SET parent = ?, name = ? WHERE parent = ? AND name = ? "
                        "RETURNING id, kind", (np_, nn, p, n)).fetchone()
                    if moved[1] == "dir" and p != np_:
                        self._db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (p,))
                        self._db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (np_,))
                self._db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (t, moved[0]))
                if nn != tmp:
                    self._log.entry(moved[0], np_, nn)
            return la is None, lb is None

    def children(self, parent: int, after_id: int = 0, limit: int = 1000) -> list[Inode]:
        """Entries of ``parent`` in id order: ids are stable readdir offsets."""
        rows = self._db.execute(
            f"SELECT {_INODE_COLS} FROM inodes WHERE parent = ? AND id > ? ORDER BY id LIMIT ?",
            (parent, after_id, limit)).fetchall()
        return [Inode(*r) for r in rows]

    def has_children(self, ino: int) -> bool:
        return self._db.execute("SELECT 1 FROM inodes WHERE parent = ? UNION ALL "
                                "SELECT 1 FROM links WHERE parent = ? LIMIT 1",
                                (ino, ino)).fetchone() is not None

    def count_inodes(self) -> int:
        return self._db.execute("SELECT count(*) FROM inodes").fetchone()[0]

    def staged_count(self) -> int:
        """Files whose newest bytes are only in a mount's staging area (not yet on a store)."""
        return self._db.execute("SELECT count(*) FROM inodes WHERE staged = 1 AND kind = 'file' "
                                "AND parent IS NOT NULL").fetchone()[0]

    def staged_ids(self) -> set[int]:
        """Inodes marked staged, orphans included (a mount's recovery compares its staging)."""
        return {r[0] for r in self._db.execute("SELECT id FROM inodes WHERE staged = 1")}

    def count_files(self) -> int:
        """Regular files that have a name (orphans left out)."""
        return self._db.execute("SELECT count(*) FROM inodes WHERE kind = 'file' AND "
                                "parent IS NOT NULL").fetchone()[0]

    def file_ids(self) -> list[int]:
        """Every regular file that has a name, in inode order."""
        return [r[0] for r in self._db.execute(
            "SELECT id FROM inodes WHERE kind = 'file' AND parent IS NOT NULL ORDER BY id")]

    def get_many(self, inos: list[int]) -> dict[int, Inode]:
        """:meth:`get` for many inodes, 500 per query (a batch walk on PostgreSQL would
        otherwise wait one round trip per inode): those that exist."""
        out: dict[int, Inode] = {}
        for i in range(0, len(inos), 500):
            part = inos[i:i + 500]
            for row in self._db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE id IN "
                                        f"({', '.join('?' * len(part))})", part):
                out[row[0]] = Inode(*row)
        return out

    def create(self, parent: int, name: str, mode: int, uid: int, gid: int, *,
               target: str | None = None, rdev: int = 0, size: int = 0,
               mtime_ns: int | None = None, sha256: str | None = None,
               version: int = 0, birth_ns: int | None = None) -> Inode:
        """A new entry; Conflict if the name exists. ``birth_ns``: its creation time when it
        is older than now (an import), never changed after."""
        kind = KIND_OF_MODE.get(stat.S_IFMT(mode))
        if kind is None:
            raise InvalidInput(f"unsupported file type in mode {mode:o}")
        t = now_ns()
        m = t if mtime_ns is None else mtime_ns
        try:
            with self._transaction():
                # a hard link's name is not in inodes' unique key: the insert checks links
                row = self._db.execute(
                    "INSERT INTO inodes (parent, name, kind, mode, uid, gid, rdev, size, atime_ns, "
                    "mtime_ns, ctime_ns, target, sha256, version, nlink, staged, birth_ns) SELECT "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM links WHERE parent = ? AND name = ?) "
                    f"RETURNING {_INODE_COLS}",
                    (parent, name, kind, mode, uid, gid, rdev, size, m, m, t, target, sha256,
                     version, 2 if kind == "dir" else 1,
                     t if birth_ns is None else birth_ns, parent, name)).fetchone()
                if row is None:
                    raise Conflict("file exists", key=name)
                if kind == "dir":
                    self._db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (parent,))
                self._log.entry(row[0], parent, name)
        except IntegrityError:
            raise Conflict("file exists", key=name) from None
        return Inode(*row)

    _UPDATABLE = frozenset(("mode", "uid", "gid", "size", "atime_ns", "mtime_ns", "ctime_ns",
                            "sha256", "version", "nlink", "staged", "target"))

    def update(self, ino: int, **fields) -> None:
        if not fields:
            return
        bad = set(fields) - self._UPDATABLE
        if bad:
            raise ValueError(f"not updatable: {bad}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._transaction():
            self._db.execute(f"UPDATE inodes SET {cols} WHERE id = ?", (*fields.values(), ino))
            if fields.keys() - {"staged"}:  # the staged flag is nothing a mount shows
                self._log.record(ino, data="version" in fields or "size" in fields)

    def touch_dir(self, ino: int, t: int | None = None) -> None:
        """A directory's entries changed: mtime and ctime move."""
        t = now_ns() if t is None else t
        with self._transaction():
            self._db.execute("UPDATE inodes SET mtime_ns = ?, ctime_ns = ? WHERE id = ?",
                             (t, t, ino))
            self._log.record(ino)

    def detach(self, ino: int) -> None:
        """Remove every name of ``ino``; the inode lives on as an orphan (nlink 0)."""
        inode = self.get(ino)
        if inode is None:
            return
        with self._transaction():
            self._detach(inode, self.link_names(ino))

    def _detach(self, inode: Inode, links: list[tuple[int, str]]) -> Inode:
        """:meth:`detach` of ``inode`` (as read in this transaction), whose extra names are
        ``links``; the inode afterwards."""
        for parent, name in [(inode.parent, inode.name), *links]:
            self._log.entry(inode.id, parent, name)
        if links:
            self._db.execute("DELETE FROM links WHERE inode = ?", (inode.id,))
        if inode.kind == "dir" and inode.parent is not None:
            self._db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?",
                             (inode.parent,))
        row = self._db.execute("UPDATE inodes SET parent = NULL, name = NULL, nlink = 0, "
                               f"ctime_ns = ? WHERE id = ? RETURNING {_INODE_COLS}",
                               (now_ns(), inode.id)).fetchone()
        return Inode(*row)

    def delete(self, ino: int) -> None:
        """Forget an inode entirely (its replicas, history and xattrs go with it)."""
        with self._transaction():
            self._db.execute("DELETE FROM inodes WHERE id = ?", (ino,))
            self._log.record(ino)

    def orphans(self) -> list[Inode]:
        rows = self._db.execute(f"SELECT {_INODE_COLS} FROM inodes WHERE parent IS NULL "
                                "AND id != ?", (ROOT_INODE,)).fetchall()
        return [Inode(*r) for r in rows]

    def move_entry(self, ino: int, new_parent: int, new_name: str) -> None:
        """Re-link ``ino`` under ``new_parent/new_name`` (the target name must be free)."""
        inode = self.get(ino)
        assert inode is not None
        with self._transaction():
            self._move(inode, new_parent, new_name)

    def _move(self, inode: Inode, new_parent: int, new_name: str) -> Inode:
        """:meth:`move_entry` of ``inode`` (as read in this transaction); the inode after."""
        if inode.kind == "dir" and inode.parent != new_parent:
            self._db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?",
                             (inode.parent,))
            self._db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?",
                             (new_parent,))
        row = self._db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ? "
                               f"RETURNING {_INODE_COLS}",
                               (new_parent, new_name, now_ns(), inode.id)).fetchone()
        self._log.entry(inode.id, inode.parent, inode.name)
        self._log.entry(inode.id, new_parent, new_name)
        return Inode(*row)

    def exchange(self, a: int, b: int) -> None:
        """Swap two entries' places (RENAME_EXCHANGE)."""
        ia, ib = self.get(a), self.get(b)
        assert ia is not None and ib is not None
        with self._transaction():
            t = now_ns()
            self._db.execute("UPDATE inodes SET parent = NULL, name = NULL WHERE id = ?", (a,))
            self._db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ?",
                             (ia.parent, ia.name, t, b))
            self._db.execute("UPDATE inodes SET parent = ?, name = ?, ctime_ns = ? WHERE id = ?",
                             (ib.parent, ib.name, t, a))
            self._log.entry(b, ia.parent, ia.name)
            self._log.entry(a, ib.parent, ib.name)
            if ia.parent != ib.parent:
                for ino, old, new in ((ia, ia.parent, ib.parent), (ib, ib.parent, ia.parent)):
                    if ino.kind == "dir":
                        self._db.execute("UPDATE inodes SET nlink = nlink - 1 WHERE id = ?", (old,))
                        self._db.execute("UPDATE inodes SET nlink = nlink + 1 WHERE id = ?", (new,))

    def is_ancestor(self, maybe_ancestor: int, ino: int) -> bool:
        """True when ``maybe_ancestor`` is ``ino`` or one of its parents."""
        cur: int | None = ino
        while cur is not None:
            if cur == maybe_ancestor:
                return True
            if cur == ROOT_INODE:
                return False
            row = self._db.execute("SELECT parent FROM inodes WHERE id = ?", (cur,)).fetchone()
            cur = row[0] if row else None
        return False

    def path_of(self, ino: int) -> str | None:
        """'a/b.txt' for a linked inode, '' for the root, None for orphans.

        One statement (a recursive walk up to the root), not one per level."""
        rows = self._db.execute(
            "WITH RECURSIVE up(id, parent, name, depth) AS ("
            "SELECT id, parent, name, 0 FROM inodes WHERE id = ? UNION ALL "
            "SELECT i.id, i.parent, i.name, up.depth + 1 FROM inodes i JOIN up ON i.id = up.parent "
            "WHERE up.id <> ? AND up.depth < ?) SELECT id, name FROM up ORDER BY depth",
            (ino, ROOT_INODE, _MAX_DEPTH)).fetchall()
        # an orphan on the way (no parent) or a cycle: the walk ends short of the root
        if not rows or rows[-1][0] != ROOT_INODE:
            return None
        return "/".join(r[1] for r in reversed(rows[:-1]))

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
            rows = self._db.execute("SELECT id, name, kind FROM inodes WHERE parent = ?",
                                    (d,)).fetchall()
            for cid, name, kind in rows:
                cpath = f"{dpath}/{name}" if dpath else name
                if kind == "file":
                    yield cid, cpath
                elif kind == "dir":
                    stack.append((cid, cpath))

    # -- xattrs --------------------------------------------------------------
    def get_xattr(self, ino: int, name: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM xattrs WHERE inode = ? AND name = ?",
                               (ino, name)).fetchone()
        return bytes(row[0]) if row else None

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO xattrs (inode, name, value) VALUES (?, ?, ?) "
                             "ON CONFLICT(inode, name) DO UPDATE SET value = excluded.value",
                             (ino, name, value))
            self._log.record(ino)

    def list_xattrs(self, ino: int) -> list[bytes]:
        return [bytes(r[0]) for r in
                self._db.execute("SELECT name FROM xattrs WHERE inode = ? ORDER BY name", (ino,))]

    def remove_xattr(self, ino: int, name: bytes) -> bool:
        with self._transaction():
            gone = self._db.execute("DELETE FROM xattrs WHERE inode = ? AND name = ?",
                                    (ino, name)).rowcount > 0
            if gone:
                self._log.record(ino)
        return gone

