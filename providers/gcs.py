"""Google Cloud Storage (``gs://bucket/prefix``) through google-cloud-storage.

Choices worth knowing:

* One ``storage.Client`` per provider; its authorised ``requests`` session
  is shared by every call, so connections are reused.
* Reads are one ranged ``GET ?alt=media`` streamed from the socket: the first
  byte is returned before the rest has arrived, memory stays at one chunk,
  and a server that stops answering times out after ``settings.timeout``.
* Writes: one multipart request up to the SDK's 8 MiB limit, sent past the
  SDK's upload layer (providers/gcswire.py: its CPU was most of a small
  copy's; any answer but success falls back to the SDK), above that a
  resumable upload in ``part_size`` chunks (GCS has no parallel parts on its
  JSON API). A resumable upload is invisible until its
  last chunk, so nothing partial is ever seen.
* ``settings.timeout`` is how long the store may stay silent (connecting, or
  no byte for that long); a timed-out attempt is not retried (a silent store
  is down), so one call fails within ``timeout``. Quick failures (refused
  connections, 429/5xx) are retried for at most 2 s (the SDK retries by
  deadline, not by count).

Caveat: gcp-storage-emulator keeps ``STANDARD`` whatever ``set_tier`` sends,
and ignores pagination parameters (it returns everything in one page).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import io
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_transient_error
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

try:  # the SDK's upload errors carry the HTTP response
    from google.resumable_media import common as rm_common
except ImportError:  # pragma: no cover - bundled with google-cloud-storage 3
    rm_common = None  # type: ignore[assignment]  # the module, or None without it

from . import compat_cells, encryption
from .base import (
    Capabilities,
    MiB,
    ObjectInfo,
    Provider,
    ReadStream,
    WriteSource,
    content_type_for,
    refused,
)
from .errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    OmnifsError,
    PermissionDenied,
    RootMissing,
    Unavailable,
    timed_out,
    transport_error,
)
from .gcswire import Fallback, GCSWire
from .http_status import RANGE_NOT_SATISFIABLE, status_error
from .metered import note_retry
from .streams import read_full, whole_size

if TYPE_CHECKING:
    from .registry import ProviderSettings

TIERS = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
#: resumable chunk size: a multiple of 256 KiB, large for throughput, bounded memory
PART_SIZE = 64 * MiB
#: the SDK sends one multipart request up to this size, resumable above
SIMPLE_LIMIT = 8 * MiB
READ_CHUNK = 1 * MiB
_PLACEHOLDER_PROJECT = "omnifs-no-project"

#: everything the SDK and its transport raise; translated by ``GCSProvider.translate``
_SDK_ERRORS: tuple[type[BaseException], ...] = (
    gexc.GoogleAPIError, auth_exc.GoogleAuthError, requests.RequestException,
    urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError,
) + ((rm_common.InvalidResponse, rm_common.DataCorruption) if rm_common is not None else ())


def _retryable(e: Exception) -> bool:
    """The SDK's transient errors, except a timeout (a store silent that long is down)."""
    return if_transient_error(e) and not timed_out(e)


def _google_endpoint(endpoint: str | None) -> bool:
    """Is ``endpoint`` (None: the default) Google's own API, not an emulator or a stand-in?"""
    if not endpoint:
        return True
    host = urlsplit(endpoint if "//" in endpoint else "//" + endpoint).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


def _hex_of_b64(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value).hex()
    except (ValueError, TypeError):
        return None


