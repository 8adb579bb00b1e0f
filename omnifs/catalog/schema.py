"""The catalog's schema, created and upgraded by numbered migrations.

Written in SQLite's SQL; :mod:`.backend` translates it for PostgreSQL, so the
same migrations run on both engines.

Why migrations and not ``CREATE TABLE IF NOT EXISTS``: new features (read
path, daemon, governance, audit) add tables and columns to catalogs that
users already have. Each migration is a function taking a connection inside
one transaction; ``schema_version`` records how many have run. Add new ones
at the end of :data:`MIGRATIONS`, never edit an old one.
"""

from __future__ import annotations

from collections.abc import Callable

from .backend import CatalogError, Connection, table_columns

#: the inode of the namespace root (pyfuse3.ROOT_INODE)
ROOT_INODE = 1


def _v1_initial(db: Connection) -> None:
    """The tree, replicas, history, work queue, xattrs and a key/value table.

    inodes -- one row per file, directory, symlink or special file.
      id          never reused (AUTOINCREMENT): the kernel may still hold old ids
      parent      directory inode; NULL once unlinked but still open ("orphan")
      name        entry name in ``parent`` (str, os.fsdecode of the bytes); NULL for orphans
      kind        'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk'
      mode        full st_mode (type bits and permission bits)
      uid, gid    owner, as the kernel enforces them (default_permissions)
      rdev        device number of chr/blk nodes, else 0
      size        bytes (files), length of the target (symlinks), 0 for dirs
      atime_ns, mtime_ns, ctime_ns   nanoseconds since the epoch
      target      symlink target (str, fsdecoded), else NULL
      sha256      hex SHA-256 of the current content (files), NULL if unknown
      version     grows by one with every content change acknowledged by close/fsync
      nlink       links to the inode: names in the tree (this row's own name plus its
                  rows in ``links``), +1 per subdirectory for dirs; 0 for orphans
      staged      1 while a staging file in cache_dir/staging holds bytes that are
                  not yet on write_quorum stores (a remount uploads them)

    replicas -- where a file's bytes are, one row per (file, provider).
      inode, provider   the file and the provider's name from config
      key         object key inside the provider (plain path, e.g. 'a/b.txt'); can
                  lag the file's path after a rename until the queued move ran
      version     the inodes.version this replica holds
      state       'pending' (being/queued to be written) | 'synced' | 'stale' | 'failed'
      etag        the store's etag/generation after the write, if any
      tier        storage tier, NULL for the store's default
      verified_at last time the bytes were checked against sha256 (epoch seconds)

    versions -- history of acknowledged content versions.
      inode, version, sha256, size, mtime_ns, time (epoch seconds the version was made)

    work -- the work queue/journal shared by the mount, the CLI and daemon workers.
      id          order of arrival
      kind        'replicate' | 'move' | 'delete' | 'attrs' (omnifs/work.py's KINDS)
      payload     JSON object: the fields of ``kind``'s dataclass in omnifs/work.py
      state       'pending' | 'claimed' | 'done' | 'failed'
      attempts    how many claims ended in failure
      not_before  epoch seconds before which the item must not be claimed (backoff)
      claimed_by  worker id holding the claim; claimed_at its time (a lease: stale
                  claims are taken over after the lease expires)
      dedup       optional key: a new pending item with the same key replaces the
                  payload of the existing pending one instead of queueing twice
      last_error  one line from the last failure
      created_at  epoch seconds

    xattrs -- user extended attributes: inode, name (bytes), value (bytes).

    meta -- catalog-wide key/value facts (e.g. 'imported' once an import ran).
    """
    _script(db, """
        CREATE TABLE inodes (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            parent    INTEGER REFERENCES inodes(id),
            name      TEXT,
            kind      TEXT NOT NULL,
            mode      INTEGER NOT NULL,
            uid       INTEGER NOT NULL DEFAULT 0,
            gid       INTEGER NOT NULL DEFAULT 0,
            rdev      INTEGER NOT NULL DEFAULT 0,
            size      INTEGER NOT NULL DEFAULT 0,
            atime_ns  INTEGER NOT NULL,
            mtime_ns  INTEGER NOT NULL,
            ctime_ns  INTEGER NOT NULL,
            target    TEXT,
            sha256    TEXT,
            version   INTEGER NOT NULL DEFAULT 0,
            nlink     INTEGER NOT NULL DEFAULT 1,
            staged    INTEGER NOT NULL DEFAULT 0,
            UNIQUE (parent, name)
        );
        CREATE TABLE replicas (
            inode       INTEGER NOT NULL REFERENCES inodes(id) ON DELETE CASCADE,
            provider    TEXT NOT NULL,
            key         TEXT NOT NULL,
            version     INTEGER NOT NULL,
            state       TEXT NOT NULL,
            etag        TEXT,
            tier        TEXT,
            verified_at REAL,
            PRIMARY KEY (inode, provider)
        );
        CREATE INDEX replicas_by_key ON replicas(provider, key);
        CREATE TABLE versions (
            inode    INTEGER NOT NULL REFERENCES inodes(id) ON DELETE CASCADE,
            version  INTEGER NOT NULL,
            sha256   TEXT,
            size     INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            time     REAL NOT NULL,
            PRIMARY KEY (inode, version)
        );
        CREATE TABLE work (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            kind       TEXT NOT NULL,
            payload    TEXT NOT NULL,
            state      TEXT NOT NULL DEFAULT 'pending',
            attempts   INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at REAL,
            dedup      TEXT,
            last_error TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX work_ready ON work(state, not_before);
        CREATE UNIQUE INDEX work_dedup ON work(dedup) WHERE state = 'pending';
        CREATE TABLE xattrs (
            inode INTEGER NOT NULL REFERENCES inodes(id) ON DELETE CASCADE,
            name  BLOB NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (inode, name)
        );
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT
        );
        """)


