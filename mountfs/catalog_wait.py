"""The mount's event loop never waits on another process's catalog lock.

Why: the mount serves every FUSE request from one trio thread, and its
catalog calls are synchronous SQLite calls on that thread. SQLite lets one
connection write at a time; a statement that finds another process's write
lock (the daemon's, ``omnifs import``'s, ``omnifs check --repair``'s) waits
for it, and while it waits no request is answered, not even a ``stat``.

So a handler that writes to the catalog first asks, without waiting,
whether the write lock is free (:meth:`Catalog.write_lock_free`, a
``BEGIN IMMEDIATE`` with no busy timeout, rolled back at once); while
another process holds it, a worker thread waits for it on a connection of
its own and the event loop serves other requests meanwhile. Only the
handlers that need the catalog wait; reads, lookups and listings do not
(WAL readers never wait on a writer).

Between the check and the handler's own write another process may take the
lock again; that write then waits for it on the event loop (SQLite's busy timeout),
which needs a process to win a race of microseconds, and costs at most one
of its transactions (``omnifs import`` commits in batches of at most 0.2 s).
"""

from __future__ import annotations

import trio

from omnifs.catalog import Catalog

#: each wait in the worker is this long at most; the loop asks again after it
_WAIT = 1.0


async def catalog_writable(cat: Catalog) -> None:
    """Return once a catalog write would not wait on another process's lock (see above)."""
    while not cat.write_lock_free():
        await trio.to_thread.run_sync(cat.wait_write_lock, _WAIT, abandon_on_cancel=True)
