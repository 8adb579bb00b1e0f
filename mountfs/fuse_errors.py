"""The one place where errors become errno, around every FUSE handler.

Why: in pyfuse3 any exception other than ``FUSEError`` that escapes a
handler kills the whole mount. Every handler of
:class:`mountfs.operations.Operations` is wrapped by :func:`fuse_handler`:

* ``FUSEError`` passes through;
* an omnifs error (``providers.errors``) becomes its ``.errno`` and is logged
  once per (class, provider, key) at warning level;
* an ``OSError`` (staging disk: ENOSPC, EDQUOT...) becomes its errno, and
  SQLite's "database or disk is full" ENOSPC (a full disk is not an I/O error);
* a catalog whose server is unreachable (a PostgreSQL outage) answers ``EIO``,
  logged once in one line; the catalog connects again by itself;
* anything else is logged once with its traceback and answers ``EIO``.

It also times each request for ``omnifs_fuse_op_seconds`` (mountfs/metrics.py).

ENOENT means "no such file", and only the catalog can say that: the
handlers answer it themselves (``FUSEError(ENOENT)``) for a name or inode
the namespace does not have. Anything else that says "not found" (a store
without the object or its bucket, a vanished local file under the cache
directory) is about a file that does exist, whose bytes cannot be had: it
answers ``EIO`` and is logged like any other failure.
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from omnifs.catalog import CatalogUnavailable
from omnifs.providers.diskspace import is_disk_full
from omnifs.providers.errors import NotFound, OmnifsError

from . import metrics

log = logging.getLogger("omnifs.mount")

P = ParamSpec("P")
R = TypeVar("R")

#: (error class, provider, key) already logged: each is logged once
_seen: set[tuple[str, str | None, str | None]] = set()
#: forget what was logged beyond this many distinct errors (memory stays bounded)
_SEEN_MAX = 10_000


def _first_time(mark: tuple[str, str | None, str | None]) -> bool:
    if mark in _seen:
        return False
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen.add(mark)
    return True


def to_errno(exc: BaseException) -> int:
    """The errno a FUSE caller sees for ``exc``; logs what deserves logging."""
    if isinstance(exc, pyfuse3.FUSEError):
        return exc.errno
    if isinstance(exc, OmnifsError):
        mark = (type(exc).__name__, exc.provider, exc.key)
        if _first_time(mark):
            log.warning("%s", exc)
        return errno.EIO if isinstance(exc, NotFound) else exc.errno
    if is_disk_full(exc) and not isinstance(exc, OSError):
        if _first_time(("disk full", None, None)):
            log.warning("the catalog's disk is full (%s): answering ENOSPC", exc)
        return errno.ENOSPC
    if isinstance(exc, CatalogUnavailable):
        if _first_time(("catalog unavailable", None, None)):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("catalog unreachable, answering EIO until it is back: %s", first)
        return errno.EIO
    if isinstance(exc, OSError) and exc.errno:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            mark = ("OSError", str(exc.errno), getattr(exc, "filename", None))
            if _first_time(mark):
                log.warning("staging: %s", exc)
        return errno.EIO if exc.errno == errno.ENOENT else exc.errno
    mark = (type(exc).__name__, None, str(exc)[:200])
    if _first_time(mark):
        log.error("internal error answered with EIO", exc_info=exc)
    return errno.EIO


def fuse_handler(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Wrap one async handler so that nothing but FUSEError leaves it."""

    # the op's series appears with its first request: handlers never called add no lines
    timed: list = []

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter() if metrics.timing else 0.0
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except Exception as e:  # noqa: BLE001 - this is the one place that maps them all
            raise pyfuse3.FUSEError(to_errno(e)) from None
        finally:
            if started:
                if not timed:
                    timed.append(metrics.fuse_times(fn.__name__))
                timed[0].add(time.perf_counter() - started)

    return wrapper


#: handlers pyfuse3 has no slot for, installed by the mount itself (mountfs/fallocate.py)
EXTRA_HANDLERS = ("fallocate",)


def wrap_handlers(cls: type) -> type:
    """Class decorator: apply :func:`fuse_handler` to every FUSE handler ``cls`` defines."""
    for name in (*dir(pyfuse3.Operations), *EXTRA_HANDLERS):
        if name.startswith("_") or name in ("init", "stacktrace"):
            continue
        attr = cls.__dict__.get(name)
        if attr is not None and callable(attr):
            setattr(cls, name, fuse_handler(attr))
    return cls
