"""The catalog's two database engines: SQLite (the embedded default) and PostgreSQL.

Every difference between them lives here, so the parts (namespace.py,
replicas.py, workqueue.py, ...) keep one SQL text for both:

- the parts write SQLite's ``?`` placeholders; :func:`translate` turns them
  into psycopg's ``%s`` and the schema's types into PostgreSQL's (``INTEGER``
  is 64-bit ``BIGINT``, ``REAL`` is ``DOUBLE PRECISION``, ``BLOB`` is
  ``BYTEA``, ``AUTOINCREMENT`` keys are identity columns, ``rowid`` is ``ctid``);
- what SQL cannot say the same way is a :class:`Dialect` attribute or a
  function here: the work queue's ``FOR UPDATE SKIP LOCKED``, JSON fields,
  the inode id sequence, a table's columns, resetting id sequences after rows
  were copied in with their ids.

Transactions: SQLite's ``BEGIN IMMEDIATE`` holds the one write lock of the
file. On PostgreSQL a transaction (:meth:`PgConnection.begin`) takes the
catalog's one transaction-scoped advisory lock, :data:`WRITE_LOCK`, which is
the same promise: one writing transaction at a time, readers never wait.
The daemon's per-item bookkeeping does without it (``exclusive=False``): the
work queue's claim locks its rows one by one with ``SKIP LOCKED``, and a
replica's state is recorded under a share lock of its inode's row
(:meth:`~.namespace.Namespace.get_locked`), so workers on many hosts do not
wait for each other, while a change of that file by a mount still waits.

Outages: a PostgreSQL connection that broke (server restarted or down) is
opened again on the next statement; until that succeeds every statement
raises :class:`psycopg.OperationalError`, a :data:`CatalogError`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import pq
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

#: URL prefixes of a PostgreSQL catalog (``[catalog] url``)
PG_PREFIXES = ("postgresql://", "postgres://")

#: the advisory lock key every writing PostgreSQL transaction holds ("omni" in ASCII)
WRITE_LOCK = 0x6F6D6E69

#: seconds a PostgreSQL connection attempt may take before the statement fails
CONNECT_TIMEOUT = 5

#: what a catalog operation that fails in the database raises (locked, full, down, damaged)
CatalogError: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)

#: the catalog's server cannot be reached or dropped the connection (an outage): the
#: statement may be tried again once it answers (the connection is opened again then)
CatalogUnavailable = psycopg.OperationalError

#: a statement that broke a uniqueness or reference rule, on either engine
IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between the engines."""

    name: str
    #: appended to the work queue's claim subquery
    skip_locked: str
    #: the last inode id handed out (never reused), as a scalar subquery
    inode_sequence: str
    #: appended to a read whose rows a non-exclusive transaction relies on (row locks)
    for_share: str = ""
    #: the aggregate that joins a group's strings with a separator: ``NAME(expr, sep)``
    join_strings: str = "group_concat"

    def json_text(self, column: str, field: str) -> str:
        """A text field of a JSON object stored as TEXT."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{field}')"
        return f"({column}::json ->> '{field}')"

    def json_int(self, column: str, field: str) -> str:
        """An integer field of a JSON object stored as TEXT."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{field}')"
        return f"({column}::json ->> '{field}')::bigint"


SQLITE = Dialect("sqlite", "", "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence "
                               "WHERE name = 'inodes')")
POSTGRES = Dialect("postgresql", " FOR UPDATE SKIP LOCKED",
                   "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                   "FROM inodes_id_seq)", " FOR SHARE", "string_agg")


class Connection(Protocol):
    """What the parts use of a connection: sqlite3's API, which :class:`PgConnection` copies."""

    dialect: Dialect

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    @property
    def total_changes(self) -> int: ...

    def begin(self, exclusive: bool = True) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def is_postgres(target: object) -> bool:
    """Whether ``target`` (a catalog path or URL) names a PostgreSQL catalog."""
    return isinstance(target, str) and target.startswith(PG_PREFIXES)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``: what logs and messages show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def describe(target: str | Path) -> str:
    """The catalog as messages name it: a path, or a URL without its password."""
    return redact(str(target)) if is_postgres(target) else str(target)


class SqliteConnection(sqlite3.Connection):
    """sqlite3's connection plus the two things the catalog asks of every engine."""

    dialect = SQLITE

    def begin(self, exclusive: bool = True) -> None:
        """SQLite has one write lock: every transaction takes it at once."""
        self.execute("BEGIN IMMEDIATE")


