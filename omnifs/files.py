"""Writing a local file the user asked for (a plan, a report) whole or not at all.

:func:`atomic_writer` gives a temporary file beside the target; when the
``with`` block ends it is flushed to disk and renamed over the target, so a
reader (or a crash) sees the old file or the whole new one, and once it
returns the bytes are on disk: a zero exit status is a promise. An error
inside the block removes the temporary file and leaves the target alone.
The file is private (0600, the mode ``mkstemp`` gives), like everything
omnifs writes: plans and reports name every file of a tree.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A file to write ``path``'s new content to, put in place atomically and durably."""
    target = Path(path)
    folder = target.parent.absolute()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself, on filesystems that need it
        dirfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_writer(path) as f:
        f.write(data)
