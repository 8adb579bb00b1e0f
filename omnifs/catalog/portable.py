"""The catalog as one portable thing: a consistent copy, a restore, a JSON dump and load.

Part of the catalog API (the SQL stays inside omnifs/catalog/). Used by
catalog snapshots in the stores (omnifs/snapshot.py), by ``omnifs import``
when it restores one, by ``omnifs dump`` / ``omnifs load`` and by the
backups of omnifs/dr/.

The portable form is a SQLite file, whatever the catalog's engine. A
PostgreSQL catalog is copied into one (:mod:`.engine_copy`: from one
``REPEATABLE READ`` state of the database, verified by row counts and a tree
checksum), and a restore or load into PostgreSQL fills a SQLite file first
and copies that into the database in one transaction, verified the same way.
So every check made on the file (its integrity, its schema, the counts a
dump declares) holds for both engines, and a snapshot of either restores
into either.

What travels: every table of the tree and its bookkeeping (inodes, links,
xattrs, versions, replicas, the work queue, meta, and tables later schema
versions add), all columns as they are. What does not: rows that describe
this host's running processes rather than the tree (:data:`VOLATILE_TABLES`,
the daemon's pid in meta); claimed work items travel as pending.

The pending ``delete`` items matter: they name objects whose file is gone;
without them a rebuilt catalog would take those objects for files.

Dump format (JSON, one document, a row per line)::

    {"format": "omnifs-dump", "version": 1, "schema": 3, "created": "...Z",
     "catalog_id": "...", "counts": {"inodes": N, ...}, "sequence": {...},
     "inodes": [{"id": 1, "parent": null, "name": "", ...}, ...],
     "links": [...], "xattrs": [...], ...}

A ``bytes`` value (xattr names and values) is ``{"base64": "..."}``.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from omnifs.providers.errors import IntegrityError, InvalidInput

from ..processes import DAEMON_KEY
from . import engine_copy
from .backend import Connection, SqliteConnection, describe, is_postgres, table_names
from .connection import Catalog
from .schema import MIGRATIONS, ROOT_INODE, fill_birth_times, migrate

FORMAT = "omnifs-dump"
FORMAT_VERSION = 1

#: rows about this host's processes (health probes, counters), not about the tree
VOLATILE_TABLES = ("health_samples", "provider_health", "daemon_counters")
#: never copied: SQLite's own and the schema's version (each side has its own)
_INTERNAL = ("schema_version", "sqlite_sequence", "sqlite_stat1")
#: loaded first (the others refer to it)
_FIRST = "inodes"


def scratch_dir(target: str | Path) -> Path:
    """Where work files holding a copy of the catalog at ``target`` go: beside a SQLite
    catalog (private like it, on a disk meant to hold a catalog); for a PostgreSQL one,
    the system's temporary directory (``$TMPDIR``)."""
    return Path(tempfile.gettempdir()) if is_postgres(target) else Path(target).parent


def _sqlite(catalog: Catalog) -> SqliteConnection:
    """The SQLite connection of ``catalog`` (the callers below hold a SQLite one)."""
    assert isinstance(catalog.db, SqliteConnection)
    return catalog.db


def _open_file(path: str | Path, *, read_only: bool = False) -> SqliteConnection:
    name = f"file:{path}?mode=ro" if read_only else str(path)
    return sqlite3.connect(name, uri=read_only, isolation_level=None,
                           factory=SqliteConnection)


def tree_tables(db: Connection) -> list[str]:
    """The tables a snapshot, dump or load carries, inodes first."""
    keep = [n for n in table_names(db) if n not in _INTERNAL and n not in VOLATILE_TABLES]
    return sorted(keep, key=lambda n: (n != _FIRST, n))


def _scrub(db: Connection) -> None:
    """Drop what belongs to this host's processes, in the caller's transaction."""
    names = table_names(db)
    for table in VOLATILE_TABLES:
        if table in names:
            db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM meta WHERE key = ?", (DAEMON_KEY,))
    db.execute("UPDATE work SET state = 'pending', claimed_by = NULL, claimed_at = NULL "
               "WHERE state = 'claimed'")


def counts(db: Connection) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tree_tables(db)}


# -- snapshots -------------------------------------------------------------------