class _NumericLoader(Loader):
    """``sum()`` of BIGINT is NUMERIC in PostgreSQL: ints stay ints, as in SQLite."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class PgConnection:
    """One PostgreSQL connection behind sqlite3's API (autocommit, explicit BEGIN)."""

    dialect = POSTGRES

    def __init__(self, url: str):
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._changes = 0
        #: the connection :meth:`wait_notify` LISTENs on (a reopened one must LISTEN again)
        self._listening: psycopg.Connection | None = None
        #: the server process of the connection (a NOTIFY carries its sender's)
        self.backend_pid = 0
        self._live()

    def _live(self) -> psycopg.Connection:
        """The connection, opened again when it broke (an outage, a server restart)."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
                self._conn = None
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            conn.adapters.register_loader("numeric", _NumericLoader)
            self._conn = conn
            self.backend_pid = conn.info.backend_pid
        return conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor:
        query, writes = translate(sql)
        args = tuple(parameters)
        cur = self._again(lambda conn: conn.execute(query, args), writes)
        if writes and cur.rowcount > 0:
            self._changes += cur.rowcount
        return cur

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor:
        query, writes = translate(sql)
        rows = [tuple(p) for p in parameters]

        def run(conn: psycopg.Connection) -> psycopg.Cursor:
            cur = conn.cursor()
            cur.executemany(query, rows)
            return cur

        cur = self._again(run, writes)
        if writes and cur.rowcount > 0:
            self._changes += cur.rowcount
        return cur

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """``COPY table (columns) FROM STDIN`` of ``rows``, in the open transaction; how many
        (:func:`insert_rows`)."""
        n = 0
        with self._live().cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        self._changes += n
        return n

    def _again(self, run: Callable[[psycopg.Connection], psycopg.Cursor],
               writes: bool) -> psycopg.Cursor:
        """Run once more on a new connection when the old one was found dead and the
        statement surely did not run: the server said it ended the session before reading
        it (a restart), or it only reads, outside a transaction."""
        conn = self._live()
        idle = not self.in_transaction
        try:
            return run(conn)
        except psycopg.OperationalError as e:
            unsent = isinstance(e, psycopg.errors.AdminShutdown) or not writes
            if not (idle and conn.broken and unsent):
                raise
        return run(self._live())

    def begin(self, exclusive: bool = True) -> None:
        """BEGIN, holding :data:`WRITE_LOCK` unless ``exclusive=False`` (row locks only)."""
        conn = self._live()
        # one round trip: the lock is held inside the transaction it starts
        conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})" if exclusive
                     else "BEGIN")

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return False
        return conn.info.transaction_status != pq.TransactionStatus.IDLE

    @property
    def total_changes(self) -> int:
        return self._changes

    def commit(self) -> None:
        if self.in_transaction:
            self._live().execute("COMMIT")

    def rollback(self) -> None:
        """Undo the open transaction; a broken connection has none left to undo."""
        if self.in_transaction:
            assert self._conn is not None
            self._conn.execute("ROLLBACK")

    def listen(self, channel: str) -> bool:
        """LISTEN on ``channel`` unless this connection already does; whether it had to (a
        new or reopened connection, which missed what was sent before)."""
        conn = self._live()
        if self._listening is conn:
            return False
        conn.execute(f"LISTEN {channel}")
        self._listening = conn
        return True

    def wait_notify(self, channel: str, timeout: float, ignore: Callable[[int], bool] =
                    lambda pid: False) -> bool:
        """Block until a NOTIFY on ``channel`` arrives, at most ``timeout`` seconds; whether
        one did. Those sent by a server process ``ignore`` names (the sender's pid) are
        consumed and not counted. LISTENs first (:meth:`listen`)."""
        self.listen(channel)
        conn = self._live()
        return any(not ignore(n.pid) for n in conn.notifies(timeout=max(timeout, 0.0)))

    def write_lock_free(self) -> bool:
        """Whether no other transaction holds :data:`WRITE_LOCK` (never waits)."""
        if self.in_transaction:
            return True
        row = self._live().execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITE_LOCK,))
        return bool(row.fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#: per catalog URL: the connections :func:`wait_pg_write_lock` waits on, kept between waits
_waiters: dict[str, ConnectionPool] = {}
_waiters_lock = threading.Lock()


def _waiter_pool(url: str) -> ConnectionPool:
    with _waiters_lock:
        pool = _waiters.get(url)
        if pool is None:
            pool = _waiters[url] = ConnectionPool(
                url, min_size=0, max_size=2, open=True, name="omnifs-catalog-wait",
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT})
            atexit.register(pool.close)
        return pool


def wait_pg_write_lock(url: str, timeout: float) -> bool:
    """Block until no transaction holds :data:`WRITE_LOCK`, at most ``timeout`` seconds,
    on a connection other than the catalog's (for a worker thread; from a small pool, as
    the mount waits often)."""
    with _waiter_pool(url).connection(timeout=CONNECT_TIMEOUT) as conn:
        conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except psycopg.errors.LockNotAvailable:
            return False
    return True


_DDL_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
               "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
              (re.compile(r"\bINTEGER\b"), "BIGINT"),
              (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
              (re.compile(r"\bBLOB\b"), "BYTEA"))
_ROWID = re.compile(r"\browid\b")


@contextlib.contextmanager
def pg_session_lock(url: str, name: str) -> Iterator[bool]:
    """A session advisory lock named ``name`` on a connection of its own, held while the
    block runs (whether it was free: yielded); the server drops it when the connection
    closes, also when the process dies."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        yield bool(row and row[0])


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, bool]:
    """The PostgreSQL text of a statement the parts wrote for SQLite, and whether it writes.

    Placeholders ``?`` outside string literals become ``%s`` (and a literal
    ``%`` becomes ``%%``); schema statements get PostgreSQL's types.
    """
    head = sql.lstrip()[:12].upper()
    if head.startswith(("CREATE", "ALTER")):
        for pattern, replacement in _DDL_TYPES:
            sql = pattern.sub(replacement, sql)
    sql = _ROWID.sub("ctid", sql)
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out), head.startswith(("INSERT", "UPDATE", "DELETE"))


