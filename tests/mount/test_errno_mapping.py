"""The one errno mapping, without a mount: nothing but FUSEError leaves a handler."""

from __future__ import annotations

import errno
import sqlite3

import pyfuse3
import pytest
import trio

from omnifs.mountfs.fuse_errors import fuse_handler, to_errno
from omnifs.providers.errors import (
    InvalidInput,
    NoSpace,
    NotFound,
    PermissionDenied,
    Throttled,
    Unavailable,
)


@pytest.mark.parametrize(("exc", "code"), [
    # only the catalog says a file does not exist (FUSEError(ENOENT)); a store or a local
    # file that lacks a known file's bytes is an I/O error
    (NotFound("x", provider="p", key="k"), errno.EIO),
    (OSError(errno.ENOENT, "gone"), errno.EIO),
    (pyfuse3.FUSEError(errno.ENOENT), errno.ENOENT),
    (PermissionDenied("x", provider="p", key="k"), errno.EACCES),
    (Unavailable("x", provider="p", key="k"), errno.EIO),
    (Throttled("x", provider="p"), errno.EAGAIN),
    (InvalidInput("x"), errno.EINVAL),
    (OSError(errno.ENOSPC, "full"), errno.ENOSPC),
    (sqlite3.OperationalError("database or disk is full"), errno.ENOSPC),
    (NoSpace("x", provider="p", key="k"), errno.ENOSPC),
    (ValueError("bug"), errno.EIO),
    (pyfuse3.FUSEError(errno.ENAMETOOLONG), errno.ENAMETOOLONG),
])
def test_every_error_becomes_an_errno(exc, code, caplog):
    @fuse_handler
    async def handler():
        raise exc

    async def call():
        with pytest.raises(pyfuse3.FUSEError) as info:
            await handler()
        return info.value.errno

    assert trio.run(call) == code
    assert to_errno(exc) == code


def test_unknown_errors_are_logged_once(caplog):
    err = RuntimeError("unique failure 1234")
    to_errno(err)
    to_errno(err)
    assert sum("internal error" in r.message for r in caplog.records) == 1


def test_a_store_without_the_object_is_logged_naming_it(caplog):
    to_errno(NotFound("missing from every store that should hold it", key="/docs/a.txt"))
    to_errno(NotFound("missing from every store that should hold it", key="/docs/a.txt"))
    lines = [r.message for r in caplog.records if "/docs/a.txt" in r.message]
    assert lines == ["/docs/a.txt: missing from every store that should hold it"]