def copy_catalog(src: str | Path, dst_path: str | Path) -> dict[str, int]:
    """A consistent copy of the live catalog at ``src`` (a SQLite file or a PostgreSQL URL)
    in a new SQLite file; its row counts.

    SQLite: ``VACUUM INTO``, one read transaction of the WAL database (the
    mount and the daemon go on writing meanwhile) writing a compact copy,
    measured 3x faster than an online backup followed by a VACUUM.
    PostgreSQL: :func:`.engine_copy.copy_catalog` from one ``REPEATABLE
    READ`` state, verified. The copy is scrubbed and left in rollback-journal
    mode: one self-contained file.
    """
    if is_postgres(src):
        _from_engine(str(src), Path(dst_path))
    else:
        live = sqlite3.connect(str(src), timeout=30.0, isolation_level=None)
        try:
            live.execute("PRAGMA busy_timeout=30000")
            live.execute("VACUUM INTO ?", (str(dst_path),))
        finally:
            live.close()
    dst = _open_file(dst_path)
    try:
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("BEGIN")
        _scrub(dst)
        dst.execute("COMMIT")
        return counts(dst)
    finally:
        dst.close()


def _from_engine(url: str, dst_path: Path) -> None:
    src = Catalog(url, create=False)
    try:
        dst = Catalog(dst_path)
        try:
            engine_copy.copy_catalog(src, dst, force=True)
        finally:
            dst.close()
    finally:
        src.close()


def check_copy(path: str | Path) -> dict[str, int]:
    """IntegrityError unless ``path`` is a whole catalog this omnifs can open; its counts."""
    try:
        db = _open_file(path, read_only=True)
    except sqlite3.Error as e:
        raise IntegrityError(f"not a catalog: {e}") from None
    try:
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise IntegrityError(f"damaged catalog copy: {verdict}")
            version = db.execute("SELECT version FROM schema_version").fetchone()[0]
            root = db.execute("SELECT kind FROM inodes WHERE id = ?", (ROOT_INODE,)).fetchone()
            found = counts(db)
        except sqlite3.Error as e:
            raise IntegrityError(f"not a catalog: {e}") from None
        if version > len(MIGRATIONS):
            raise IntegrityError(f"catalog schema version {version} is newer than this omnifs "
                                 f"knows ({len(MIGRATIONS)}): upgrade omnifs")
        if root is None or root[0] != "dir":
            raise IntegrityError("catalog copy has no root directory")
        return found
    finally:
        db.close()


def restore(catalog: Catalog, path: str | Path) -> None:
    """Replace ``catalog``'s whole content with the copy at ``path`` (checked before).

    All at once: a reader (another process) sees the old catalog or the
    restored one, never a mix. SQLite: one backup step under the
    destination's write lock; PostgreSQL: one verified transaction
    (:mod:`.engine_copy`) from the copy, first brought to this omnifs's schema.
    """
    if catalog.is_postgres:
        copy = Catalog(path)
        try:
            with copy.transaction():
                _scrub(copy.db)
            engine_copy.copy_catalog(copy, catalog, force=True)
        finally:
            copy.close()
        return
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        src.backup(_sqlite(catalog))
    finally:
        src.close()
    catalog.schema_version = migrate(catalog.db)
    with catalog.transaction():
        _scrub(catalog.db)


# -- dump and load ----------------------------------------------------------------

def dump(catalog: Catalog, out: TextIO) -> dict[str, int]:
    """Write the whole catalog as JSON to ``out``; the row counts it wrote.

    One read transaction: a consistent picture while the mount keeps writing.
    A PostgreSQL catalog is dumped from a copy (:func:`copy_catalog`).
    """
    if catalog.is_postgres:
        with tempfile.TemporaryDirectory(dir=scratch_dir(catalog.target),
                                         prefix=".dump-") as tmp:
            copy_catalog(catalog.target, Path(tmp) / "catalog.db")
            copy = Catalog(Path(tmp) / "catalog.db")
            try:
                return dump(copy, out)
            finally:
                copy.close()
    db = _sqlite(catalog)
    cid = catalog.catalog_id()  # may write: before the read transaction
    db.execute("BEGIN")
    try:
        tables = tree_tables(db)
        found = counts(db)
        header = {
            "format": FORMAT, "version": FORMAT_VERSION, "schema": catalog.schema_version,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "catalog_id": cid,
            "counts": found,
            "sequence": dict(db.execute("SELECT name, seq FROM sqlite_sequence").fetchall()),
        }
        out.write("{\n")
        out.writelines(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)},\n"
                       for key, value in header.items())
        for i, table in enumerate(tables):
            out.write(f"{json.dumps(table)}: [")
            first = True
            for row in _rows(db, table):
                out.write("\n" if first else ",\n")
                out.write(json.dumps(row))
                first = False
            out.write("\n]" + (",\n" if i < len(tables) - 1 else "\n"))
        out.write("}\n")
    finally:
        db.execute("COMMIT")
    return found


def _rows(db: sqlite3.Connection, table: str) -> Iterator[dict]:
    cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
    cols = [d[0] for d in cur.description]
    for row in cur:
        out = {c: _encode(v) for c, v in zip(cols, row, strict=True)}
        if table == "meta" and out.get("key") == DAEMON_KEY:
            continue
        yield out


