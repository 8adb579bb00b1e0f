"""omnifs: one POSIX directory tree over several object stores."""

__version__ = "0.1.0"