def _v2_hard_links(db: Connection) -> None:
    """Hard links: a file's second and further names.

    Why not move every name to a separate table: ``inodes.parent/name`` stays
    the inode's *primary* name, the one its objects are stored under (plain
    layout), and everything that reads the tree by path (daemon, importer,
    reconciler) keeps working unchanged. Only extra names live here; for
    almost every file this table holds nothing.

    links -- extra directory entries of non-directories.
      id      readdir offsets of these entries (after all primary names)
      parent  directory the name is in
      name    the entry's name (str, as inodes.name)
      inode   the file it names (its nlink counts this row)

    A name is unique per directory across ``inodes`` and ``links`` (the
    catalog checks both before it adds one). When a primary name is removed
    while links remain, the oldest link becomes the primary name.
    """
    _script(db, """
        CREATE TABLE links (
            id     INTEGER PRIMARY KEY AUTOINCREMENT,
            parent INTEGER NOT NULL,
            name   TEXT NOT NULL,
            inode  INTEGER NOT NULL REFERENCES inodes(id) ON DELETE CASCADE,
            UNIQUE (parent, name)
        );
        CREATE INDEX links_by_inode ON links(inode)
        """)


def _v3_health(db: Connection) -> None:
    """Provider health, shared by the mount and the daemon through the catalog.

    Why a migration with ``IF NOT EXISTS``: the daemon created these tables
    itself (daemon/state.py) before they moved here, with the same columns;
    on such a catalog this migration keeps its rows and only adds what is new
    (``health_samples.error``). The daemon's own creation stays harmless.

    provider_health -- one row per provider, rewritten by the daemon after every probe round.
      provider    name from config
      status      'healthy' | 'degraded' | 'down' | 'unknown' | 'lost' (policy.health)
      p50, p95    latency seconds of successful samples in the window (NULL if none)
      error_rate  failed / all samples in the window
      down_since  epoch seconds the current outage began (NULL when up)
      updated_at  epoch seconds of this row; a row older than a minute means no daemon runs

    health_samples -- timed requests against a store: the daemon's probes and
    the mount's failed requests (and an occasional success, so a store that
    recovered is seen as such). Pruned to the health window by the daemon.
      provider    name from config
      at          epoch seconds
      latency     seconds the request took (until it failed, for failures)
      ok          1 success, 0 failure
      source      'probe' | 'worker' | 'mount' | 'daemon'
      error       one line saying what failed (never a secret), NULL for successes

    daemon_counters -- monotonically growing totals (name, value), e.g. bytes_replicated.
    """
    _script(db, """
        CREATE TABLE IF NOT EXISTS provider_health (
            provider   TEXT PRIMARY KEY,
            status     TEXT NOT NULL,
            p50        REAL,
            p95        REAL,
            error_rate REAL NOT NULL DEFAULT 0,
            down_since REAL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS health_samples (
            provider TEXT NOT NULL,
            at       REAL NOT NULL,
            latency  REAL NOT NULL,
            ok       INTEGER NOT NULL,
            source   TEXT NOT NULL DEFAULT 'probe'
        );
        CREATE INDEX IF NOT EXISTS health_samples_by_provider ON health_samples(provider, at);
        CREATE TABLE IF NOT EXISTS daemon_counters (
            name  TEXT PRIMARY KEY,
            value REAL NOT NULL
        )
        """)
    columns = set(table_columns(db, "health_samples"))
    if "error" not in columns:
        db.execute("ALTER TABLE health_samples ADD COLUMN error TEXT")


