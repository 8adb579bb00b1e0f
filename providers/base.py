"""The provider interface: a few blocking primitives every store implements.

Sketch of the contract every implementation honours (the conformance suite in
``tests/integration/test_conformance.py`` checks it):

* Keys are ``str`` relative to the provider's root (the URI's prefix), ``/``
  separated, never starting with ``/``; the provider maps them to its own
  object names (``prefix + "/" + key``).
* ``open_read(key, start, end)`` reads ``[start, end)``; the range is clipped to
  the object, so reading past the end gives ``b""``, never an error.
* ``write`` consumes a stream (``read(n)``) of ``size`` bytes, or of unknown
  size when ``size`` is None, and uploads in parallel parts above
  ``Capabilities.multipart_threshold``. The object becomes visible only once
  complete. ``metadata`` is stored verbatim as user metadata and returned by
  ``head``/``list``: keys are lowercase ``[a-z0-9_]`` (Azure cannot hold
  ``-``); omnifs's own keys are ``META_SHA256`` and ``META_MTIME``.
  ``content_type`` None means "guessed from the key's name"
  (:func:`content_type_for`, the one place that decides): every upload
  carries a type, whichever tool or path wrote it. ``copy`` keeps the
  source's type.
* ``write(..., if_absent=True)`` stores the object only if none is at the key,
  ``write(..., if_match=E)`` only if the object there has the token E
  (:meth:`Provider.match_token` of an earlier ``write``/``head``: the etag, a
  GCS generation); otherwise it raises :class:`~.errors.PreconditionFailed`
  and the object is left as it was. Stores whose
  ``Capabilities.conditional_writes`` is False may ignore both: callers ask
  ``omnifs.fallbacks.write_check`` instead of sending them there.
* ``list(..., metadata=False)`` lets a store whose listing lacks user metadata
  skip fetching it (S3 needs a HEAD per object); such entries say so with
  ``ObjectInfo.metadata_known = False`` (metadata and content type unknown,
  not empty). Stores whose listing carries metadata anyway return it.
* The stream ``open_read`` returns describes the object it reads: its
  ``info`` attribute (see :func:`read_info`) is an ``ObjectInfo`` of the
  *whole* object taken from the read response (whole size even for a ranged
  read, etag, last modified, and where ``metadata_known`` the user metadata
  and content type), or None when the response does not say. A copy gets
  the source's metadata with its bytes, one request instead of two.
* Every SDK error is raised as one of ``providers.errors``.

Optional abilities are flags in :class:`Capabilities`; callers check them and
fall back, providers never raise ``NotImplementedError``.
"""

from __future__ import annotations

import abc
import io
import mimetypes
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .errors import Conflict, NotFound, OmnifsError, PreconditionFailed, RootMissing, Unavailable

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from .capabilities import CompatTable
    from .registry import ProviderSettings

#: user-metadata key holding the hex SHA-256 of the content
META_SHA256 = "omnifs_sha256"
#: user-metadata key holding the file's mtime (seconds since the epoch, float as str)
META_MTIME = "omnifs_mtime"

#: omnifs's own bookkeeping objects live under this prefix, hidden by the mount
RESERVED_PREFIX = ".omnifs/"

MiB = 1024 * 1024

#: the type of an object whose name says nothing about its bytes
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: types of compressed files, which ``mimetypes`` reports as an encoding of the inner
#: type: a ``.tar.gz`` holds gzip bytes, and a ``Content-Encoding`` would make HTTP
#: clients unpack it on download
_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                  "xz": "application/x-xz", "compress": "application/x-compress",
                  "br": "application/x-brotli"}


def guess_content_type(name: str) -> str | None:
    """The type ``mimetypes`` guesses from the last part of ``name``, or None."""
    # only the file name, behind a "/": mimetypes reads "data:..." and "x:..." as URLs
    kind, encoding = mimetypes.guess_type("/" + posixpath.basename(name))
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, DEFAULT_CONTENT_TYPE)
    return kind


