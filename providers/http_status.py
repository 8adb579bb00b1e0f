"""What an HTTP status from a store means: the one table every HTTP provider uses.

S3 (boto3), MinIO (the minio SDK), GCS and Azure all answer in HTTP, and each
SDK carries the status its own way. A provider first reads what its vendor's
own error codes say that no status can (S3's ``NoSuchBucket``, Azure's
``ContainerNotFound``, an archived object); a code that only says more
precisely what a status means (``SlowDown``, ``ServerBusy``) is read as that
status. The rest is decided here, alike for every store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Throttled,
    Unavailable,
)

if TYPE_CHECKING:
    from .errors import OmnifsError

#: a read's range starts at or past the end of the object: every provider reads nothing
RANGE_NOT_SATISFIABLE = 416

#: status -> the error it means; any other status (5xx or unexpected), or none, is Unavailable
STATUS_ERRORS: dict[int, type[OmnifsError]] = {
    400: InvalidInput,
    401: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    411: InvalidInput,  # Content-Length required
    412: PreconditionFailed,
    413: InvalidInput,  # too large
    416: InvalidInput,  # a range outside the object (reads turn it into no bytes)
    429: Throttled,
    503: Throttled,
}

#: what each error says of a request the store refused, before the store's own words
_SAYS: dict[type[OmnifsError], str] = {
    InvalidInput: "request refused",
    PermissionDenied: "access denied: wrong credentials or no permission",
    Conflict: "precondition failed or object exists",
    PreconditionFailed: "precondition failed: the object is not the one expected",
    Throttled: "the store is busy, retry later",
    Unavailable: "the store failed to answer",
}


def status_class(status: int | None) -> type[OmnifsError]:
    """The omnifs error an HTTP ``status`` means."""
    return Unavailable if status is None else STATUS_ERRORS.get(status, Unavailable)


def status_error(status: int | None, detail: str | None = None, *, provider: str | None,
                 key: str | None) -> OmnifsError:
    """The omnifs error for an HTTP ``status``; ``detail`` is the store's own code or words."""
    cls = status_class(status)
    if cls is NotFound:
        return NotFound("no such object", provider=provider, key=key)
    said = detail or (f"HTTP {status}" if status is not None else "no status")
    return cls(f"{_SAYS[cls]} ({said})", provider=provider, key=key)
