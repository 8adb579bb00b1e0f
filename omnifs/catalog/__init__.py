"""The catalog: the namespace, where every file's bytes are, the work queue and health.

The one API to the catalog database; no SQL lives outside this package.
:class:`Catalog` opens the database and owns its one connection, the
transactions and catalog-wide facts; its parts share that connection:

- ``cat.ns``: :mod:`.namespace` -- inodes, directory entries and hard links,
  attributes, symlinks, xattrs;
- ``cat.replicas``: :mod:`.replicas` -- replicas and the version history;
- ``cat.work``: :mod:`.workqueue` -- the work queue the mount and the CLI
  fill and daemon workers claim;
- ``cat.health``: :mod:`.health` -- provider health samples and verdicts,
  the daemon's counters;
- ``cat.migrations``: :mod:`.migrations` -- ``omnifs migrate run``'s state per
  migration and object, and what each run spent;
- ``cat.access``: :mod:`.access` -- what the mount served of each file, per day
  (reads, bytes read, writes) and its last read and write;
- ``cat.usage``: :mod:`.usage` -- the requests and bytes omnifs processes made of
  each store, per day;
- ``cat.cost``: :mod:`.cost` -- every file's copies and reads for the cost engine,
  and the moves ``omnifs cost apply`` made;
- ``cat.changes``: :mod:`.changes` -- the change log every namespace change is
  written to, which mounts follow (:class:`~.changes.ChangeFeed`);
- ``cat.leases``: :mod:`.leases` -- advisory locks with an expiry (a publish of a
  file, a live mount, ``omnifs flock``).

Modules: :mod:`.connection` (the :class:`Catalog`), :mod:`.backend` (SQLite or
PostgreSQL: what differs between the engines), :mod:`.engine_copy` (a catalog
copied to the other engine, verified), the ten parts above,
:mod:`.schema` (the tables, documented column by column, and their
migrations) and :mod:`.portable` (consistent copies, restore, JSON dump and
load).

A PostgreSQL catalog replaces exactly these objects: callers see records
(:class:`Inode`, :class:`Replica`, :class:`WorkItem`, :class:`ProviderHealth`),
plain values and :data:`CatalogError`, never a connection.
"""

from .access import AccessStats, FileAccess
from .backend import CatalogUnavailable
from .connection import BUSY_TIMEOUT_MS, CATALOG_ID_KEY, Catalog, CatalogError, NoCatalog
from .cost import CostMove, CostRecords, StoredFile
from .health import HEALTH_SOURCES, HealthLog, ProviderHealth
from .migrations import Migration, MigrationItem, Migrations, migration_id
from .namespace import KIND_OF_MODE, LINK_OFFSET, Inode, Namespace, now_ns
from .replicas import Replica, Replicas
from .schema import ROOT_INODE
from .usage import StoreUsage
from .workqueue import WorkItem, WorkQueue

__all__ = ["BUSY_TIMEOUT_MS", "CATALOG_ID_KEY", "HEALTH_SOURCES", "KIND_OF_MODE", "LINK_OFFSET",
           "ROOT_INODE", "Catalog", "CatalogError", "HealthLog", "Inode", "Migration",
           "MigrationItem", "Migrations", "Namespace", "NoCatalog", "ProviderHealth", "Replica",
           "Replicas", "WorkItem", "WorkQueue", "migration_id", "now_ns"]
__all__ += ["AccessStats", "FileAccess"]
__all__ += ["CostMove", "CostRecords", "StoreUsage", "StoredFile"]
__all__ += ["CatalogUnavailable"]
