"""One listed object as a migration plan keeps it: a small slotted record, no dicts.

A 100,000-object plan holds both sides' listings at once. An ``ObjectInfo``
(a dataclass with a dict of checksums and a dict of metadata) costs about
1,500 bytes a pair of sides; this record keeps only what a plan compares and
records, each a plain slot: the key (the relative key, the very string the
listing dict holds), size, last-modified, etag, the native checksums (md5,
crc32c: one string each, the S3 etag and md5 one string when they are the
same), the SHA-256 and mtime omnifs writes in user metadata, the tier
(interned). ``checksums`` and ``metadata`` are built when asked for, as
:func:`omnifs.sync_plan.compare` and a plan entry ask: once or twice per object.
"""

from __future__ import annotations

import sys

from omnifs.providers import META_MTIME, META_SHA256, ObjectInfo


class Listed:
    """What a plan knows of one listed object (the attributes ``ObjectInfo`` names them by)."""

    __slots__ = ("key", "size", "last_modified", "etag", "md5", "crc32c", "other", "sha256",
                 "meta_mtime", "tier", "metadata_known")

    def __init__(self, key: str, size: int, last_modified: float | None, etag: str | None,
                 checksums: dict[str, str], sha256: str | None, meta_mtime: str | None,
                 tier: str | None, metadata_known: bool):
        self.key = key
        self.size = size
        self.last_modified = last_modified
        self.etag = etag
        md5 = checksums.get("md5")
        self.md5 = etag if md5 is not None and md5 == etag else md5
        self.crc32c = checksums.get("crc32c")
        #: any other algorithm a store reports (none of ours today), kept as given
        self.other = {k: v for k, v in checksums.items() if k not in ("md5", "crc32c")} or None
        self.sha256 = sha256
        self.meta_mtime = meta_mtime
        self.tier = None if tier is None else sys.intern(tier)
        self.metadata_known = metadata_known

    @classmethod
    def of(cls, rel: str, info: ObjectInfo) -> Listed:
        """``info`` (a listing's or a head's) under its relative key ``rel``."""
        return cls(rel, info.size, info.last_modified, info.etag, info.checksums,
                   info.metadata.get(META_SHA256), info.metadata.get(META_MTIME), info.tier,
                   info.metadata_known)

    @property
    def checksums(self) -> dict[str, str]:
        out = dict(self.other) if self.other else {}
        if self.md5 is not None:
            out["md5"] = self.md5
        if self.crc32c is not None:
            out["crc32c"] = self.crc32c
        return out

    @property
    def metadata(self) -> dict[str, str]:
        """The user metadata a plan keeps (omnifs's SHA-256 and mtime), as ``ObjectInfo``'s."""
        out = {}
        if self.sha256 is not None:
            out[META_SHA256] = self.sha256
        if self.meta_mtime is not None:
            out[META_MTIME] = self.meta_mtime
        return out

    @property
    def mtime(self) -> float | None:
        """The file's mtime: ours from metadata when present, else the store's."""
        if self.meta_mtime is not None:
            try:
                return float(self.meta_mtime)
            except ValueError:
                pass
        return self.last_modified

    def with_known(self, sha256: str | None, checksums: dict[str, str]) -> Listed:
        """This object with an older inventory's SHA-256 (where it has none) and checksums
        (its own win)."""
        return Listed(self.key, self.size, self.last_modified, self.etag,
                      {**checksums, **self.checksums},
                      self.sha256 if self.sha256 is not None or not sha256 else sha256,
                      self.meta_mtime, self.tier, self.metadata_known)