class GCSProvider(Provider):
    """A bucket (and optional prefix) on Google Cloud Storage or its emulator."""

    schemes = ("gs",)

    capabilities = Capabilities(
        tiers=TIERS, native_checksums=("md5", "crc32c"), max_metadata_bytes=8192,
        # no parallel parts on the JSON API: a resumable upload in PART_SIZE chunks
        multipart_threshold=SIMPLE_LIMIT, part_size=PART_SIZE,
        server_side_copy=True, max_key_bytes=1024, versioning=False, metadata_update=False,
        conditional_writes=True)
    sdk_errors = _SDK_ERRORS
    compat = compat_cells.GCS

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.bucket_name = self.location.bucket
        self.timeout = float(settings.timeout)
        # (connect, read) for every request the SDK makes
        self._req_timeout = (self.timeout, self.timeout)
        setting = encryption.of("gs", settings.extra)
        #: the store's CMEK (providers/encryption.py), on every upload and rewrite
        self.kms_key_name = setting.key if setting else None
        # deadline-bounded retries: about four quick attempts (0, .2, .6, 1.4 s), never
        # minutes; callers above back off further on Throttled/Unavailable
        self._retry = Retry(predicate=_retryable, initial=0.2, maximum=1.0,
                            multiplier=2.0, timeout=min(self.timeout, 2.0),
                            on_error=lambda _e: note_retry())
        part = int(settings.extra.get("part_size", PART_SIZE))
        if part <= 0 or part % (256 * 1024):
            raise InvalidInput("part_size must be a positive multiple of 256 KiB",
                               provider=self.name)
        self.part_size = part
        self.client = self._make_client(settings)
        self.bucket = self.client.bucket(self.bucket_name)
        if not _google_endpoint(settings.endpoint or os.environ.get("STORAGE_EMULATOR_HOST")):
            # gcp-storage-emulator ignores ifGenerationMatch (capabilities.QUIRKS): callers
            # take the catalog-side check instead (omnifs.fallbacks.write_check)
            self.capabilities = dataclasses.replace(self.capabilities, conditional_writes=False)
        self._wire = GCSWire(self.client, self.bucket_name)

    # -- construction -----------------------------------------------------
    def _make_client(self, settings: ProviderSettings) -> storage.Client:
        """Settings first, then the SDK's own conventions (emulator env, ADC)."""
        project = settings.extra.get("project")
        try:
            if settings.endpoint:
                return storage.Client(project=project or _PLACEHOLDER_PROJECT,
                                      credentials=AnonymousCredentials(),
                                      client_options={
                                          "api_endpoint": settings.endpoint.rstrip("/")})
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                return storage.Client(project=project or _PLACEHOLDER_PROJECT,
                                      credentials=AnonymousCredentials())
            if settings.credentials_file:
                from google.oauth2 import service_account

                path = os.path.expanduser(settings.credentials_file)
                try:
                    creds = service_account.Credentials.from_service_account_file(path)
                except (OSError, ValueError, KeyError) as e:
                    reason = (e.strerror if isinstance(e, OSError) and e.strerror
                              else type(e).__name__)
                    raise InvalidInput(
                        f"credentials_file {path!r} is not a readable service-account JSON "
                        f"({reason})", provider=self.name) from None
                return storage.Client(project=project or creds.project_id or _PLACEHOLDER_PROJECT,
                                      credentials=creds)
            return storage.Client(project=project)
        except auth_exc.DefaultCredentialsError:
            raise PermissionDenied(
                "no Google credentials found: set credentials_file, or "
                "GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`",
                provider=self.name) from None
        except OmnifsError:
            raise
        except (ValueError, TypeError, auth_exc.GoogleAuthError) as e:  # e.g. a bad endpoint
            raise InvalidInput(f"cannot set up the GCS client: {type(e).__name__}",
                               provider=self.name) from None

    # -- errors -------------------------------------------------------------
    def _translate(self, e: BaseException, key: str | None) -> OmnifsError:
        """A google/requests error as an omnifs error."""
        if isinstance(e, gexc.RetryError) and e.cause is not None:
            return self.translate(e.cause, key)
        where: dict[str, Any] = {"provider": self.name, "key": key}
        status: int | None = None
        if isinstance(e, gexc.GoogleAPICallError):
            status = e.code
        if status is None and rm_common is not None and isinstance(e, rm_common.InvalidResponse):
            status = getattr(e.response, "status_code", None)
        if isinstance(e, requests.HTTPError) and e.response is not None:
            status = e.response.status_code
        if status is not None:  # an answer (a 504 included), never a silent store
            if status == 404 and "bucket" in str(getattr(e, "message", "") or e).lower():
                return self._bucket_missing(key)
            return status_error(status, **where)
        if timed_out(e):
            return transport_error(e, self.timeout, **where)
        if rm_common is not None and isinstance(e, rm_common.DataCorruption):
            return IntegrityError("checksum mismatch in transfer", **where)
        if isinstance(e, (auth_exc.RefreshError, auth_exc.DefaultCredentialsError)):
            return PermissionDenied("credentials refused or missing", **where)
        return transport_error(e, self.timeout, **where)

    def _bucket_missing(self, key: str | None) -> RootMissing:
        return RootMissing(f"bucket {self.bucket_name!r} does not exist", provider=self.name,
                        key=key)

    # -- helpers ------------------------------------------------------------
    def _info(self, blob: storage.Blob, key: str | None = None) -> ObjectInfo:
        checksums = {}
        for name, raw in (("md5", blob.md5_hash), ("crc32c", blob.crc32c)):
            value = _hex_of_b64(raw)
            if value:
                checksums[name] = value
        updated = blob.updated
        return ObjectInfo(
            key=key if key is not None else self.key_of(blob.name),
            size=int(blob.size or 0),
            last_modified=updated.timestamp() if updated else None,
            etag=blob.etag,
            version=str(blob.generation) if blob.generation is not None else None,
            checksums=checksums,
            metadata=dict(blob.metadata or {}),
            tier=blob.storage_class,
            content_type=blob.content_type,
        )

    def _blob(self, key: str) -> storage.Blob:
        # the one place objects are named: every upload and rewrite gets the store's CMEK
        return self.bucket.blob(self.object_name(key), chunk_size=self.part_size,
                                kms_key_name=self.kms_key_name)

    # -- primitives -----------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        blob = self._blob(key)
        with self.translating(key):
            blob.reload(timeout=self._req_timeout, retry=self._retry)
        return self._info(blob, key)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        # the listing carries metadata at no extra request: always returned
        name_prefix = self.object_name(prefix)
        try:
            pages = self.client.list_blobs(
                self.bucket_name, prefix=name_prefix or None,
                delimiter=None if recursive else "/", page_size=1000,
                timeout=self._req_timeout, retry=self._retry).pages
            for page in pages:
                for blob in page:
                    if not recursive and blob.name == name_prefix:
                        continue  # a "directory marker" object equal to the prefix itself
                    yield self._info(blob)
                for sub in getattr(page, "prefixes", ()):
                    yield ObjectInfo(key=self.key_of(sub), is_prefix=True)
        except _SDK_ERRORS as e:
            if isinstance(e, gexc.NotFound):  # a listing's 404 is the bucket's
                raise self._bucket_missing(prefix) from None
            raise self.translate(e, prefix) from None

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        start = max(0, start)
        if end is not None and end <= start:
            return self._empty_read(key)
        name = self.object_name(key)
        url = (f"{self.client.api_endpoint}/download/storage/v1/b/"
               f"{quote(self.bucket_name, safe='')}/o/{quote(name, safe='')}?alt=media")
        last = "" if end is None else str(end - 1)
        headers = {"Range": f"bytes={start}-{last}", "Accept-Encoding": "identity"}
        session = self.client._http  # the SDK's authorised, pooled session
        with self.translating(key):
            resp = session.request("GET", url, headers=headers, stream=True,
                                   timeout=self._req_timeout)
        if resp.status_code == RANGE_NOT_SATISFIABLE:  # start at or past the end: nothing
            resp.close()
            return _GCSStream(None, self, key)
        if resp.status_code not in (200, 206):
            status = resp.status_code
            body = resp.text[:300] if status == 404 else ""
            resp.close()
            raise self.translate(requests.HTTPError(body, response=resp), key)
        expected: int | None = None
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit():
            expected = int(length)
        stream = _GCSStream(resp, self, key, expected)
        stream.info = self._read_info(key, resp)
        if resp.status_code == 200 and start > 0:
            # a server that ignored Range: skip to start ourselves
            stream.skip(start)
            stream.limit(None if end is None else end - start)
        return stream

    def _read_info(self, key: str, resp: requests.Response) -> ObjectInfo:
        """The object as a media download's headers describe it.

        User metadata counts as known only when ``x-goog-meta-*`` headers came
        (a response without any cannot tell "none" from "not sent").
        """
        h = {k.lower(): v for k, v in resp.headers.items()}
        meta = {k[len("x-goog-meta-"):]: v for k, v in h.items() if k.startswith("x-goog-meta-")}
        checksums = {}
        for part in h.get("x-goog-hash", "").split(","):
            algo, _, value = part.strip().partition("=")
            hexed = _hex_of_b64(value) if algo in ("md5", "crc32c") else None
            if hexed:
                checksums[algo] = hexed
        size = whole_size(h.get("content-range"), h.get("x-goog-stored-content-length")
                          or h.get("content-length"))
        return ObjectInfo(key=key, size=size or 0, etag=h.get("etag"),
                          version=h.get("x-goog-generation"), checksums=checksums, metadata=meta,
                          content_type=h.get("content-type"), metadata_known=bool(meta))

    def match_token(self, info: ObjectInfo) -> str | None:
        """A GCS write is conditional on the object's generation (``ifGenerationMatch``)."""
        return info.version

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        with self.preconditioned(key, if_absent, if_match):
            generation = self._generation(key, if_absent, if_match)
            return self._write(key, stream, size, metadata, content_type, generation)

    def _generation(self, key: str, if_absent: bool, if_match: str | None) -> int | None:
        """``ifGenerationMatch`` for a precondition: 0 (absent), the generation, or None.

        ``if_match`` is a generation (:meth:`match_token`); an etag recorded
        elsewhere is compared by a HEAD and its generation sent.
        """
        if if_absent:
            return 0
        if if_match is None:
            return None
        if if_match.isdigit():
            return int(if_match)
        try:
            info = self.head(key)
        except NotFound:
            raise refused(self.name, key, False) from None
        if info.etag != if_match or info.version is None:
            raise refused(self.name, key, False)
        return int(info.version)

    def _write(self, key: str, stream: WriteSource, size: int | None,
               metadata: dict[str, str] | None, content_type: str | None,
               generation: int | None) -> ObjectInfo:
        blob = self._blob(key)
        if metadata:
            blob.metadata = dict(metadata)
        source: WriteSource = _Prepend(b"", stream)
        if size is None:
            # small objects of unknown size: one request instead of a resumable session
            head = read_full(stream, SIMPLE_LIMIT + 1)
            if len(head) <= SIMPLE_LIMIT:
                source, size = io.BytesIO(head), len(head)
            else:
                source = _Prepend(head, stream)
        if size is not None and size <= SIMPLE_LIMIT:
            data = read_full(source, size)
            # the fast path sends neither a precondition nor a CMEK: those go through the SDK
            plain = generation is None and self.kms_key_name is None
            done = self._upload_small(blob, key, data, size, content_type) if plain else None
            if done is not None:
                return done
            source = io.BytesIO(data)
        with self.translating(key):
            blob.upload_from_file(source, size=size,
                                  content_type=content_type_for(key, content_type),
                                  rewind=False, timeout=self._req_timeout, retry=self._retry,
                                  if_generation_match=generation)
        return self._info(blob, key)

    def _upload_small(self, blob: storage.Blob, key: str, data: bytes, size: int,
                      content_type: str | None) -> ObjectInfo | None:
        """One multipart request past the SDK's upload layer (providers/gcswire.py); None
        when the SDK must send it (a short stream, any answer but success)."""
        if len(data) != size:
            return None
        try:
            resource = self._wire.upload(blob.name, data, blob.metadata,
                                         content_type_for(key, content_type), self._req_timeout)
        except Fallback:
            return None
        except _SDK_ERRORS as e:  # a timeout: the store is silent
            raise self.translate(e, key) from None
        blob._set_properties(resource)
        return self._info(blob, key)

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        src = self._blob(src_key)
        dst = self._blob(dst_key)
        if metadata is not None:
            # a destination resource replaces the source's: keep its content type
            info = self.head(src_key)
            dst.metadata = dict(metadata)
            if info.content_type:
                dst.content_type = info.content_type
        token = None
        key = src_key
        try:
            while True:
                token, _done, _total = dst.rewrite(src, token=token, timeout=self._req_timeout,
                                                   retry=self._retry)
                if token is None:
                    break
        except _SDK_ERRORS as e:
            if isinstance(e, gexc.NotFound) and "bucket" not in str(e).lower():
                raise NotFound("copy source does not exist", provider=self.name, key=key) from None
            raise self.translate(e, f"{src_key} -> {dst_key}") from None
        if metadata is not None and dict(dst.metadata or {}) != dict(metadata):
            # stores that merge rather than replace metadata on rewrite
            dst.metadata = dict(metadata)
            with self.translating(dst_key):
                dst.patch(timeout=self._req_timeout, retry=self._retry)
        return self._info(dst, dst_key)

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete(timeout=self._req_timeout, retry=self._retry)
        except _SDK_ERRORS as e:
            if not isinstance(e, gexc.NotFound) or "bucket" in str(e).lower():
                raise self.translate(e, key) from None

    def _set_tier(self, key: str, tier: str) -> None:
        with self.translating(key):
            self._blob(key).update_storage_class(tier, timeout=self._req_timeout, retry=self._retry)

    def close(self) -> None:
        with contextlib.suppress(*_SDK_ERRORS):  # closing must never fail the caller
            self.client.close()