def content_type_for(key: str, given: str | None = None) -> str:
    """The content type an upload of ``key`` carries: ``given``, else guessed from its name."""
    return given or guess_content_type(key) or DEFAULT_CONTENT_TYPE


class WriteSource(Protocol):
    """What ``Provider.write`` uploads from: ``read(n)`` gives at most n bytes, b"" at the end.

    A file, a ``BytesIO``, another store's :class:`ReadStream`, a wrapper that
    counts or checks the bytes as they pass.
    """

    def read(self, size: int = -1, /) -> bytes: ...


class ReadStream(Protocol):
    """What ``Provider.open_read`` returns: the range's bytes in order, then b"".

    Every store's stream is a binary file object (a file, an ``io.RawIOBase``
    over the response body, a ``BytesIO``); most also have ``readinto``, and
    :func:`read_info` reads the ``info`` attribute they may carry.
    """

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None: ...


@dataclass(frozen=True)
class Capabilities:
    #: copy inside the store without the bytes passing through us
    server_side_copy: bool = True
    #: storage tiers ``set_tier`` accepts, empty when the store has none
    tiers: tuple[str, ...] = ()
    #: native checksums ``head`` reports in ``ObjectInfo.checksums`` (e.g. "md5", "crc32c")
    native_checksums: tuple[str, ...] = ()
    #: longest key (in UTF-8 bytes, prefix included) the store accepts
    max_key_bytes: int = 1024
    #: user metadata (names and values, in bytes) an object may carry: S3's 2 KiB is the least
    max_metadata_bytes: int = 2048
    #: objects at least this big are uploaded in parallel parts
    multipart_threshold: int = 16 * MiB
    #: size of each part of a multipart upload
    part_size: int = 16 * MiB
    #: the store keeps old versions of objects
    versioning: bool = False
    #: user metadata can be changed without rewriting the object
    metadata_update: bool = False
    #: copying an object onto itself (how metadata is changed) rewrites every byte
    #: server-side at about upload speed (S3 CopyObject); GCS rewrite and Azure copy
    #: within one account are metadata-only for unchanged content
    self_copy_rewrites: bool = False
    #: the store itself can lock an object against deletion until a date, and hold it
    #: (S3 Object Lock), through providers/retention.py
    object_lock: bool = False
    #: ``write`` honours ``if_absent``/``if_match`` atomically (S3 If-None-Match/If-Match,
    #: GCS ifGenerationMatch, Azure If-Match/If-None-Match, file:// link/compare under a lock)
    conditional_writes: bool = False


@dataclass
class ObjectInfo:
    key: str
    size: int = 0
    #: the store's last-modified time (seconds since the epoch)
    last_modified: float | None = None
    etag: str | None = None
    #: version id / generation where the store has one
    version: str | None = None
    #: native checksums, hex: {"md5": ..., "crc32c": ...}
    checksums: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tier: str | None = None
    content_type: str | None = None
    #: a "directory" (common prefix) from a non-recursive list
    is_prefix: bool = False
    #: False when the listing or read that produced this record did not fetch user
    #: metadata and content type: they are unknown, not absent (``head`` knows them)
    metadata_known: bool = True

    @property
    def sha256(self) -> str | None:
        return self.metadata.get(META_SHA256)

    @property
    def mtime(self) -> float | None:
        """The file's mtime: ours from metadata when present, else the store's."""
        raw = self.metadata.get(META_MTIME)
        if raw is not None:
            try:
                return float(raw)
            except ValueError:
                pass
        return self.last_modified


def read_info(stream: object) -> ObjectInfo | None:
    """What an ``open_read`` stream says about the object it reads (None: nothing)."""
    info = getattr(stream, "info", None)
    return info if isinstance(info, ObjectInfo) else None


