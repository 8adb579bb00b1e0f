"""Writing a local file the user asked for (a plan, a report) whole or not at all.

:func:`atomic_write` writes a temporary file beside the target, flushes it
to disk and renames it over the target: a reader (or a crash) sees the old
file or the whole new one, and once it returns the bytes are on disk, so a
zero exit status is a promise. The file is private (0600, the mode
``mkstemp`` gives), like everything omnifs writes: plans and reports name
every file of a tree.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                               dir=target.parent.absolute())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself, on filesystems that need it
        dirfd = os.open(target.parent.absolute(), os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
