"""The compatibility model: what each store offers, feature by feature, as data.

A provider class declares a :class:`CompatTable` (``Provider.compat``): one
:class:`Cell` per feature of :data:`FEATURES`, each ``supported``,
``unsupported`` or ``degraded``, with the fallback omnifs uses, notes and
limits as numbers. The cells describe the real cloud; ``omnifs compat --probe``
(:mod:`.probe`) checks some of them against a live store and overlays what it
finds (:func:`overlay`): a real store's finding replaces the declared status,
an emulator's shortcoming is kept apart (source ``emulator``) so the matrix
never blames the cloud for its stand-in. An ability the user turned off
(``[providers.NAME] disable``, :data:`DISABLE`) is a cell of source ``config``.
Known behaviour differences of emulators and store versions are :class:`Quirk`
records (:data:`QUIRKS`).

``Capabilities`` (``providers/base.py``) stays the record features ask at
runtime; ``tests/unit/test_compat_model.py`` checks the two agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Provider

SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
DEGRADED = "degraded"
STATUSES = (SUPPORTED, DEGRADED, UNSUPPORTED)

#: where a cell's status comes from
DECLARED = "declared"
PROBED = "probed"
EMULATOR = "emulator"
#: turned off by the provider's ``disable`` key in omnifs.toml (:func:`disabled_cell`)
CONFIG = "config"
SOURCES = (DECLARED, PROBED, EMULATOR, CONFIG)

#: (feature id, title, what omnifs does where the store lacks it), in matrix order
FEATURES: tuple[tuple[str, str, str], ...] = (
    ("copy_same_bucket", "server-side copy, same bucket",
     "streamed through this machine, checked against SHA-256"),
    ("copy_cross_bucket", "server-side copy, cross-bucket",
     "streamed through this machine (omnifs copies server-side within one bucket only)"),
    ("copy_cross_region", "server-side copy, cross-region",
     "streamed through this machine"),
    ("multipart", "multipart / block / resumable upload",
     "one sequential upload"),
    ("conditional_writes", "conditional writes (If-None-Match / If-Match / generation)",
     "the catalog-side check: a HEAD compared with the catalog's etag just before the write "
     "(not atomic); a changed object is kept as NAME.conflict-PROVIDER-STAMP"),
    ("checksums", "native checksums (MD5, CRC32C, SHA-256, composite)",
     "SHA-256 computed by omnifs and kept in user metadata (omnifs_sha256)"),
    ("versioning", "object versioning",
     "old versions kept by omnifs (catalog history and snapshots)"),
    ("object_lock", "object lock / retention / immutability",
     "omnifs-enforced governance rules (placement policy), not store-enforced"),
    ("storage_classes", "storage classes / tiers, rehydration",
     "tier moves and tier costs skipped for this store"),
    ("user_metadata", "user metadata (size, key charset)",
     "a long path goes to a sidecar object when metadata is full (layout.placed_meta)"),
    ("key_limits", "key limits (length, characters)",
     "a path too long for a key is stored under a hashed key (layout.object_key)"),
    ("listing", "listing (delimiter, page size, consistency)",
     "recursive listing filtered by omnifs"),
    ("range_reads", "range reads", "whole-object reads"),
    ("sse", "server-side encryption options", "data at rest as the store keeps it"),
    ("presigned_urls", "presigned URLs", "omnifs hands out no URLs"),
)
FEATURE_IDS = tuple(f[0] for f in FEATURES)
TITLES = {f[0]: f[1] for f in FEATURES}
FALLBACKS = {f[0]: f[2] for f in FEATURES}


@dataclass(frozen=True)
class Cell:
    """One feature of one store."""

    status: str
    #: what omnifs does instead (empty for a supported feature: it uses the store's)
    fallback: str = ""
    source: str = DECLARED
    notes: str = ""
    #: limits as numbers, e.g. (("max_parts", 10000),); bytes unless the name says otherwise
    limits: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES or self.source not in SOURCES:
            raise ValueError(f"bad cell: {self.status!r} from {self.source!r}")

    def to_json(self) -> dict:
        return {"status": self.status, "fallback": self.fallback, "source": self.source,
                "notes": self.notes, "limits": dict(self.limits)}


def yes(notes: str = "", **limits: int) -> Cell:
    """A supported cell (as declared)."""
    return Cell(SUPPORTED, notes=notes, limits=tuple(limits.items()))


def no(feature: str, notes: str = "") -> Cell:
    """An unsupported cell, with the feature's fallback."""
    return Cell(UNSUPPORTED, FALLBACKS[feature], notes=notes)