def _v4_migrations(db: Connection) -> None:
    """``omnifs migrate run``'s state (omnifs/catalog/migrations.py).

    migrations -- one row per plan that was run.
      id             16 hex digits of the plan file's checksum (the same plan resumes)
      plan_checksum  the plan file's "sha256:..." checksum
      src, dst       the places as the user typed them
      mode           'copy' | 'move'
      state          'planned' | 'running' | 'done' | 'incomplete' | 'rolled_back' |
                     'finalized'
      created_at, started_at, finished_at   epoch seconds (NULL until they happen)
      plan           JSON: the plan file's places, summary and estimate (not its entries)

    migration_items -- one row per plan entry.
      migration, key  the run and the entry's key relative to SRC/DST
      action          'copy' | 'overwrite' | 'skip' | 'delete'
      size            bytes the entry moves (the plan's size)
      state           'pending' | 'done' | 'failed'
      attempts        failed attempts so far; error: one line from the last
      sha256          the SHA-256 of the bytes the run put at the destination
      saved           where the destination object an overwrite/delete replaced was kept
                      ('version:ID' of the store's versioning, 'copy:KEY' under
                      .omnifs/migrations/ID/), NULL when nothing was replaced
      verified        NULL (not checked) | 'ok' | 'mismatch' | 'missing'
      source_deleted  1 once a move removed the source object (after verification)
      rolled_back     1 once rollback undid the entry
      started_at, finished_at   epoch seconds of the last attempt

    migration_usage -- what the run spent: (migration, provider, kind) -> value, where
      provider is 'src' or 'dst' and kind e.g. 'get_requests', 'put_requests',
      'list_requests', 'delete_requests', 'bytes_out', 'bytes_in'.
    """
    _script(db, """
        CREATE TABLE migrations (
            id            TEXT PRIMARY KEY,
            plan_checksum TEXT NOT NULL,
            src           TEXT NOT NULL,
            dst           TEXT NOT NULL,
            mode          TEXT NOT NULL,
            state         TEXT NOT NULL,
            created_at    REAL NOT NULL,
            started_at    REAL,
            finished_at   REAL,
            plan          TEXT NOT NULL
        );
        CREATE TABLE migration_items (
            migration      TEXT NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
            key            TEXT NOT NULL,
            action         TEXT NOT NULL,
            size           INTEGER NOT NULL,
            state          TEXT NOT NULL DEFAULT 'pending',
            attempts       INTEGER NOT NULL DEFAULT 0,
            error          TEXT,
            sha256         TEXT,
            saved          TEXT,
            verified       TEXT,
            source_deleted INTEGER NOT NULL DEFAULT 0,
            rolled_back    INTEGER NOT NULL DEFAULT 0,
            started_at     REAL,
            finished_at    REAL,
            PRIMARY KEY (migration, key)
        );
        CREATE INDEX migration_items_by_state ON migration_items(migration, state);
        CREATE TABLE migration_usage (
            migration TEXT NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
            provider  TEXT NOT NULL,
            kind      TEXT NOT NULL,
            value     REAL NOT NULL,
            PRIMARY KEY (migration, provider, kind)
        )
        """)


def _v5_transfer_samples(db: Connection) -> None:
    """Timed whole transfers among the health samples: the throughput of a store.

    health_samples gains
      bytes      bytes the request moved, NULL for a plain request (a probe, a
                 HEAD): then ``latency`` is the request's round trip, else the
                 whole transfer's duration
      direction  'read' (bytes from the store) | 'write' (bytes to it), NULL
                 for a plain request

    Written by the daemon's replication worker (one write sample per object it
    copies to a store) and by ``omnifs migrate plan``'s probe (source
    'migrate'); read by the plan's time estimate (omnifs/migration/timing.py).
    Transfer samples outlive the health window (omnifs/catalog/health.py
    ``prune_samples``); the health verdicts read request samples only.
    """
    db.execute("ALTER TABLE health_samples ADD COLUMN bytes INTEGER")
    db.execute("ALTER TABLE health_samples ADD COLUMN direction TEXT")


