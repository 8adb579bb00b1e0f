"""Storage tiers across stores: one vocabulary of access classes, each store's names for them.

Every store names its tiers differently (S3 ``STANDARD_IA``, GCS
``NEARLINE``, Azure ``Cool``) but they line up by the access pattern they are
priced for, which is also what their minimum storage durations say:

=========  ===========================  ========  ========  ==========
class      S3                           GCS       Azure     minimum
=========  ===========================  ========  ========  ==========
hot        STANDARD, INTELLIGENT_TIER.  STANDARD  Hot       none
cool       STANDARD_IA, ONEZONE_IA      NEARLINE  Cool      30 days
cold       GLACIER_IR                   COLDLINE  Cold      90 days
archive    GLACIER, DEEP_ARCHIVE        ARCHIVE   Archive   90-180 days
=========  ===========================  ========  ========  ==========

``translate`` keeps a tier the destination knows by the same name, else picks
the destination's first tier of the same class, else the nearest warmer
class it has (never a colder one: a colder tier can make the object slow or
costly to read back). Pure data and logic: no store is asked anything.
"""

from __future__ import annotations

from collections.abc import Sequence

#: access classes, warmest first
CLASSES = ("hot", "cool", "cold", "archive")

_CLASS_OF = {
    # S3 and S3-compatibles (MinIO's REDUCED_REDUNDANCY is a durability class, read like hot)
    "STANDARD": "hot", "INTELLIGENT_TIERING": "hot", "REDUCED_REDUNDANCY": "hot",
    "STANDARD_IA": "cool", "ONEZONE_IA": "cool",
    "GLACIER_IR": "cold",
    "GLACIER": "archive", "DEEP_ARCHIVE": "archive",
    # Google Cloud Storage ("STANDARD" above; MULTI_REGIONAL and REGIONAL are legacy names of it)
    "MULTI_REGIONAL": "hot", "REGIONAL": "hot", "DURABLE_REDUCED_AVAILABILITY": "hot",
    "NEARLINE": "cool", "COLDLINE": "cold", "ARCHIVE": "archive",
    # Azure Blob (access tiers are case-insensitive there)
    "HOT": "hot", "COOL": "cool", "COLD": "cold",
}


def tier_class(tier: str) -> str | None:
    """The access class of a store's tier name, or None for a name we do not know."""
    return _CLASS_OF.get(tier.upper())


def translate(tier: str, dst_tiers: Sequence[str]) -> str | None:
    """The destination's tier for an object stored in ``tier``, or None when it has none fitting."""
    for name in dst_tiers:
        if name.upper() == tier.upper():
            return name
    cls = tier_class(tier)
    if cls is None:
        return None
    by_class: dict[str, str] = {}
    for name in dst_tiers:
        c = tier_class(name)
        if c is not None:
            by_class.setdefault(c, name)
    for c in reversed(CLASSES[:CLASSES.index(cls) + 1]):  # same class, then warmer ones
        if c in by_class:
            return by_class[c]
    return None
