"""Everything that talks to a store, behind one small interface (see base.py)."""

from .base import META_MTIME, META_SHA256, RESERVED_PREFIX, Capabilities, ObjectInfo, Provider
from .errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    NoSpace,
    NotFound,
    OmnifsError,
    PermissionDenied,
    Throttled,
    TimedOut,
    Unavailable,
)
from .registry import SCHEMES, Location, ProviderSettings, open_provider, parse_uri

__all__ = [
    "META_MTIME", "META_SHA256", "RESERVED_PREFIX", "SCHEMES", "Capabilities", "Conflict",
    "IntegrityError", "InvalidInput", "Location", "NoSpace", "NotFound", "ObjectInfo",
    "OmnifsError", "PermissionDenied", "Provider", "ProviderSettings", "Throttled", "TimedOut",
    "Unavailable",
    "open_provider", "parse_uri",
]