def _v6_access(db: Connection) -> None:
    """Access statistics: what the mount served of each file (omnifs/catalog/access.py).

    Written by the mount only (omnifs/access_log.py), in batches; the
    daemon's and the CLI's own reads of stored objects (replication, scrub,
    migration) are not user access and are not counted. Rows go with their
    inode (ON DELETE CASCADE).

    access_days -- per file and UTC day: what the mount served that day.
      inode       the file
      day         the bucket's first day, in days since 1970-01-01 (UTC)
      days        the bucket's length: 1 for a day; a whole month for rows older than
                  the retention (access.RETENTION_DAYS), which are folded into one row
                  per calendar month, and dropped after access.MONTHS_KEPT months
      reads       handles that read the file (one per open that read anything, or that
                  the kernel's page cache may have served)
      bytes_read  bytes the mount returned to read calls (block cache hits included;
                  reads the kernel answered from its own page cache are not seen)
      writes      handles whose close changed the content (a new version)

    access_files -- per file, all time (never folded or dropped).
      inode                      the file
      reads, bytes_read, writes  totals, as in access_days
      last_read, last_write      epoch seconds of the newest read call / changing close
                                 (NULL: never, since recording began)
    """
    _script(db, """
        CREATE TABLE access_days (
            inode      INTEGER NOT NULL REFERENCES inodes(id) ON DELETE CASCADE,
            day        INTEGER NOT NULL,
            days       INTEGER NOT NULL DEFAULT 1,
            reads      INTEGER NOT NULL DEFAULT 0,
            bytes_read INTEGER NOT NULL DEFAULT 0,
            writes     INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (inode, day)
        );
        CREATE INDEX access_days_by_day ON access_days(day);
        CREATE TABLE access_files (
            inode      INTEGER PRIMARY KEY REFERENCES inodes(id) ON DELETE CASCADE,
            reads      INTEGER NOT NULL DEFAULT 0,
            bytes_read INTEGER NOT NULL DEFAULT 0,
            writes     INTEGER NOT NULL DEFAULT 0,
            last_read  REAL,
            last_write REAL
        )
        """)


def _v7_cost(db: Connection) -> None:
    """Store requests per day (omnifs/catalog/usage.py) and the cost moves made
    (omnifs/catalog/cost.py).

    usage_days -- per UTC day, provider and kind of request: what the omnifs
    processes (mount, daemon, cp/sync/migrate run) asked of the stores. Written
    in deltas by omnifs/usage_log.py; read by ``omnifs cost report``.
      day         the bucket's first day, in days since 1970-01-01 (UTC)
      days        the bucket's length: 1 for a day; day rows older than
                  usage.RETENTION_DAYS are folded into one row per calendar month
      provider    the provider's name from config
      op          'get' | 'put' | 'head' | 'list' | 'delete' | 'copy'
      requests    requests made (failed ones included)
      errors      requests that failed
      bytes_in    bytes received from the store (downloads: egress the store bills)
      bytes_out   bytes sent to the store (uploads)

    cost_moves -- every move ``omnifs cost apply`` queued, and how it ended.
      id               order of arrival
      time             epoch seconds it was queued
      inode, path      the file (path as it was then)
      kind             'tier' (a copy's storage tier changes) | 'placement' (the file's
                       copies move to other stores)
      store            the store whose copy changes tier ('' for a placement)
      source, target   tiers, or the comma-separated stores of a placement
      saving_per_month, one_time   the recommendation's amounts (decimal text, currency)
      state            'queued' | 'done' | 'failed' | 'obsolete' (nothing left to do)
      detail           one line: why it failed or was obsolete
      done_at          epoch seconds it ended, NULL while queued
    """
    _script(db, """
        CREATE TABLE usage_days (
            day        INTEGER NOT NULL,
            days       INTEGER NOT NULL DEFAULT 1,
            provider   TEXT NOT NULL,
            op         TEXT NOT NULL,
            requests   INTEGER NOT NULL DEFAULT 0,
            errors     INTEGER NOT NULL DEFAULT 0,
            bytes_in   INTEGER NOT NULL DEFAULT 0,
            bytes_out  INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, provider, op)
        );
        CREATE TABLE cost_moves (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            time             REAL NOT NULL,
            inode            INTEGER NOT NULL,
            path             TEXT NOT NULL,
            kind             TEXT NOT NULL,
            store            TEXT NOT NULL DEFAULT '',
            source           TEXT NOT NULL,
            target           TEXT NOT NULL,
            saving_per_month TEXT NOT NULL,
            one_time         TEXT NOT NULL,
            state            TEXT NOT NULL DEFAULT 'queued',
            detail           TEXT,
            done_at          REAL
        )
        """)


#: the PostgreSQL NOTIFY channel of new rows in ``changes`` (omnifs/catalog/changes.py)
CHANGES_CHANNEL = "omnifs_changes"


