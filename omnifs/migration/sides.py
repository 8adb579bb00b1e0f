"""The two sides of a plan, open: the stores, the tree prefixes, the saved-copy keys.

``migrate run``, ``verify``, ``rollback`` and ``finalize`` open a plan's places
the same way (:func:`open_sides`): the configured provider of the recorded
name when it still points at the recorded URI, else a provider built from
the URI, and the keys recorded in the plan (absolute, so a plan made from a
relative local path runs from any directory).
"""

from __future__ import annotations

from dataclasses import dataclass

from omnifs.catalog.migrations import migration_id
from omnifs.providers import RESERVED_PREFIX, InvalidInput, Provider, ProviderSettings

from ..targets import Resolver
from ..tree_copy import dir_prefix
from .planfile import MigrationPlan, Place


@dataclass(frozen=True)
class Sides:
    """Both stores of a plan, open, and the prefixes its entry keys are relative to."""

    src: Provider
    src_prefix: str
    dst: Provider
    dst_prefix: str

    def src_key(self, key: str) -> str:
        return self.src_prefix + key

    def dst_key(self, key: str) -> str:
        return self.dst_prefix + key

    def saved_key(self, mid: str, key: str) -> str:
        """Where a run keeps the destination object at ``key`` before replacing it."""
        return saved_key(self.dst_prefix, mid, key)

    def saved_prefix(self, mid: str) -> str:
        return saved_prefix(self.dst_prefix, mid)

    @classmethod
    def of(cls, plan: MigrationPlan, src: Provider, dst: Provider) -> Sides:
        return cls(src, dir_prefix(plan.src.key), dst, dir_prefix(plan.dst.key))


def open_place(place: Place, resolver: Resolver) -> Provider:
    """The provider a plan's side was resolved to: the configured one of that name, else
    its URI; a configured name that now points elsewhere is refused."""
    settings = resolver.config.providers.get(place.provider)
    if settings is not None:
        if settings.uri != place.uri:
            raise InvalidInput(f"provider {place.provider!r} is now {settings.uri}; the plan "
                               f"was made for {place.uri}")
        return resolver.named(place.provider)
    if place.given.startswith(f"{place.provider}:") and "://" not in place.given:
        raise InvalidInput(f"unknown provider {place.provider!r}: the plan names it; add it "
                           "to the config again or make a new plan")
    return resolver.provider(ProviderSettings(name=place.provider, uri=place.uri))


def open_sides(plan: MigrationPlan, resolver: Resolver) -> Sides:
    return Sides.of(plan, open_place(plan.src, resolver), open_place(plan.dst, resolver))


def plan_id(plan: MigrationPlan) -> str:
    """The migration id the plan runs as (see :func:`migration_id`)."""
    return migration_id(plan.checksum())


def saved_prefix(dst_prefix: str, mid: str) -> str:
    """Where a run keeps the destination objects it replaces: inside the destination tree,
    under its reserved ``.omnifs/`` (which plans, copies and verify never list as data), so
    a bare ``file://`` destination keeps them beside the tree, never at the filesystem root.
    """
    return f"{dir_prefix(dst_prefix)}{RESERVED_PREFIX}migrations/{mid}/"


def saved_key(dst_prefix: str, mid: str, rel: str) -> str:
    """The saved copy of the destination object at ``rel`` (relative to the tree)."""
    return saved_prefix(dst_prefix, mid) + rel
