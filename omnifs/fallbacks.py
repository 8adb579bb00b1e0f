"""What each feature does with a store, decided from its capability record: the one place.

Features ask here instead of trying a store's ability and catching the error:

* copy: the store's server-side ``copy()`` (:func:`server_copy`,
  :func:`copies_in_store`) or bytes streamed through this machine;
* verification: the SHA-256 omnifs recorded, else a native checksum the store
  declares (:func:`native_expect`, :func:`shared_natives`), else omnifs hashes
  the bytes itself;
* tiers: the store's tier of the same access class, or skipped where the
  store has none (:func:`tier_for`).

The record is ``Provider.capabilities`` (``providers/base.py``), whose
values agree with the declared matrix (``providers/compat_cells.py``, checked
by ``tests/unit/test_compat_model.py``). ``providers.capabilities.forced_off``
turns an ability off on one provider, which is how the forced-fallback tests
(``tests/integration/test_fallbacks.py``) run each fallback on real servers.

Not decided here: conditional writes (the mount's write path sends no store
precondition; the catalog decides which version is current) and object lock
(no feature uses store-enforced locks yet).
"""

from __future__ import annotations

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