def _v8_changes_and_leases(db: Connection) -> None:
    """The change log several mounts of one namespace follow, and leases (locks with expiry).

    changes -- one row per namespace change, written in the same transaction as the
    change itself (omnifs/catalog/changes.py); mounts follow it to drop their caches of
    what other processes changed (mountfs/coherence.py). Trimmed after a few minutes.
      seq         order of the changes (grows; a follower remembers the last it saw)
      origin      the catalog connection that made it (a mount skips its own)
      inode       the inode whose attributes, content or name changed
      parent, name   the directory entry that changed (created, removed, renamed,
                  replaced), NULL when only the inode's attributes or content changed
      data        1 when the content changed (a new version, a truncate): cached pages go
      time        epoch seconds it was made (for people; trimming goes by seq)
    On PostgreSQL a statement trigger NOTIFYs :data:`CHANGES_CHANNEL` on every insert.

    leases -- advisory locks shared by every process and host on the catalog.
      key         what is locked: 'publish:INODE' (an upload and its commit),
                  'mount:ID' (a live mount's heartbeat), 'flock:PATH' (``omnifs flock``)
      owner       who holds it (a mount's or a command's id)
      expires     epoch seconds: a holder that stops renewing (a dead host) loses it then
      note        one line for people (host and pid of the holder)
    """
    _script(db, """
        CREATE TABLE changes (
            seq     INTEGER PRIMARY KEY AUTOINCREMENT,
            origin  TEXT NOT NULL,
            inode   INTEGER NOT NULL,
            parent  INTEGER,
            name    TEXT,
            data    INTEGER NOT NULL DEFAULT 0,
            time    REAL NOT NULL
        );
        CREATE TABLE leases (
            key      TEXT PRIMARY KEY,
            owner    TEXT NOT NULL,
            expires  REAL NOT NULL,
            note     TEXT NOT NULL DEFAULT ''
        )
        """)
    if db.dialect.name == "postgresql":
        # followers LISTEN instead of polling: one NOTIFY per writing statement, sent at commit
        db.execute("CREATE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN PERFORM pg_notify('{CHANGES_CHANNEL}', ''); RETURN NULL; END $$")
        db.execute("CREATE TRIGGER changes_notify AFTER INSERT ON changes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION changes_notify()")


def _v9_birth_times(db: Connection) -> None:
    """When each inode was created, which nothing changes after (WORM retention counts
    from it; ctime moves with every chmod, rename or link).

    inodes.birth_ns -- nanoseconds since the epoch the entry was created. Rows that
      existed before this column get the earliest time known of them: their first
      version's time, else their ctime (:func:`fill_birth_times`).
    """
    db.execute("ALTER TABLE inodes ADD COLUMN birth_ns INTEGER")
    fill_birth_times(db)


def fill_birth_times(db: Connection) -> None:
    """Give every inode without a creation time the earliest time known of it: its ctime,
    or its first version's time when that is earlier (an upgrade, an older dump's rows)."""
    first = ("(SELECT CAST(min(v.time) * 1000000000 AS BIGINT) FROM versions v "
             "WHERE v.inode = inodes.id)")
    db.execute(f"UPDATE inodes SET birth_ns = {first} "
               f"WHERE birth_ns IS NULL AND {first} < ctime_ns")
    db.execute("UPDATE inodes SET birth_ns = ctime_ns WHERE birth_ns IS NULL")


def _script(db: Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    ``executescript`` would COMMIT first and break the migration's atomicity.
    """
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


#: in order; ``schema_version.version`` = how many have been applied
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_hard_links, _v3_health, _v4_migrations, _v5_transfer_samples,
    _v6_access, _v7_cost, _v8_changes_and_leases, _v9_birth_times]


def migrate(db: Connection) -> int:
    """Bring ``db`` to the newest schema; return the version it is at.

    Runs under the write lock (BEGIN IMMEDIATE, or PostgreSQL's advisory lock)
    so two processes opening a fresh catalog at once (mount and ``omnifs
    replicate``) do not both run a migration. A catalog already at the newest
    version is only read: every worker thread of a daemon opens one, and on
    PostgreSQL the write lock would make each wait for every writer of the catalog.
    """
    if not db.in_transaction:
        try:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        except CatalogError:  # a new catalog: no table yet
            row = None
        if row is not None and row[0] == len(MIGRATIONS):
            return row[0]
    db.begin()
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        current = row[0] if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"catalog schema version {current} is newer than this omnifs knows "
                f"({len(MIGRATIONS)}): upgrade omnifs")
        for step in MIGRATIONS[current:]:
            step(db)
            current += 1
        db.execute("UPDATE schema_version SET version = ?", (current,))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return current