def partly(feature: str, notes: str, fallback: str = "", **limits: int) -> Cell:
    """A degraded cell: the store offers less than the feature asks."""
    return Cell(DEGRADED, fallback or FALLBACKS[feature], notes=notes,
                limits=tuple(limits.items()))


@dataclass(frozen=True)
class CompatTable:
    """What one kind of store offers: a cell per feature, every feature present."""

    #: the store's product name ("Amazon S3", "Azure Blob Storage", ...)
    store: str
    cells: Mapping[str, Cell] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [f for f in FEATURE_IDS if f not in self.cells]
        extra = [f for f in self.cells if f not in TITLES]
        if missing or extra:
            raise ValueError(f"{self.store}: missing {missing}, unknown {extra}")

    def __iter__(self) -> Iterator[tuple[str, Cell]]:
        return ((f, self.cells[f]) for f in FEATURE_IDS)

    def cell(self, feature: str) -> Cell:
        return self.cells[feature]


@dataclass(frozen=True)
class Finding:
    """What one probe saw: the feature, the status the live store showed, and how."""

    feature: str
    status: str
    detail: str


@dataclass(frozen=True)
class Quirk:
    """A known behaviour difference of one store (or emulator) and version range."""

    #: the product it applies to, as :func:`emulator_of` / :data:`SERVERS` name it
    store: str
    versions: str
    feature: str
    behaviour: str
    workaround: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def overlay(cell: Cell, finding: Finding, emulator: str | None) -> Cell:
    """The cell once a probe has looked: confirmed, corrected, or an emulator's shortcoming."""
    if finding.status == cell.status:
        return dataclasses.replace(cell, source=PROBED, notes=_join(cell.notes, finding.detail))
    if emulator is not None and STATUSES.index(finding.status) > STATUSES.index(cell.status):
        return dataclasses.replace(
            cell, source=EMULATOR,
            notes=_join(cell.notes, f"{emulator} here: {finding.status} ({finding.detail})"))
    return Cell(finding.status, "" if finding.status == SUPPORTED else FALLBACKS[finding.feature],
                PROBED, _join(cell.notes, finding.detail), cell.limits)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b


#: Server-header prefixes -> (the product, whether it is an emulator, schemes it serves)
SERVERS: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
    ("Werkzeug/", "moto", True, ("s3", "minio")),
    ("BaseHTTP/", "gcp-storage-emulator", True, ("gs",)),
    ("Azurite-Blob/", "Azurite", True, ("az",)),
    ("AmazonS3", "Amazon S3", False, ("s3", "minio")),
    ("MinIO", "MinIO", False, ("s3", "minio")),
    ("UploadServer", "Google Cloud Storage", False, ("gs",)),
    ("Windows-Azure-Blob/", "Azure Blob Storage", False, ("az",)),
)


def server_product(scheme: str, server: str | None) -> tuple[str | None, bool]:
    """(product, is an emulator) for a store's reported Server header; (None, False) unknown."""
    for prefix, product, emulated, schemes in SERVERS:
        if server and scheme in schemes and server.startswith(prefix):
            return product, emulated
    return None, False


