"""What each feature does with a store, decided from its capability record: the one place.

Features ask here instead of trying a store's ability and catching the error:

* copy: the store's server-side ``copy()`` (:func:`server_copy`,
  :func:`copies_in_store`) or bytes streamed through this machine;
* verification: the SHA-256 omnifs recorded, else a native checksum the store
  declares (:func:`native_expect`, :func:`shared_natives`), else omnifs hashes
  the bytes itself;
* tiers: the store's tier of the same access class, or skipped where the
  store has none (:func:`tier_for`);
* writing a file's object (the mount's publish, the daemon's replicate):
  the store's conditional write where it has one (``if_absent`` for a first
  object, ``if_match`` the etag the catalog recorded when overwriting), else
  the catalog-side check: a HEAD compared with what the catalog recorded,
  just before the write (:func:`write_check`, :func:`checked_write`). Either
  way a refusal is PreconditionFailed; what it means is omnifs/conflicts.py's.

The record is ``Provider.capabilities`` (``providers/base.py``), whose
values agree with the declared matrix (``providers/compat_cells.py``, checked
by ``tests/unit/test_compat_model.py``). ``providers.capabilities.forced_off``
turns an ability off on one provider: ``open_provider`` applies a provider's
``disable`` key of omnifs.toml with it, and the forced-fallback tests
(``tests/integration/test_fallbacks.py``, ``tests/mount/test_overwrite_behind.py``,
``tests/mount/test_gov_lock_disabled.py``) run each fallback on real servers.

Object lock is decided in ``providers/retention.py`` (``unsupported``): the
store's lock where the record says ``object_lock``, else the rules omnifs
enforces itself, and ``gov apply`` and the compliance report say which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omnifs.policy import tiers
from omnifs.providers import ObjectInfo, Provider

from .same_store import same_store

#: native checksums in the order a check prefers them: crc32c costs ~30 GB/s of CPU
#: where md5 costs 0.7 GB/s, and both catch what a read can suffer
NATIVE_ORDER = ("crc32c", "md5")


def copies_in_store(p: Provider) -> bool:
    """Can ``p`` copy one of its objects to another key without the bytes leaving it?"""
    return p.capabilities.server_side_copy


def server_copy(src: Provider, dst: Provider, allowed: bool = True) -> bool:
    """Copy ``src`` -> ``dst`` inside the store (else stream): allowed, one store, able."""
    return allowed and copies_in_store(src) and same_store(src, dst)


def records_in_place(dst: Provider) -> bool:
    """Can ``dst`` add a SHA-256 to an uploaded object without uploading it again?"""
    return dst.capabilities.metadata_update or dst.capabilities.server_side_copy


def native_expect(src: Provider, info: ObjectInfo) -> dict[str, str]:
    """The check the bytes of ``info`` (an object of ``src``) are read against.

    The SHA-256 omnifs recorded; else the cheapest native checksum ``src``
    declares and reported; else nothing (the reader hashes the bytes itself).
    """
    if info.sha256:
        return {"sha256": info.sha256}
    for algo in shared_natives(src):
        if info.checksums.get(algo):
            return {algo: info.checksums[algo]}
    return {}


def shared_natives(*stores: Provider) -> tuple[str, ...]:
    """The native checksums every one of ``stores`` declares, cheapest first."""
    return tuple(a for a in NATIVE_ORDER
                 if all(a in p.capabilities.native_checksums for p in stores))


def tier_for(dst: Provider, tier: str) -> str | None:
    """``dst``'s tier of the same access class as ``tier``; None: skip (no such tier, or
    ``dst`` has no tiers at all)."""
    if not dst.capabilities.tiers:
        return None
    return tiers.translate(tier, dst.capabilities.tiers)


@dataclass(frozen=True)
class WriteCheck:
    """What a write of a file's object expects at its key (nothing: an unconditional write)."""

    #: no object is expected there
    if_absent: bool = False
    #: the etag the catalog recorded for the object there
    if_match: str | None = None
    #: the store cannot make the write conditional: a HEAD compares first (not atomic)
    compare_first: bool = False

    @property
    def conditional(self) -> bool:
        return self.if_absent or self.if_match is not None


def write_check(p: Provider, first: bool, etag: str | None) -> WriteCheck:
    """The check of a write to ``p``: ``first`` (no object expected at the key), else
    ``etag`` the catalog recorded for the object there (None: unknown, nothing to check)."""
    if not first and etag is None:
        return WriteCheck()
    return WriteCheck(first, None if first else etag,
                      compare_first=not p.capabilities.conditional_writes)


def checked_write(p: Provider, key: str, check: WriteCheck,
                  write: Callable[..., ObjectInfo]) -> ObjectInfo:
    """``write(**kw)`` with the check: the store's precondition keywords, or a HEAD first.

    Raises PreconditionFailed when the object at ``key`` is not the expected one.
    """
    if not check.conditional:
        return write()
    if check.compare_first:
        p.check_unchanged(key, check.if_absent, check.if_match)
        return write()
    return write(if_absent=check.if_absent, if_match=check.if_match)
