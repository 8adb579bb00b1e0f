"""Subcommands of ``omnifs``: one module per group, each with ``register(sub)``."""
