"""The one error vocabulary of omnifs.

Every SDK error is turned into one of these by the provider that met it, with
the provider's name and the key in the message and never a secret. The CLI
prints ``str(err)`` as one line; the mount maps ``errno`` in one place.
"""

from __future__ import annotations

import errno as _errno


class OmnifsError(Exception):
    """Base of every error a user may see. ``str()`` is one line.

    A kind of error names its errno and whether it is transient among its
    bases: ``class NotFound(OmnifsError, errno=ENOENT)``.
    """

    errno: int = _errno.EIO
    #: worth retrying with backoff (throttling, a blip in the network)
    transient: bool = False

    def __init_subclass__(cls, *, errno: int | None = None, transient: bool | None = None,
                          **kw: object) -> None:
        super().__init_subclass__(**kw)
        if errno is not None:
            cls.errno = errno
        if transient is not None:
            cls.transient = transient

    @property
    def retry_now(self) -> bool:
        """Worth another attempt in line, after a short backoff: transient, but not a timeout.

        A store silent for ``timeout`` seconds is treated as down: asking it
        again in line would multiply the wait (:class:`TimedOut`).
        """
        return self.transient and not isinstance(self, TimedOut)

    def __init__(self, message: str, *, provider: str | None = None, key: str | None = None):
        self.provider = provider
        self.key = key
        where = ": ".join(p for p in (provider, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class NotFound(OmnifsError, errno=_errno.ENOENT):
    """The object, or the bucket, container or directory holding it, is not there."""


class RootMissing(NotFound):
    """The bucket, container or directory itself is not there: the store cannot hold anything.

    Still a NotFound to callers asking for a key, but never a healthy answer
    (a health probe that meets it fails).
    """


class PermissionDenied(OmnifsError, errno=_errno.EACCES):
    """The store refused the credentials, or they lack a permission (or an object is archived)."""


class Throttled(OmnifsError, errno=_errno.EAGAIN, transient=True):
    """The store asks to slow down (429, 503): worth retrying after a backoff."""


class Unavailable(OmnifsError, errno=_errno.EIO, transient=True):
    """The store cannot be reached or stopped answering (timeouts included)."""


class TimedOut(Unavailable):
    """The store said nothing for ``timeout`` seconds (connecting, sending or awaiting a byte).

    Still transient (the store may come back, and it counts against its
    health), but never retried in line (:attr:`OmnifsError.retry_now`): the
    caller fails within ``timeout`` or turns to another store.
    """


class NoSpace(OmnifsError, errno=_errno.ENOSPC, transient=True):
    """A local disk is full, or writing would go into its free-space reserve.

    Transient: space comes back (deletes, evictions), so it is worth retrying later.
    """


class Archived(OmnifsError, errno=_errno.ENODATA):
    """The object sits in an archive tier (S3 GLACIER/DEEP_ARCHIVE, Azure Archive): it must be
    restored (rehydrated) before it can be read.

    ENODATA ("No data available"), not EAGAIN: a blocking read that answers EAGAIN
    looks like a non-blocking descriptor with nothing yet (Python's read returns None,
    event loops poll again at once), so callers would spin instead of failing."""


class Conflict(OmnifsError, errno=_errno.EEXIST):
    """A precondition failed: the object changed, or already exists."""


class PreconditionFailed(Conflict):
    """A conditional write was refused: the object at the key is not the one the writer
    expected (``if_absent``: one exists; ``if_match``: another etag, or none).

    Someone else changed the object behind our back; the writer decides what that
    means (the mount keeps both versions: mountfs/publish.py), never the store.
    """


class InvalidInput(OmnifsError, errno=_errno.EINVAL):
    """Bad URI, key, name, size or setting: the user must fix something."""


class IntegrityError(OmnifsError, errno=_errno.EIO):
    """Bytes did not match their recorded checksum."""


def timed_out(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it wraps, is a timeout: the store said nothing for
    ``timeout`` seconds (connecting, sending or waiting for a byte).

    Why one shared test by name: each SDK wraps the socket's timeout its own
    way (urllib3's ``ReadTimeoutError``, requests' ``ReadTimeout``, botocore's
    ``ReadTimeoutError``, azure-core's ``ServiceResponseTimeoutError``, or a
    "connection aborted" around a ``TimeoutError`` when a body could not be
    sent), and every provider must refuse to retry all of them alike.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue  # None, or an SDK's plain-text ``reason``
        seen.add(id(e))
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "inner_exception", None),
                 getattr(e, "reason", None), *getattr(e, "args", ())]
    return False


def transport_error(exc: BaseException, timeout: float, *, provider: str | None,
                    key: str | None, detail: str | None = None) -> OmnifsError:
    """The error for a call the store never answered: it timed out, the connection
    failed, or the SDK refused the call before sending it (a ValueError).

    ``detail`` is what may be said of ``exc`` beyond its type (never a URL that
    may carry a token).
    """
    if timed_out(exc):
        return TimedOut(f"timed out waiting for the store ({timeout:g} s)",
                        provider=provider, key=key)
    said = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    # requests' and urllib3's bad-URL errors are ValueErrors too, but of the connection
    connection = isinstance(exc, OSError) or type(exc).__module__.startswith(
        ("urllib3", "http.client", "requests"))
    if isinstance(exc, ValueError) and not connection:
        return InvalidInput(f"request refused by the SDK ({said})", provider=provider, key=key)
    return Unavailable(f"cannot reach the store ({said})", provider=provider, key=key)
