"""Replicas and versions: where every file's bytes are, and which contents it had.

One replica row per (file, provider): the key the bytes are stored under,
the version they hold and their state. The mount writes them when it
publishes, the daemon's workers when they copy, the scrub when it verifies.
A method that changes something commits before it returns unless it runs
inside :meth:`omnifs.catalog.Catalog.transaction`.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .backend import Connection

_REPLICA_COLS = "inode, provider, key, version, state, etag, tier, verified_at"
#: inodes per query of :meth:`Replicas.of_many`
_MANY = 500


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


class Replicas:
    """The replica and version part of the catalog, on the catalog's connection
    (``cat.replicas``)."""

    def __init__(self, db: Connection,
                 transaction: Callable[[], AbstractContextManager[None]]):
        self._db = db
        self._transaction = transaction

    def of(self, ino: int) -> list[Replica]:
        rows = self._db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE inode = ?",
                                (ino,)).fetchall()
        return [Replica(*r) for r in rows]

    def of_many(self, inos: Collection[int]) -> dict[int, list[Replica]]:
        """:meth:`of` for many files in one query each :data:`_MANY`: the inodes that have
        replicas, with them."""
        out: dict[int, list[Replica]] = {}
        ids = list(inos)
        for i in range(0, len(ids), _MANY):
            part = ids[i:i + _MANY]
            for r in self._db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE inode IN "
                                      f"({', '.join('?' * len(part))})", part):
                out.setdefault(r[0], []).append(Replica(*r))
        return out

    def get(self, ino: int, provider: str) -> Replica | None:
        row = self._db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE inode = ? "
                               "AND provider = ?", (ino, provider)).fetchone()
        return Replica(*row) if row else None

    def set(self, ino: int, provider: str, key: str, version: int, state: str,
            etag: str | None = None, verified_at: float | None = None) -> None:
        self._db.execute(
            f"INSERT INTO replicas ({_REPLICA_COLS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?) "
            "ON CONFLICT(inode, provider) DO UPDATE SET key = excluded.key, "
            "version = excluded.version, state = excluded.state, etag = excluded.etag, "
            "verified_at = coalesce(excluded.verified_at, replicas.verified_at), "
            # a pending copy is being written anew: in the store's default tier
            "tier = CASE WHEN excluded.state = 'pending' THEN NULL ELSE replicas.tier END",
            (ino, provider, key, version, state, etag, verified_at))

    def set_tier(self, ino: int, provider: str, tier: str | None) -> None:
        """The copy's storage tier changed (None: the store's default)."""
        self._db.execute("UPDATE replicas SET tier = ? WHERE inode = ? AND provider = ?",
                         (tier, ino, provider))

    def set_state(self, ino: int, provider: str, state: str) -> None:
        self._db.execute("UPDATE replicas SET state = ? WHERE inode = ? AND provider = ?",
                         (state, ino, provider))

    def mark_others_stale(self, ino: int, version: int) -> None:
        """Replicas older than ``version`` no longer hold the current content."""
        self._db.execute("UPDATE replicas SET state = 'stale' WHERE inode = ? AND version < ? "
                         "AND state != 'pending'", (ino, version))

    def drop(self, ino: int, provider: str) -> None:
        self._db.execute("DELETE FROM replicas WHERE inode = ? AND provider = ?", (ino, provider))

    def holders(self, provider: str, key: str) -> list[Replica]:
        """Replica rows (of any inode) that point at ``provider``/``key``."""
        rows = self._db.execute(f"SELECT {_REPLICA_COLS} FROM replicas WHERE provider = ? "
                                "AND key = ?", (provider, key)).fetchall()
        return [Replica(*r) for r in rows]

    def synced(self, provider: str) -> list[tuple[int, str, int, int, str | None, int,
                                                 float | None]]:
        """What ``provider`` must hold: its replicas of the current version of uploaded files.

        Rows (inode, key, version, size, sha256, mtime_ns, verified_at). Replicas in
        motion (pending, stale), files still staged and unlinked-but-open files are
        left out: a scrub has no claim about them to check.
        """
        return self._db.execute(
            "SELECT r.inode, r.key, r.version, i.size, i.sha256, i.mtime_ns, r.verified_at "
            "FROM replicas r JOIN inodes i ON i.id = r.inode WHERE r.provider = ? AND "
            "r.state = 'synced' AND r.version = i.version AND i.staged = 0 AND "
            "i.kind = 'file' AND i.parent IS NOT NULL", (provider,)).fetchall()

    def keys(self, provider: str) -> builtins.set[str]:
        """Every key a replica row of ``provider`` points at, in any state."""
        return {r[0] for r in self._db.execute("SELECT key FROM replicas WHERE provider = ?",
                                               (provider,))}

    def mark_verified(self, ino: int, provider: str, version: int, when: float) -> None:
        """The replica's bytes were read back and hashed to the catalog's SHA-256 at ``when``."""
        self._db.execute("UPDATE replicas SET verified_at = ? WHERE inode = ? AND provider = ? "
                         "AND version = ? AND state = 'synced'", (when, ino, provider, version))

    def under_replicated(self, copies: int) -> int:
        """Files with fewer than ``copies`` synced replicas of their current version.

        One join grouped by file, not a count per file (measured at 100,000 files
        beside it: 2-3x faster on PostgreSQL, 1.1-1.3x on SQLite). It still reads
        every file; the daemon paces it by its cost (bench/catalog_scan.py).
        """
        return self._db.execute(
            "SELECT count(*) FROM (SELECT i.id FROM inodes i LEFT JOIN replicas r "
            "ON r.inode = i.id AND r.state = 'synced' AND r.version = i.version "
            "WHERE i.kind = 'file' AND i.parent IS NOT NULL "
            "GROUP BY i.id HAVING count(r.inode) < ?) under", (copies,)).fetchone()[0]

    def stored_bytes(self) -> dict[str, int]:
        """Bytes of the synced replicas each provider holds (what its storage is billed on)."""
        return dict(self._db.execute(
            "SELECT r.provider, COALESCE(SUM(i.size), 0) FROM replicas r JOIN inodes i "
            "ON i.id = r.inode WHERE r.state = 'synced' GROUP BY r.provider").fetchall())

    def is_empty(self) -> bool:
        """No replica row at all: no file has bytes on a store yet."""
        return self._db.execute("SELECT 1 FROM replicas LIMIT 1").fetchone() is None

    def all_keys(self) -> list[tuple[str, str]]:
        """(provider, key) of every replica row."""
        return self._db.execute("SELECT provider, key FROM replicas").fetchall()

    def inodes_in_state(self, provider: str, state: str) -> list[int]:
        """Inodes whose replica on ``provider`` is in ``state``."""
        return [r[0] for r in self._db.execute(
            "SELECT inode FROM replicas WHERE provider = ? AND state = ?", (provider, state))]

    def inodes_on(self, provider: str) -> list[int]:
        """Inodes with a replica row of ``provider``, in any state."""
        return [r[0] for r in self._db.execute("SELECT inode FROM replicas WHERE provider = ?",
                                               (provider,))]

    @staticmethod
    def _current(ino_expr: str, lost: Collection[str]) -> str:
        """SQL: synced copies of the current version on providers that are not ``lost``."""
        marks = ",".join("?" * len(lost)) or "''"
        return (f"(SELECT count(*) FROM replicas s WHERE s.inode = {ino_expr} AND "
                f"s.state = 'synced' AND s.version = i.version AND s.provider NOT IN ({marks}))")

    def short_of(self, copies: int, lost: Collection[str], limit: int) -> list[int]:
        """Uploaded files with at least one but fewer than ``copies`` current synced copies
        off the ``lost`` providers (files being written, staged, are left out)."""
        return [r[0] for r in self._db.execute(
            "SELECT i.id FROM inodes i WHERE i.kind = 'file' AND i.parent IS NOT NULL AND "
            f"i.staged = 0 AND i.version > 0 AND {self._current('i.id', lost)} "
            "BETWEEN 1 AND ? LIMIT ?", (*lost, copies - 1, limit))]

    def surplus_stale(self, copies: int, lost: Collection[str],
                      limit: int) -> list[tuple[int, str, str]]:
        """(inode, provider, key) of stale replicas of files that have ``copies`` current
        synced copies off the ``lost`` providers without them (staged files left out)."""
        return self._db.execute(
            "SELECT r.inode, r.provider, r.key FROM replicas r JOIN inodes i ON i.id = r.inode "
            f"WHERE r.state = 'stale' AND i.staged = 0 AND {self._current('r.inode', lost)} "
            ">= ? LIMIT ?", (*lost, copies, limit)).fetchall()

    # -- history -------------------------------------------------------------
    def add_version(self, ino: int, version: int, sha256: str | None, size: int,
                    mtime_ns: int) -> None:
        self._db.execute("INSERT INTO versions (inode, version, sha256, size, mtime_ns, time) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(inode, version) DO UPDATE SET "
                         "sha256 = excluded.sha256, size = excluded.size, "
                         "mtime_ns = excluded.mtime_ns, time = excluded.time",
                         (ino, version, sha256, size, mtime_ns, time.time()))

    def oldest_change_since(self, since: float) -> float | None:
        """Epoch seconds of the oldest change after ``since``: a content version made, or an
        entry's ctime (created, renamed, chmod...); None when nothing changed since
        (disaster recovery's recovery point, omnifs/dr/state.py)."""
        since_ns = int(since * 1e9)
        v = self._db.execute("SELECT min(time) FROM versions WHERE time > ?",
                             (since,)).fetchone()[0]
        c = self._db.execute("SELECT min(ctime_ns) FROM inodes WHERE ctime_ns > ?",
                             (since_ns,)).fetchone()[0]
        found = [t for t in (v, c / 1e9 if c is not None else None) if t is not None]
        return min(found) if found else None

    def oldest_short_version(self, copies: int) -> float | None:
        """Epoch seconds the oldest current version on fewer than ``copies`` synced replicas
        was made (files being written, staged, included); None when every file has them."""
        return self._db.execute(
            "SELECT min(v.time) FROM inodes i JOIN versions v ON v.inode = i.id AND "
            "v.version = i.version WHERE i.kind = 'file' AND i.parent IS NOT NULL AND "
            "(SELECT count(*) FROM replicas r WHERE r.inode = i.id AND r.state = 'synced' "
            "AND r.version = i.version) < ?", (copies,)).fetchone()[0]

    def versions(self, ino: int) -> list[tuple[int, str | None, int, int, float]]:
        return self._db.execute("SELECT version, sha256, size, mtime_ns, time FROM versions "
                                "WHERE inode = ? ORDER BY version", (ino,)).fetchall()