#: behaviour differences found on the servers omnifs is tested against, with the workaround
QUIRKS: tuple[Quirk, ...] = (
    Quirk("moto", "5.x", "checksums", "stores a PUT whose Content-MD5 does not match its body",
          "omnifs checks every byte it moves against SHA-256 itself (streams.Verifier)"),
    Quirk("moto", "5.x", "user_metadata", "accepts user metadata beyond S3's 2 KiB",
          "omnifs sizes metadata by the declared limit (layout.placed_meta), not by trying"),
    Quirk("moto", "5.x", "key_limits", "accepts keys longer than S3's 1024 bytes",
          "omnifs refuses keys over the declared limit before sending (Provider.object_name)"),
    Quirk("moto", "5.x", "credentials", "accepts any access key and secret",
          "credential errors are tested against a store that checks them"),
    Quirk("moto", "5.x", "conditional_writes",
          "ignores If-Match on CompleteMultipartUpload (If-None-Match is honoured)",
          "omnifs compares the etag with a HEAD before completing a multipart upload "
          "with If-Match (providers/s3.py)"),
    Quirk("gcp-storage-emulator", "2026.x", "conditional_writes",
          "ignores ifGenerationMatch preconditions: a create-only upload overwrites",
          "a GCS endpoint that is not *.googleapis.com gets no preconditions: writes "
          "take the catalog-side check (omnifs/fallbacks.py)"),
    Quirk("gcp-storage-emulator", "2026.x", "versioning",
          "keeps every generation of an object even with versioning off",
          "omnifs deletes by key and lists live objects only"),
    Quirk("gcp-storage-emulator", "2026.x", "storage_classes",
          "accepts a storage-class change but keeps STANDARD",
          "tier tests read the tier back only where the store keeps it"),
    Quirk("gcp-storage-emulator", "2026.x", "user_metadata",
          "accepts user metadata beyond GCS's 8 KiB", "as for moto: sized by the declared limit"),
    Quirk("gcp-storage-emulator", "2026.x", "sse",
          "accepts a CMEK key name (kmsKeyName) on uploads and rewrites but keeps and "
          "reports none", "tests check the key name omnifs sends, not what the store keeps"),
    Quirk("gcp-storage-emulator", "2026.x", "object_lock",
          "keeps a bucket retention policy but enforces none (a retained object can be "
          "deleted); keeps no object hold; lockRetentionPolicy is not implemented",
          "gov apply's bucket retention policy is tested by reading it back; legal holds on "
          "GCS are left to omnifs (docs/governance.md)"),
    Quirk("Azurite", "3.x", "object_lock",
          "answers immutability policies and legal holds with 'not implemented'",
          "gov apply does not set them: on Azure stores retention is omnifs-enforced "
          "(docs/governance.md)"),
    Quirk("Azurite", "3.x", "sse",
          "accepts an encryption scope (x-ms-encryption-scope) on writes but keeps and "
          "reports none", "tests check the scope omnifs sends, not what the store keeps"),
    Quirk("Azurite", "3.x", "api_version",
          "refuses requests whose x-ms-version is newer than the Azurite release knows",
          "start Azurite with --skipApiVersionCheck (tests/servers.py), or pin "
          "azure-storage-blob to a release Azurite knows"),
    Quirk("Azurite", "3.x", "versioning", "has no blob versioning: listings carry no version ids",
          "versioning is probed on the real account; omnifs keeps versions in its catalog"),
    Quirk("Azurite", "3.x", "user_metadata", "accepts user metadata beyond Azure's 8 KiB",
          "as for moto: sized by the declared limit"),
)


def quirks_for(product: str | None) -> tuple[Quirk, ...]:
    return tuple(q for q in QUIRKS if q.store == product)


#: what ``[providers.NAME] disable`` (and :func:`forced_off`) may turn off: name -> (the
#: ``Capabilities`` fields it empties, the matrix features it makes "disabled by config")
DISABLE: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "server_side_copy": ({"server_side_copy": False},
                         ("copy_same_bucket", "copy_cross_bucket", "copy_cross_region")),
    "conditional_writes": ({"conditional_writes": False}, ("conditional_writes",)),
    "checksums": ({"native_checksums": ()}, ("checksums",)),
    "tiers": ({"tiers": ()}, ("storage_classes",)),
    "object_lock": ({"object_lock": False}, ("object_lock",)),
}


def check_disable(value: object) -> tuple[str, ...]:
    """``[providers.NAME] disable`` as names of :data:`DISABLE`; ValueError says what is wrong
    in a phrase (the caller names file, section and key)."""
    import difflib

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of names, e.g. [\"conditional_writes\"], "
                         f"got {value!r}")
    for name in value:
        if name not in DISABLE:
            close = difflib.get_close_matches(name, list(DISABLE), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(DISABLE)
            raise ValueError(f"unknown capability {name!r} ({hint})")
    return tuple(value)


def disabled_cell(feature: str) -> Cell:
    """A matrix cell the user turned off: unsupported, with the fallback omnifs then uses."""
    return Cell(UNSUPPORTED, FALLBACKS[feature], CONFIG, "disabled by config")


def disabled_features(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The matrix features ``disable = names`` turns off."""
    return tuple(f for n in names for f in DISABLE[n][1])


def forced_off(provider: Provider, *features: str) -> Provider:
    """Turn runtime capabilities off on one open provider (names of :data:`DISABLE`).

    What a user's store lacking the feature looks like to every caller:
    ``open_provider`` applies ``[providers.NAME] disable`` with it, and the
    forced-fallback tests use it against real servers.
    """
    caps = provider.capabilities
    for f in features:
        if f not in DISABLE:
            raise ValueError(f"cannot force off {f!r}: one of {', '.join(DISABLE)}")
        caps = dataclasses.replace(caps, **DISABLE[f][0])
    provider.capabilities = caps
    return provider
