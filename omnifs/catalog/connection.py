"""The catalog's connection, shared by the catalog's parts: one SQLite file in WAL mode,
or one PostgreSQL database (:mod:`.backend` holds what differs between the two).

:class:`Catalog` owns the connection, the transactions and the lock
helpers the mount needs, and catalog-wide facts (``meta``). Everything else
is in its parts, each on this one connection: ``cat.ns``
(:class:`~omnifs.catalog.namespace.Namespace`), ``cat.replicas``
(:class:`~omnifs.catalog.replicas.Replicas`), ``cat.work``
(:class:`~omnifs.catalog.workqueue.WorkQueue`) and ``cat.health``
(:class:`~omnifs.catalog.health.HealthLog`). The connection itself
(``Catalog.db``) is this package's: code outside it calls the parts' methods
and sees no SQL (tests/unit/test_catalog_sql.py holds it to that), and
:data:`CatalogError` is what a failing catalog raises.

Durability: ``synchronous=NORMAL`` in WAL mode means a committed transaction
survives a crash of any process (kill -9); only a power loss can drop the
last commits. Every public method that changes something commits before it
returns unless it runs inside :meth:`Catalog.transaction`.

A PostgreSQL catalog (``Catalog("postgresql://...")``) commits through the
server's write-ahead log; its transactions hold one advisory lock, the same
one-writer rule (see :mod:`.backend`).

Threads: a ``Catalog`` object belongs to one thread (the mount's trio
thread); other processes open their own.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omnifs.providers.errors import InvalidInput, OmnifsError

from . import backend
from .access import AccessStats
from .changes import Changes
from .cost import CostRecords
from .health import HealthLog
from .leases import Leases
from .migrations import Migrations
from .namespace import Namespace
from .replicas import Replicas
from .schema import ROOT_INODE, migrate
from .usage import StoreUsage
from .workqueue import WorkQueue

#: how long a statement waits for another connection's write lock before it fails
BUSY_TIMEOUT_MS = 30_000

#: what a catalog operation that fails in the database raises (locked, full, down, damaged)
CatalogError = backend.CatalogError

#: meta key of :meth:`Catalog.catalog_id`
CATALOG_ID_KEY = "catalog_id"

#: meta keys of :meth:`Catalog.draining`: this prefix and the provider's name
DRAINING_PREFIX = "draining:"


class NoCatalog(OmnifsError):
    """A read-only command found no catalog: it says how to get one instead of making it."""

    def __init__(self, path: str | Path):
        super().__init__(f"no catalog yet at {backend.describe(path)}: `omnifs mount MOUNTPOINT` "
                         "creates it, or `omnifs import` builds it from what the stores hold")
        self.path = path


class Catalog:
    """One connection to the catalog and the parts on it; see the module docstring."""

    def __init__(self, target: str | os.PathLike, *, create: bool = True):
        """``target``: a SQLite file or a ``postgresql://`` URL (``Config.catalog_target()``).

        ``create=False``: a missing catalog raises :class:`NoCatalog` (read-only commands).
        """
        #: what opens this catalog again (``Catalog(cat.target)``): a path or a URL
        self.target: str | Path = str(target) if backend.is_postgres(target) else Path(target)
        self.db: backend.Connection
        if isinstance(self.target, str):
            self.db = self._open_pg(self.target, create)
        else:
            self.db = self._open_sqlite(self.target, create)
        self.schema_version = migrate(self.db)
        self._depth = 0
        self.changes = Changes(self.db, self.transaction)
        self.leases = Leases(self.db, self.transaction)
        self.ns = Namespace(self.db, self.transaction, self.changes)
        self.replicas = Replicas(self.db, self.transaction)
        self.work = WorkQueue(self.db, self.transaction)
        self.health = HealthLog(self.db, self.transaction)
        self.migrations = Migrations(self.db, self.transaction)
        self.access = AccessStats(self.db, self.transaction)
        self.usage = StoreUsage(self.db, self.transaction)
        self.cost = CostRecords(self.db, self.transaction)
        if self.ns.get(ROOT_INODE) is None:
            with self.transaction():
                if self.ns.get(ROOT_INODE) is None:
                    self.ns.create_root()
                    backend.resync_ids(self.db)
                self.catalog_id()

    @staticmethod
    def _open_sqlite(path: Path, create: bool) -> backend.Connection:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise NoCatalog(path)
        try:
            db = backend.connect(path, create=create)
        except sqlite3.Error as e:
            if not create and not path.exists():
                raise NoCatalog(path) from None
            raise InvalidInput(f"catalog {path}: cannot open: {e}") from None
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return db

    @staticmethod
    def _open_pg(url: str, create: bool) -> backend.Connection:
        try:
            db = backend.connect(url, create=create)
        except backend.CatalogError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidInput(f"catalog {backend.redact(url)}: cannot connect: "
                               f"{backend.redact(first)}") from None
        if not create and "schema_version" not in backend.table_names(db):
            db.close()
            raise NoCatalog(url)
        return db

    @property
    def path(self) -> Path:
        """The SQLite file; commands that work on the file itself (snapshots, dump,
        backups) refuse a PostgreSQL catalog here with one line."""
        if isinstance(self.target, str):
            raise InvalidInput(f"this needs a SQLite catalog; [catalog] url is "
                               f"{backend.redact(self.target)}")
        return self.target

    @property
    def is_postgres(self) -> bool:
        return isinstance(self.target, str)

    @contextmanager
    def held(self, name: str) -> Iterator[bool]:
        """Hold ``name`` for this process while the block runs; yields False (holding
        nothing) when another process, on any host sharing the catalog, holds it.

        Released when the process dies, so kill -9 leaves nothing to clean up:
        SQLite, a ``flock`` on a file beside the catalog; PostgreSQL, a session
        advisory lock on a connection of its own.
        """
        if isinstance(self.target, str):
            with backend.pg_session_lock(self.target, name) as got:
                yield got
            return
        fd = os.open(self.target.parent / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def close(self) -> None:
        self.db.close()

    def change_count(self) -> int:
        """A number that moves with every change made through this connection, and with
        every change by another process that this process's change follower applied
        (``cat.changes.seen``, mountfs/coherence.py).

        Cheap enough for every FUSE read: the mount keeps a copy of an inode
        until this number moves.
        """
        return self.db.total_changes + self.changes.seen

    # -- transactions ------------------------------------------------------
    def write_lock_free(self) -> bool:
        """Whether a write could start this instant; never waits (the mount's event loop asks).

        False while another connection (the daemon, ``omnifs import``, another
        command, another host's mount) holds the write lock -- SQLite's, or the
        PostgreSQL catalog's advisory lock: :meth:`wait_write_lock` then waits
        for it in a worker thread.
        """
        if isinstance(self.db, backend.PgConnection):
            return self.db.write_lock_free()
        assert isinstance(self.db, sqlite3.Connection)
        if self.db.in_transaction:
            return True
        self.db.execute("PRAGMA busy_timeout=0")
        try:
            return _take_write_lock(self.db)
        finally:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def wait_write_lock(self, timeout: float) -> bool:
        """Block until no other connection holds the write lock, at most ``timeout`` seconds.

        For a worker thread: it waits on a connection of its own, so the
        catalog's connection stays free for the thread that owns it.
        """
        if isinstance(self.target, str):
            return backend.wait_pg_write_lock(self.target, timeout)
        conn = sqlite3.connect(self.target, timeout=timeout, isolation_level=None)
        try:
            return _take_write_lock(conn)
        finally:
            conn.close()

    @contextmanager
    def transaction(self, exclusive: bool = True) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; nested uses join the outer transaction.

        ``exclusive=False`` (the work queue's claim): on PostgreSQL the
        transaction relies on row locks instead of the catalog's write lock.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.begin(exclusive)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.rollback()
            raise
        self._depth = 0
        try:
            self.db.commit()
        except BaseException:
            if self.db.in_transaction:  # e.g. a full disk: leave no transaction open
                self.db.rollback()
            raise

    # -- meta --------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def delete_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def meta_items(self, prefix: str) -> dict[str, str]:
        """Every meta row whose key starts with ``prefix``."""
        return dict(self.db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                    (len(prefix), prefix)).fetchall())

    # -- providers being swapped out (omnifs migrate provider) --------------
    def draining(self) -> dict[str, str]:
        """Providers no new replica may be placed on (name -> the swap's record).

        Every process places replicas (the mount, the daemon, the CLI), so the
        flag lives here; reads may still use the provider's replicas.
        """
        return {k[len(DRAINING_PREFIX):]: v
                for k, v in self.meta_items(DRAINING_PREFIX).items()}

    def set_draining(self, provider: str, record: str) -> None:
        self.set_meta(DRAINING_PREFIX + provider, record)

    def clear_draining(self, provider: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key = ?", (DRAINING_PREFIX + provider,))

    def catalog_id(self) -> str:
        """This catalog's identity, made once and kept by snapshots, dump and load.

        Objects carry it with their inode (``omnifs_origin``), so an import
        that restored a snapshot of this catalog can tell its own files'
        objects from others'.
        """
        value = self.get_meta(CATALOG_ID_KEY)
        if value is None:
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            (CATALOG_ID_KEY, uuid.uuid4().hex[:16]))
            value = self.get_meta(CATALOG_ID_KEY)
        assert value is not None
        return value

    def is_empty(self) -> bool:
        """Nothing but the root, never imported: a snapshot may be restored into it."""
        return (self.get_meta("imported") is None and self.ns.count_inodes() == 1
                and self.replicas.is_empty())


def _take_write_lock(conn: sqlite3.Connection) -> bool:
    """Take and at once release the write lock on ``conn``; False when another holds it
    (after ``conn``'s busy timeout)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as e:
        if _busy(e):
            return False
        raise


def _busy(err: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock ("database is locked")."""
    return getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(err)