class _Prepend(io.RawIOBase):
    """Bytes already read, then the rest of the stream, in full reads.

    The SDK's resumable upload takes a short read for the end of the data, so
    a pipe that returns less than asked would silently truncate the object.
    """

    def __init__(self, head: bytes, rest: WriteSource):
        self._head = memoryview(head)
        self._rest = rest
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out = bytes(self._head) + self._rest.read()
                self._head = memoryview(b"")
            else:
                out = bytes(self._head[:n])
                self._head = self._head[n:]
                if len(out) < n:
                    out += read_full(self._rest, n - len(out))
        elif n is None or n < 0:
            out = self._rest.read()
        else:
            out = read_full(self._rest, n)
        self._pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class _GCSStream(io.RawIOBase):
    """The body of a ranged GET, read from the socket as the caller asks.

    Any transport failure (server gone, read timeout, short body) becomes
    Unavailable at once; ``requests``'s read timeout bounds every wait.
    """

    def __init__(self, resp: requests.Response | None, provider: GCSProvider, key: str,
                 expected: int | None = None):
        #: what the response said about the object (``Provider.open_read``)
        self.info: ObjectInfo | None = None
        self._resp = resp
        self._provider = provider
        self._key = key
        self._expected = expected
        self._got = 0
        self._left: int | None = None  # only when we had to clip ourselves

    def readable(self) -> bool:
        return True

    def skip(self, n: int) -> None:
        while n > 0:
            chunk = self.read(min(n, READ_CHUNK))
            if not chunk:
                break
            n -= len(chunk)

    def limit(self, n: int | None) -> None:
        self._left = n

    def read(self, n: int = -1) -> bytes:
        if self._resp is None or self.closed:
            return b""
        if n is None or n < 0:
            return self.readall()
        if self._left is not None:
            n = min(n, self._left)
        if n == 0:
            return b""
        try:
            data = self._resp.raw.read(n, decode_content=True)
        except _SDK_ERRORS as e:
            self.close()
            raise self._provider.translate(e, self._key) from None
        if not data and self._expected is not None and self._got < self._expected:
            self.close()
            raise Unavailable(f"connection closed after {self._got} of {self._expected} bytes",
                              provider=self._provider.name, key=self._key)
        self._got += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while True:
            chunk = self.read(READ_CHUNK)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        super().close()