def connect(target: str | Path, *, create: bool) -> Connection:
    """A connection to the catalog at ``target``; see :class:`~.connection.Catalog`."""
    if is_postgres(target):
        return PgConnection(str(target))
    from urllib.parse import quote
    path = Path(target)
    # mode=rw: SQLite itself never creates the file when asked not to
    name = str(path) if create else f"file:{quote(str(path))}?mode=rw"
    db = sqlite3.connect(name, isolation_level=None, uri=not create, check_same_thread=False,
                         timeout=30.0, factory=SqliteConnection)
    return db


def insert_rows(db: Connection, table: str, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` of ``columns`` into ``table`` as they are (ids included): SQLite's
    ``executemany``, PostgreSQL's ``COPY`` (one stream: 8x faster than ``executemany``'s
    statement per row, measured restoring a 2,000-file snapshot)."""
    if isinstance(db, PgConnection):
        db.copy_rows(table, columns, rows)
    else:
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                       f"VALUES ({', '.join('?' * len(columns))})", rows)


def _dialect(db: Connection) -> Dialect:
    """A plain ``sqlite3.Connection`` (tests, old catalogs being migrated) is SQLite's."""
    return getattr(db, "dialect", SQLITE)


def table_columns(db: Connection, table: str) -> list[str]:
    """The columns of ``table`` in their order."""
    if _dialect(db) is SQLITE:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    return [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]


def table_names(db: Connection) -> list[str]:
    """The catalog's tables."""
    if _dialect(db) is SQLITE:
        return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return [r[0] for r in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")]


#: tables whose key column is handed out by the engine (AUTOINCREMENT / identity)
ID_TABLES = (("inodes", "id"), ("links", "id"), ("work", "id"), ("cost_moves", "id"),
             ("changes", "seq"))


def issued_ids(db: Connection) -> dict[str, int]:
    """The largest id each of :data:`ID_TABLES` has handed out, rows deleted since included
    (what :func:`resync_ids` keeps a copy from handing out again)."""
    out = {}
    for table, key in ID_TABLES:
        if _dialect(db) is SQLITE:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        else:
            row = db.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(?, ?)"
                             "::regclass)", (table, key)).fetchone()
        out[table] = int(row[0] or 0) if row else 0
    return out


def resync_ids(db: Connection, issued: dict[str, int] | None = None) -> None:
    """After rows were inserted with their ids: the next id is past the largest one, and
    past ``issued`` (:func:`issued_ids` of the catalog they came from)."""
    for table, key in ID_TABLES:
        floor = (issued or {}).get(table, 0)
        if _dialect(db) is SQLITE:
            db.execute("INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 WHERE NOT EXISTS "
                       "(SELECT 1 FROM sqlite_sequence WHERE name = ?)", (table, table))
            db.execute(f"UPDATE sqlite_sequence SET seq = max(seq, ?, (SELECT coalesce("
                       f"max({key}), 0) FROM {table})) WHERE name = ?", (floor, table))
        else:
            db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), "
                       f"greatest(?, (SELECT coalesce(max({key}), 0) FROM {table})) + 1, false)",
                       (floor,))


@contextlib.contextmanager
def read_snapshot(db: Connection) -> Iterator[None]:
    """The block's reads see one consistent state of the whole catalog, and no writer waits
    for them: SQLite's read transaction (WAL), PostgreSQL's ``REPEATABLE READ``."""
    db.execute("BEGIN" if _dialect(db) is SQLITE
               else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield
    finally:
        db.rollback()
