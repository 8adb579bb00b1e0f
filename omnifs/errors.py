"""Errors of the omnifs core; the store errors come from providers.errors."""

from omnifs.providers.errors import (  # noqa: F401  (re-exported: one vocabulary)
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    OmnifsError,
    PermissionDenied,
    Throttled,
    Unavailable,
)


class ConfigError(InvalidInput):
    """A mistake in omnifs.toml or on the command line."""
