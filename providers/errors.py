"""The one error vocabulary of omnifs.

Every SDK error is turned into one of these by the provider that met it, with
the provider's name and the key in the message and never a secret. The CLI
prints ``str(err)`` as one line; the mount maps ``errno`` in one place.
"""

from __future__ import annotations

import errno as _errno


class OmnifsError(Exception):
    """Base of every error a user may see. ``str()`` is one line."""

    errno = _errno.EIO
    #: worth retrying with backoff (throttling, a blip in the network)
    transient = False

    def __init__(self, message: str, *, provider: str | None = None, key: str | None = None):
        self.provider = provider
        self.key = key
        where = ": ".join(p for p in (provider, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class NotFound(OmnifsError):
    errno = _errno.ENOENT


class PermissionDenied(OmnifsError):
    errno = _errno.EACCES


class Throttled(OmnifsError):
    errno = _errno.EAGAIN
    transient = True


class Unavailable(OmnifsError):
    """The store cannot be reached or stopped answering (timeouts included)."""

    errno = _errno.EIO
    transient = True


class NoSpace(OmnifsError):
    """A local disk is full, or writing would go into its free-space reserve."""

    errno = _errno.ENOSPC
    #: space comes back (deletes, evictions): worth retrying later
    transient = True


class Conflict(OmnifsError):
    """A precondition failed: the object changed, or already exists."""

    errno = _errno.EEXIST


class InvalidInput(OmnifsError):
    """Bad URI, key, name, size or setting: the user must fix something."""

    errno = _errno.EINVAL


class IntegrityError(OmnifsError):
    """Bytes did not match their recorded checksum."""

    errno = _errno.EIO
