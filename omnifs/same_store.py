"""Whether two providers reach one store (a server-side copy) or one server.

A copy between two providers over the same bucket and connection settings
is the store's own server-side ``copy()``: no byte passes through this
machine. Two providers answered by the same server (an emulator, one MinIO)
may be served one request at a time, which is why a copy between them reads
the source in drainable windows (``object_copy._window``).
"""

from __future__ import annotations

import os

from omnifs.providers import Provider

_CONNECTION_FIELDS = ("endpoint", "region", "access_key", "connection_string", "account_url",
                      "credentials_file")


def unwrapped(p: Provider) -> Provider:
    """The real store behind wrappers (fault injection, metrics), which keep it as ``inner``."""
    while isinstance(getattr(p, "inner", None), Provider):
        p = p.inner  # type: ignore[attr-defined]
    return p


def same_store(a: Provider, b: Provider) -> bool:
    """Can ``a.copy()`` reach ``b``'s objects? Same class, bucket and connection settings."""
    a, b = unwrapped(a), unwrapped(b)
    if type(a) is not type(b) or a.location.scheme != b.location.scheme:
        return False
    if a.location.scheme == "file":
        return True
    if a.location.bucket != b.location.bucket:
        return False
    return all(getattr(a.settings, f, None) == getattr(b.settings, f, None)
               for f in _CONNECTION_FIELDS)


def key_in(a: Provider, b: Provider, key: str) -> str | None:
    """``b``'s ``key`` expressed as a key of ``a`` (same store), or None when outside ``a``'s
    root."""
    if a.location.scheme == "file":
        full = os.path.normpath(os.path.join(b.location.path, key))
        root = os.path.normpath(a.location.path)
        if root == "/":
            return full.lstrip("/")
        return full[len(root) + 1:] if full.startswith(root + "/") else None
    full = b.object_name(key)
    base = a.location.path
    if not base:
        return full
    return full[len(base) + 1:] if full.startswith(base + "/") else None


def server_id(p: Provider) -> tuple[str, str] | None:
    """Which server answers ``p``'s requests, when its settings name one (emulators, MinIO)."""
    s = unwrapped(p).settings
    if s.endpoint:
        return ("url", s.endpoint.rstrip("/"))
    if s.account_url:
        return ("url", s.account_url.rstrip("/"))
    if s.connection_string:
        for part in s.connection_string.split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "blobendpoint" and value:
                return ("url",
                        value.rstrip("/").rsplit("/", 1)[0] if value.count("/") > 2 else value)
    return None