def _encode(v):
    if isinstance(v, (bytes, memoryview)):
        return {"base64": base64.b64encode(bytes(v)).decode()}
    return v


def _decode(v):
    if isinstance(v, dict):
        if set(v) != {"base64"}:
            raise InvalidInput(f"dump: unexpected value {v!r}")
        return base64.b64decode(v["base64"])
    return v


def has_tree(catalog: Catalog) -> bool:
    """Anything beyond an empty root: ``load`` refuses to overwrite it unless forced."""
    return catalog.ns.count_inodes() > 1 or not catalog.replicas.is_empty()


def load(catalog: Catalog, data: dict, *, force: bool = False) -> dict[str, int]:
    """Replace the catalog's tree with a parsed dump; the row counts, verified.

    All or nothing: one transaction, rolled back unless every table holds
    exactly the rows the dump declares and every reference resolves. Into
    PostgreSQL: loaded so into a SQLite file first, then copied over in one
    verified transaction (:mod:`.engine_copy`).
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("not an omnifs dump (no \"format\": \"omnifs-dump\")")
    if data.get("version") != FORMAT_VERSION:
        raise InvalidInput(f"omnifs dump version {data.get('version')!r}: this omnifs reads "
                           f"version {FORMAT_VERSION}")
    if int(data.get("schema", 0)) > catalog.schema_version:
        raise InvalidInput(f"the dump is of catalog schema {data['schema']}, newer than this "
                           f"omnifs ({catalog.schema_version}): upgrade omnifs")
    declared = data.get("counts")
    if not isinstance(declared, dict):
        raise InvalidInput("omnifs dump without \"counts\": incomplete file?")
    if has_tree(catalog) and not force:
        raise InvalidInput(f"catalog {describe(catalog.target)} is not empty "
                           f"({catalog.ns.count_inodes()} entries): load goes into an empty "
                           "catalog (--force replaces it)")
    if catalog.is_postgres:
        with tempfile.TemporaryDirectory(dir=scratch_dir(catalog.target),
                                         prefix=".load-") as tmp:
            staged = Catalog(Path(tmp) / "catalog.db")
            try:
                got = _load(staged, data, declared)
                engine_copy.copy_catalog(staged, catalog, force=True)
            finally:
                staged.close()
        return got
    return _load(catalog, data, declared)


def _load(catalog: Catalog, data: dict, declared: dict) -> dict[str, int]:
    """:func:`load` into a SQLite catalog, its checks made."""
    db = _sqlite(catalog)
    tables = tree_tables(db)
    unknown = [t for t in declared if t not in tables]
    if unknown:
        raise InvalidInput(f"the dump has table {unknown[0]!r} this catalog does not know")
    with catalog.transaction():
        db.execute("PRAGMA defer_foreign_keys = ON")
        for table in reversed(tables):
            db.execute(f"DELETE FROM {table}")
        for table in tables:
            rows = data.get(table) or []
            if not isinstance(rows, list):
                raise InvalidInput(f"dump: {table!r} is not a list")
            columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for row in rows:
                if table == "meta" and row.get("key") == DAEMON_KEY:
                    continue
                cols = [c for c in row if c in columns]
                if len(cols) != len(row):
                    extra = sorted(set(row) - columns)
                    raise InvalidInput(f"dump: {table} has column {extra[0]!r} this catalog "
                                       "does not know")
                db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                           f"({', '.join('?' * len(cols))})", [_decode(row[c]) for c in cols])
        fill_birth_times(catalog.db)  # a dump of an older schema has no creation times
        # ids are never reused, also those of rows deleted before the dump
        for name, seq in (data.get("sequence") or {}).items():
            if name in tables and not db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) "
                                                 "WHERE name = ?", (seq, name)).rowcount:
                db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))
        got = counts(db)
        wrong = {t: (got.get(t, 0), n) for t, n in declared.items() if got.get(t, 0) != n}
        if wrong:
            t, (have, want) = next(iter(wrong.items()))
            raise IntegrityError(f"load: {t} holds {have} rows, the dump declares {want}; "
                                 "nothing was loaded")
        if db.execute("SELECT kind FROM inodes WHERE id = ?", (ROOT_INODE,)).fetchone() != ("dir",):
            raise IntegrityError("load: the dump has no root directory; nothing was loaded")
        broken = db.execute("PRAGMA foreign_key_check").fetchone()
        if broken is not None:
            raise IntegrityError(f"load: a {broken[0]} row refers to a missing {broken[2]} row; "
                                 "nothing was loaded")
    return got