class Provider(abc.ABC):
    """One store (bucket + prefix, container + prefix, or directory)."""

    #: URI scheme(s) this class serves, e.g. ("s3",)
    schemes: tuple[str, ...] = ()

    capabilities: Capabilities = Capabilities()

    #: what the store offers feature by feature (``omnifs compat``): a table of
    #: ``providers.compat_cells``, None for a store nobody described yet
    compat: CompatTable | None = None

    #: what the store's SDK and transport raise: :meth:`translate` makes each an omnifs error
    sdk_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, settings: ProviderSettings):
        from .registry import parse_uri

        self.settings = settings
        self.name = settings.name
        self.uri = settings.uri
        self.location = parse_uri(settings.uri)

    def object_name(self, key: str) -> str:
        """The store's name for ``key``: the URI's prefix joined with it, checked."""
        from .errors import InvalidInput

        if key.startswith("/"):
            key = key.lstrip("/")
        try:
            encoded = key.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("key is not valid UTF-8", provider=self.name,
                               key=key.encode("utf-8", "replace").decode()) from None
        if "\x00" in key:
            raise InvalidInput("key contains a NUL byte", provider=self.name, key=key)
        prefix = self.location.path if self.location.scheme != "file" else ""
        name = f"{prefix}/{key}" if prefix else key
        room = self.key_limit()
        if len(encoded) > room:
            limit = self.capabilities.max_key_bytes
            raise InvalidInput(f"key is {len(encoded) + limit - room} bytes long with its prefix; "
                               f"this store allows {limit}", provider=self.name,
                               key=key[:80] + "...")
        return name

    def key_limit(self) -> int:
        """The longest key (UTF-8 bytes) this store takes: its limit less the prefix keys get.

        omnifs.layout.object_key gives a path that does not fit another key.
        """
        prefix = self.location.path if self.location.scheme != "file" else ""
        return self.capabilities.max_key_bytes - (len(prefix.encode("utf-8")) + 1 if prefix else 0)

    def key_of(self, name: str) -> str:
        """Inverse of ``object_name``."""
        prefix = self.location.path if self.location.scheme != "file" else ""
        return name[len(prefix) + 1:] if prefix else name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.uri}>"

    # -- errors ----------------------------------------------------------
    def translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        """The omnifs error for ``exc``, an error of this store's SDK (omnifs errors as they are).

        Every provider raises it the same way, ``raise self.translate(e, key)
        from None`` or through :meth:`translating`: the SDK's text may hold a
        URL with a token in it (an Azure SAS), so tracebacks leave it out;
        ``__context__`` still holds it for :func:`~providers.errors.timed_out`.
        """
        if isinstance(exc, OmnifsError):
            return exc
        return self._translate(exc, key)

    def _translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        """The store's own reading of an SDK error (HTTP ones by ``providers.http_status``)."""
        return Unavailable(f"unexpected error ({type(exc).__name__})", provider=self.name, key=key)

    @contextmanager
    def translating(self, key: str | None) -> Iterator[None]:
        """Raise every SDK error (:attr:`sdk_errors`) of the block as :meth:`translate`'s."""
        try:
            yield
        except self.sdk_errors as e:
            raise self.translate(e, key) from None

    # -- the primitives ------------------------------------------------
    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Raise NotFound if absent."""

    @abc.abstractmethod
    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (a plain string prefix).

        With ``recursive=False``, ``prefix`` should end with ``/`` (or be empty)
        and the "subdirectories" come as ``is_prefix`` entries whose key ends
        with ``/``. Order is unspecified. Pagination is the provider's business.
        ``metadata=False``: user metadata and content type may be left out
        (entries then have ``metadata_known`` False) when fetching them costs
        more requests.
        """

    @abc.abstractmethod
    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        """A stream of bytes ``[start, end)``, clipped to the object.

        The stream's ``info`` attribute describes the whole object as the read
        found it, or is None (see the module docstring and :func:`read_info`).
        """

    @abc.abstractmethod
    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        """Upload; multipart in parallel above the threshold; atomic visibility.

        ``if_absent``/``if_match``: the precondition (module docstring); a
        refused one raises PreconditionFailed.
        """

    def match_token(self, info: ObjectInfo) -> str | None:
        """What ``write(if_match=...)`` compares for the object ``info`` describes: its etag."""
        return info.etag

    def check_unchanged(self, key: str, if_absent: bool, if_match: str | None) -> None:
        """Raise PreconditionFailed unless ``key`` is as the precondition expects, by a HEAD.

        Not atomic with the write after it: what a store uses for the part of a
        conditional write its API cannot make conditional (see each store's write).
        """
        if not if_absent and if_match is None:
            return
        try:
            info = self.head(key)
        except NotFound:
            if if_match is not None:
                raise refused(self.name, key, False) from None
            return
        if if_absent or if_match not in (info.etag, self.match_token(info)):
            raise refused(self.name, key, if_absent)

    @contextmanager
    def preconditioned(self, key: str, if_absent: bool, if_match: str | None) -> Iterator[None]:
        """A conditional write's refusal (a Conflict: 409 or 412; a 404 for an If-Match) as
        PreconditionFailed."""
        if if_absent and if_match is not None:
            from .errors import InvalidInput

            raise InvalidInput("a write is either if_absent or if_match, not both",
                               provider=self.name, key=key)
        try:
            yield
        except Conflict:
            if not (if_absent or if_match is not None):
                raise
            raise refused(self.name, key, if_absent) from None
        except NotFound as e:  # S3 answers an If-Match on a missing object with 404
            if if_match is None or isinstance(e, RootMissing):
                raise
            raise refused(self.name, key, False) from None

    @abc.abstractmethod
    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        """Server-side copy inside this store. ``metadata`` None keeps the source's."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""

    def set_tier(self, key: str, tier: str) -> None:
        from .errors import InvalidInput

        if tier not in self.capabilities.tiers:
            known = ", ".join(self.capabilities.tiers) or "none"
            raise InvalidInput(f"unknown tier {tier!r} (this store has: {known})",
                               provider=self.name, key=key)
        self._set_tier(key, tier)

    def _set_tier(self, key: str, tier: str) -> None:  # pragma: no cover - stores without tiers
        raise AssertionError("capabilities.tiers is empty")

    def restore(self, key: str, days: int = 1) -> bool:
        """Ask the store to make an archived object readable again (S3 restore for ``days``
        days, Azure rehydration to Hot); True when a restore was asked for or is under way,
        False when this store has no such thing (its objects always read)."""
        return False

    def _empty_read(self, key: str) -> ReadStream:
        """What ``open_read`` of an empty range gives: no bytes, but the object's ``info``
        (and NotFound for a missing key, like any read)."""
        empty = io.BytesIO(b"")
        empty.info = self.head(key)  # type: ignore[attr-defined]  # read_info's attribute
        return empty

    # -- conveniences built on the primitives ----------------------------
    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        with self.open_read(key, start, end) as f:
            return f.read()

    def write_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                    content_type: str | None = None, *, if_absent: bool = False,
                    if_match: str | None = None) -> ObjectInfo:
        return self.write(key, io.BytesIO(data), len(data), metadata, content_type,
                          if_absent=if_absent, if_match=if_match)

    def exists(self, key: str) -> bool:
        from .errors import NotFound

        try:
            self.head(key)
        except NotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - optional: a store with no connections keeps it
        """Release connections; the provider is not used afterwards."""


def refused(provider: str, key: str, if_absent: bool) -> PreconditionFailed:
    """The error of a conditional write the store (or the check before it) refused."""
    what = ("an object already exists there" if if_absent
            else "the object there changed since it was last seen")
    return PreconditionFailed(f"conditional write refused: {what}", provider=provider, key=key)


def probe(provider: Provider, key: str) -> None:
    """One request that moves no data: a HEAD of ``key``, a key that should not exist.

    Raises when the store does not answer properly. "Not found" is the
    expected answer, unless the bucket, container or directory itself is
    missing (:class:`RootMissing`): such a store can hold nothing.
    """
    try:
        provider.head(key)
    except RootMissing:
        raise
    except NotFound:
        pass
