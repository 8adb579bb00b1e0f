"""Azure Blob Storage (``az://container/prefix``) through azure-storage-blob.

Choices worth knowing:

* One ``BlobServiceClient`` per provider (its pipeline pools connections).
  The SDK's default retry waits 15 s and more between attempts; ours makes
  two quick retries so an unreachable endpoint fails within seconds, and
  none after a timeout (:class:`_QuickRetry`): a store silent for
  ``timeout`` seconds is down, so one call fails within ``timeout``.
* Get Blob and a single Put Blob take a fast path (providers/azwire.py) when
  the provider holds the account key: a container SAS, no SDK pipeline,
  ~1 ms less CPU each; anything but success or a 404 goes through the SDK.
* Large writes stage blocks in parallel from a small thread pool, with at
  most ``_IN_FLIGHT`` blocks in memory, then commit the block list: the blob
  appears only at the commit, so nothing partial is ever visible. A write of
  known size above the threshold goes straight to blocks; of unknown size it
  reads block-sized pieces up to the threshold and, if more comes, stages
  those very pieces (nothing holds the first 64 MiB for the whole upload).
  Block size and count were measured on Azurite (1 GiB stream, 2 cores):
  16 MiB x 4 ~81 MiB/s, 8 MiB x 8 ~80, 8 MiB x 4 ~66-82, 4 MiB x 8 ~63,
  4 MiB x 16 (rclone's) ~58: per-request cost dominates, so fewer, bigger
  blocks, and 64 MiB in flight at most.
* The MD5 of the whole content is set on the commit, so ``head`` reports it
  as it does for single-request uploads (Azure computes those) and sync can
  compare by it. It is computed on a thread of its own, overlapping reads
  and uploads (~1.4 s of CPU per GiB that would run serially in the
  caller's thread); option ``content_md5 = false`` skips it where that CPU
  matters more (omnifs records its own SHA-256 in metadata anyway).
* Metadata names must be C# identifiers. A name with any character outside
  ``[a-z0-9_]`` (or starting with a digit, or containing ``_x``) is escaped
  byte-wise as ``_xHH_`` and unescaped on read, so names round-trip
  exactly. Values must be ASCII header text: others are stored as
  ``=?utf-8?b?BASE64?=`` and decoded on read (providers/azapi.py).
* Reads stream ``download_blob(...).chunks()`` of ``READ_CHUNK`` bytes: the
  first byte comes back after one chunk, never after the whole blob.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import ParseError

import urllib3
from azure.core import MatchConditions
from azure.core import exceptions as aexc
from azure.core.pipeline import PipelineRequest
from azure.storage import blob as azblob

from . import azapi, azlist, compat_cells, encryption
from .azwire import AzWire, Fallback, Missing
from .base import (
    Capabilities,
    MiB,
    ObjectInfo,
    Provider,
    ReadStream,
    WriteSource,
    content_type_for,
)
from .errors import InvalidInput, NotFound, OmnifsError, Unavailable, timed_out, transport_error
from .http_status import RANGE_NOT_SATISFIABLE
from .metered import note_retry
from .streams import TranslatingReader, WireBody, read_full, whole_size

if TYPE_CHECKING:
    from .registry import ProviderSettings

TIERS = ("Hot", "Cool", "Cold", "Archive")
#: one Put Blob up to this (the SDK's own default; Put Blob is also far cheaper than
#: staging on Azurite); staged blocks above
THRESHOLD = 64 * MiB
#: block size of a staged upload
PART_SIZE = 16 * MiB
#: blocks staged at once per write (bounds memory to about 4 x PART_SIZE)
_IN_FLIGHT = 4
#: the first ranged GET is small so the first byte comes back soon...
READ_FIRST = 4 * MiB
#: ...later ones larger: per-request cost dominates on the emulator and costs on the cloud
READ_CHUNK = 16 * MiB
_COPY_POLL = 0.2

#: everything the SDK raises; translated by ``AzureProvider.translate``
_SDK_ERRORS: tuple[type[BaseException], ...] = (aexc.AzureError, OSError, ValueError)
#: what reading a fast-path body may raise (a dropped connection, a short body)
_WIRE_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)


class _QuickRetry(azblob.LinearRetry):
    """The SDK's linear retry, except that a timed-out attempt is not repeated.

    The SDK counts a read timeout as a read error and retries it, which made
    one call against a silent store wait twice ``timeout`` and more.
    """

    def increment(self, settings, request, response=None, error=None) -> bool:
        if timed_out(error):
            return False
        again = super().increment(settings, request, response, error)
        if again:
            note_retry()
        return again


def _short_body(got: int, expected: int) -> BaseException:
    return urllib3.exceptions.IncompleteRead(got, expected - got)

def _flag(value: object) -> bool:
    """A boolean option from TOML (a bool) or a URI query / environment (a string)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


#: what requests' ``trust_env`` would take from the environment besides a CA bundle
_REQUESTS_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc")


def _transport_env() -> dict[str, Any]:
    """Transport options that keep what requests' ``trust_env`` would find, without it.

    Left on, ``trust_env`` scans the environment and stats ``~/.netrc`` on every
    request: ~10% of the CPU a small upload costs us. It stays on where
    proxies or a netrc are configured; a CA bundle (REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE, requests' own order) is passed on explicitly.
    """
    home = os.path.expanduser("~")
    if any(k.lower() in _REQUESTS_ENV for k in os.environ) or any(
            os.path.exists(os.path.join(home, f)) for f in (".netrc", "_netrc")):
        return {}
    out: dict[str, Any] = {"use_env_settings": False}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        out["connection_verify"] = bundle
    return out


class _OrderedMd5:
    """MD5 of the blocks in order, computed on one thread of its own.

    Each ``update`` returns the future of that block's hashing, so the writer
    can bound how many blocks wait for it; ``close`` ends the thread.
    """

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omnifs-az-md5")

    def update(self, chunk: bytes) -> Future:
        return self._thread.submit(self._md5.update, chunk)

    def digest(self) -> bytes:
        return self._md5.digest()

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)


def _wait_pair(pair: tuple[Future, Future | None]) -> None:
    """Wait for a block's upload and its hashing: then nothing holds its bytes."""
    staged, hashed = pair
    staged.result()
    if hashed is not None:
        hashed.result()


def _conditions(if_absent: bool, if_match: str | None) -> dict[str, Any]:
    """A conditional write as the SDK's ``etag``/``match_condition`` keywords."""
    if if_absent:
        return {"match_condition": MatchConditions.IfMissing}
    if if_match is not None:
        return {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
    return {}


def _condition_headers(cond: dict[str, Any]) -> dict[str, str]:
    """:func:`_conditions` as the fast path's headers (If-None-Match / If-Match)."""
    if not cond:
        return {}
    if cond["match_condition"] is MatchConditions.IfMissing:
        return {"If-None-Match": "*"}
    return {"If-Match": cond["etag"]}


#: the request header naming the account's encryption scope a write is encrypted with
_SCOPE = "x-ms-encryption-scope"
#: the ``comp`` of the PUT requests that store data (none: Put Blob and Copy Blob)
_STORING = ("", "block", "blocklist", "metadata")


class _EncryptionScope:
    """Sends the store's encryption scope on every request that stores data: the SDK's
    ``raw_request_hook``, which runs before the request is signed."""

    def __init__(self, scope: str):
        self.scope = scope

    def __call__(self, request: PipelineRequest) -> None:
        req = request.http_request
        if req.method == "PUT" and parse_qs(urlsplit(req.url).query).get(
                "comp", [""])[0] in _STORING:
            req.headers[_SCOPE] = self.scope


class AzureProvider(Provider):
    """A container (and optional prefix) on Azure Blob Storage or Azurite."""

    schemes = ("az",)
    # options (providers/registry.py): account_key / sas_token: credentials with
    # account_url; part_size: block bytes; max_concurrency: blocks staged in parallel
    # per write; content_md5 (default true): set the whole content's MD5 on staged uploads

    capabilities = Capabilities(tiers=TIERS, native_checksums=("md5",), max_metadata_bytes=8192,
                                multipart_threshold=THRESHOLD, part_size=PART_SIZE,
                                server_side_copy=True, max_key_bytes=1024, versioning=False,
                                metadata_update=False, conditional_writes=True)
    sdk_errors = _SDK_ERRORS
    compat = compat_cells.AZURE

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.container_name = self.location.bucket
        self.timeout = float(settings.timeout)
        self.part_size = int(settings.extra.get("part_size", PART_SIZE))
        self.in_flight = int(settings.extra.get("max_concurrency", _IN_FLIGHT))
        self.threshold = int(settings.extra.get("multipart_threshold", THRESHOLD))
        self.content_md5 = _flag(settings.extra.get("content_md5", True))
        if (self.part_size <= 0 or self.part_size > 4000 * MiB or self.in_flight <= 0
                or not 0 < self.threshold <= 5000 * MiB):
            raise InvalidInput("part_size must be 1 B..4000 MiB, multipart_threshold "
                               "1 B..5000 MiB and max_concurrency positive", provider=self.name)
        if (self.part_size, self.threshold) != (PART_SIZE, THRESHOLD):
            self.capabilities = dataclasses.replace(
                self.capabilities, part_size=self.part_size, multipart_threshold=self.threshold)
        setting = encryption.of("az", settings.extra)
        #: the store's encryption scope (providers/encryption.py), sent on every write
        self.encryption_scope = setting.key if setting else None
        self.service = self._make_client(settings)
        self.container = self.service.get_container_client(self.container_name)
        self._wire = AzWire.for_container(self.container, _transport_env(), self.timeout,
                                          pool_size=max(32, self.in_flight * 4))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- construction -----------------------------------------------------
    def _make_client(self, settings: ProviderSettings) -> azblob.BlobServiceClient:
        """Settings first (connection string, account URL), then the SDK's env convention."""
        kwargs: dict[str, Any] = {
            "connection_timeout": self.timeout,
            "read_timeout": self.timeout,
            # LinearRetry annotates these seconds as int; it computes with floats
            "retry_policy": _QuickRetry(
                backoff=0.3, random_jitter_range=0.2,  # type: ignore[arg-type]
                retry_total=2, retry_read=1),
            "max_single_put_size": max(self.threshold, 1),
            "max_block_size": self.part_size,
            "max_single_get_size": READ_FIRST,
            "max_chunk_get_size": READ_CHUNK,
            **_transport_env(),
        }
        if self.encryption_scope:  # before signing, on every request that stores data
            kwargs["raw_request_hook"] = _EncryptionScope(self.encryption_scope)
        try:
            if settings.connection_string:
                return azblob.BlobServiceClient.from_connection_string(
                    settings.connection_string, **kwargs)
            if settings.account_url:
                credential: Any = (settings.extra.get("account_key") or settings.secret_key
                                   or settings.extra.get("sas_token"))
                if credential is None:
                    with contextlib.suppress(ImportError):
                        from azure.identity import DefaultAzureCredential

                        credential = DefaultAzureCredential()
                return azblob.BlobServiceClient(settings.account_url, credential=credential,
                                                **kwargs)
            env = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            if env:
                return azblob.BlobServiceClient.from_connection_string(env, **kwargs)
        except (ValueError, TypeError, aexc.AzureError):
            # never echo the string: it holds the account key
            raise InvalidInput("the Azure connection string or account URL is malformed",
                               provider=self.name) from None
        raise InvalidInput("no Azure credentials: set connection_string or account_url in the "
                           "provider table, or AZURE_STORAGE_CONNECTION_STRING", provider=self.name)

    # -- helpers ------------------------------------------------------------
    def _translate(self, e: BaseException, key: str | None) -> OmnifsError:
        return azapi.blob_error(e, container=self.container_name, timeout=self.timeout,
                                provider=self.name, key=key)

    def _blob(self, key: str) -> Any:
        return self.container.get_blob_client(self.object_name(key))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.in_flight,
                                                thread_name_prefix=f"omnifs-az-{self.name}")
            return self._pool

    # -- primitives -----------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        with self.translating(key):
            props = self._blob(key).get_blob_properties(timeout=self.timeout)
        return azapi.info_from_properties(props, key)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        # the listing carries metadata at no extra request: always asked for. Each page is
        # parsed by providers/azlist.py; an answer other than 200 hands the rest of the
        # listing (from the same marker) to the SDK, whose errors are translated below
        name_prefix = self.object_name(prefix)
        delimiter = None if recursive else "/"
        marker: str | None = None
        try:
            while True:
                # the server-side timeout is whole seconds (as the SDK sends it)
                r = azlist.request(self.container, name_prefix, marker, delimiter,
                                   int(self.timeout))
                if r.status_code != 200:
                    r.close()
                    yield from self._sdk_list(name_prefix, recursive, marker)
                    return
                page = azlist.parse(r.iter_bytes(), self.key_of)
                yield from page.prefixes  # as the SDK gives a page: prefixes, then blobs
                own = self.key_of(name_prefix)
                yield from (i for i in page.blobs if recursive or i.key != own)
                if not page.next_marker:
                    return
                marker = page.next_marker
        except _SDK_ERRORS + (ParseError,) as e:
            if isinstance(e, aexc.ResourceNotFoundError):  # a listing's 404 is the container's
                raise azapi.container_missing(self.container_name, self.name, prefix) from None
            raise self.translate(e, prefix) from None

    def _sdk_list(self, name_prefix: str, recursive: bool,
                  marker: str | None) -> Iterator[ObjectInfo]:
        """The listing from ``marker`` on, through the SDK's own listing and models."""
        items: Iterable[azblob.BlobProperties | azblob.BlobPrefix]
        if recursive:
            items = self.container.list_blobs(name_starts_with=name_prefix or None,
                                              include=["metadata"], timeout=int(self.timeout))
        else:
            items = self.container.walk_blobs(name_starts_with=name_prefix or None,
                                              include=["metadata"], delimiter="/",
                                              timeout=int(self.timeout))
        for page in items.by_page(continuation_token=marker):
            for item in page:
                if isinstance(item, azblob.BlobPrefix):
                    yield ObjectInfo(key=self.key_of(item.name), is_prefix=True)
                elif recursive or item.name != name_prefix:
                    yield azapi.info_from_properties(item, self.key_of(item.name))

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        start = max(0, start)
        blob = self._blob(key)
        if end is not None and end <= start:
            return self._empty_read(key)
        length = None if end is None else end - start
        if self._wire is not None:
            try:
                r = self._wire.get(self.object_name(key), start, length)
            except Missing as m:
                raise self._missing(m, key) from None
            except Fallback:
                pass
            except _WIRE_ERRORS as e:  # a timeout: the store is silent
                raise self._wire_error(e, key) from None
            else:
                # read straight into the caller's buffer; the connection goes back
                # to the pool once the body is read to its end
                body = WireBody(r, r.headers.get("Content-Length"), _short_body)
                return TranslatingReader(body, _WIRE_ERRORS, lambda e: self._wire_error(e, key),
                                         info=azapi.info_from_headers(r.headers, key))
        try:
            downloader = blob.download_blob(offset=start, length=length, max_concurrency=1,
                                            timeout=self.timeout)
        except _SDK_ERRORS as e:
            if getattr(e, "status_code", None) == RANGE_NOT_SATISFIABLE:  # start at or past the end
                return _AzureStream(iter(()), self, key)
            raise self.translate(e, key) from None
        props = downloader.properties
        info = azapi.info_from_properties(props, key)
        info.size = whole_size(getattr(props, "content_range", None), props.size) or 0
        return _AzureStream(downloader.chunks(), self, key, info)

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        blob = self._blob(key)
        meta = azapi.encode_metadata(metadata)
        content_type = content_type_for(key, content_type)
        cond = _conditions(if_absent, if_match)
        with self.preconditioned(key, if_absent, if_match), self.translating(key):
            if size is not None and size > self.threshold:
                # known to need blocks: stage as we read, never hold the threshold's bytes
                result, written = self._write_blocks(blob, deque(), stream, meta, content_type,
                                                     cond)
            else:
                head = self._read_head(stream, size)
                if sum(map(len, head)) <= self.threshold:  # the whole content: one Put Blob
                    data = head[0] if len(head) == 1 else b"".join(head)
                    head.clear()
                    result = self._put_blob(blob, data, meta, content_type, cond)
                    written = len(data)
                else:
                    result, written = self._write_blocks(blob, head, stream, meta, content_type,
                                                         cond)
        # the write's own answer, not a second round trip (small files are most files)
        md5 = result.get("content_md5")
        modified = result.get("last_modified")
        return ObjectInfo(
            key=key, size=written,
            last_modified=modified.timestamp() if modified else None,
            etag=result.get("etag"), version=result.get("version_id"),
            checksums={"md5": bytes(md5).hex()} if md5 else {},
            metadata=dict(metadata or {}),
            content_type=content_type,
        )

    def _put_blob(self, blob: Any, data: bytes, meta: dict[str, str],
                  content_type: str | None, cond: dict[str, Any] | None = None) -> dict[str, Any]:
        """One Put Blob; ``cond``: the SDK's etag/match_condition of a conditional write.

        Returns upload_blob's answer shape (etag, last_modified, content_md5, version_id).
        """
        cond = cond or {}
        if self._wire is not None:
            headers = {f"x-ms-meta-{k}": v for k, v in meta.items()}
            headers.update(_condition_headers(cond))
            if self.encryption_scope:
                headers[_SCOPE] = self.encryption_scope
            if content_type:
                headers["x-ms-blob-content-type"] = content_type
            try:
                h = self._wire.put(blob.blob_name, data, headers)
            except Missing as m:
                raise self._missing(m, self.key_of(blob.blob_name)) from None
            except Fallback:
                pass
            except _WIRE_ERRORS as e:  # a timeout: the store is silent
                raise self._wire_error(e, self.key_of(blob.blob_name)) from None
            else:
                md5, lm = h.get("Content-MD5"), h.get("Last-Modified")
                return {"etag": h.get("ETag"), "version_id": h.get("x-ms-version-id"),
                        "last_modified": parsedate_to_datetime(lm) if lm else None,
                        "content_md5": base64.b64decode(md5) if md5 else None}
        content = azblob.ContentSettings(content_type=content_type) if content_type else None
        return blob.upload_blob(data, length=len(data), overwrite=True, metadata=meta or None,
                                content_settings=content, max_concurrency=1, timeout=self.timeout,
                                **cond)

    def _missing(self, m: Missing, key: str) -> NotFound:
        """The fast path's definite 404."""
        if m.container:
            return azapi.container_missing(self.container_name, self.name, key)
        return NotFound("no such object", provider=self.name, key=key)

    def _wire_error(self, e: BaseException, key: str) -> OmnifsError:
        """A fast-path request or body that failed without an answer."""
        return transport_error(e, self.timeout, provider=self.name, key=key)

    def _read_head(self, stream: WriteSource, size: int | None) -> deque[bytes]:
        """The content when it fits one Put Blob, else its first blocks (at least one past it).

        Read in block-sized pieces, so that when the stream turns out bigger than
        the threshold the pieces become the first blocks as they are, no copy.
        """
        if size is not None:  # known to fit
            return deque([read_full(stream, size)]) if size else deque()
        head: deque[bytes] = deque()
        got = 0
        while got <= self.threshold:
            piece = read_full(stream, self.part_size)
            if not piece:
                break
            head.append(piece)
            got += len(piece)
        return head

    def _write_blocks(self, blob: Any, head: deque[bytes], stream: WriteSource,
                      meta: dict[str, str], content_type: str | None,
                      cond: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
        """Stage blocks in parallel (bounded), then commit: the blob appears only then.

        At most ``in_flight`` blocks are referenced at once (plus the one being
        read): each is dropped as soon as it is staged and hashed. The MD5 runs
        on its own thread, overlapping the caller's reads and the uploads
        (hashlib releases the GIL on big buffers); in the caller's thread it
        cost ~1.4 s of CPU per GiB, serially with reading.
        """
        pool = self._executor()
        hasher = _OrderedMd5() if self.content_md5 else None
        tag = uuid.uuid4().hex
        ids: list[str] = []
        written = 0
        pending: deque[tuple[Future, Future | None]] = deque()
        try:
            while True:
                chunk = head.popleft() if head else read_full(stream, self.part_size)
                if not chunk:
                    break
                while len(pending) >= self.in_flight:
                    _wait_pair(pending.popleft())
                block_id = base64.b64encode(f"{tag}-{len(ids):08d}".encode()).decode("ascii")
                ids.append(block_id)
                written += len(chunk)
                staged = pool.submit(blob.stage_block, block_id, chunk, length=len(chunk),
                                     timeout=self.timeout)
                pending.append((staged, hasher.update(chunk) if hasher else None))
                del chunk  # the pending futures hold it only as long as they need it
            while pending:
                _wait_pair(pending.popleft())
        finally:
            for staged, hashed in pending:
                staged.cancel()
                if hashed is not None:
                    hashed.cancel()
            if hasher is not None:
                hasher.close()
        md5 = bytearray(hasher.digest()) if hasher is not None else None
        content = azblob.ContentSettings(content_type=content_type,
                                  content_md5=md5)
        result = blob.commit_block_list([azblob.BlobBlock(block_id=i) for i in ids],
                                        metadata=meta or None, content_settings=content,
                                        timeout=self.timeout, **(cond or {}))
        # the answer's own Content-MD5 is that of the request body (the block list), not
        # of the blob: report ours, or none
        result["content_md5"] = md5
        return result, written

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        src = self._blob(src_key)
        dst = self._blob(dst_key)
        meta = azapi.encode_metadata(metadata) if metadata is not None else None
        try:
            dst.start_copy_from_url(src.url, metadata=meta or None, timeout=self.timeout)
            props = dst.get_blob_properties(timeout=self.timeout)
            while props.copy is not None and props.copy.status == "pending":
                time.sleep(_COPY_POLL)
                props = dst.get_blob_properties(timeout=self.timeout)
            if props.copy is not None and props.copy.status not in (None, "success"):
                raise Unavailable(f"server-side copy ended as {props.copy.status}",
                                  provider=self.name, key=f"{src_key} -> {dst_key}")
            if meta is not None and props.metadata != meta:  # {} keeps the source's otherwise
                dst.set_blob_metadata(meta, timeout=self.timeout)
                props = dst.get_blob_properties(timeout=self.timeout)
        except _SDK_ERRORS as e:
            status = getattr(e, "status_code", None)
            code = str(getattr(e, "error_code", "") or "")
            if (status == 404 and code != "ContainerNotFound") or code == "CannotVerifyCopySource":
                raise NotFound("copy source does not exist", provider=self.name,
                               key=src_key) from None
            raise self.translate(e, f"{src_key} -> {dst_key}") from None
        return azapi.info_from_properties(props, dst_key)

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete_blob(delete_snapshots="include", timeout=self.timeout)
        except _SDK_ERRORS as e:
            if str(getattr(e, "error_code", "")) == "BlobNotFound":
                return
            if isinstance(e, aexc.ResourceNotFoundError) and not getattr(e, "error_code", None):
                return
            raise self.translate(e, key) from None

    def _set_tier(self, key: str, tier: str) -> None:
        with self.translating(key):
            self._blob(key).set_standard_blob_tier(tier, timeout=self.timeout)

    def restore(self, key: str, days: int = 1) -> bool:
        """Rehydrate an archived blob to Hot (standard priority; it stays Hot)."""
        with self.translating(key):
            self._blob(key).set_standard_blob_tier("Hot", rehydrate_priority="Standard",
                                                   timeout=self.timeout)
        return True

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        with contextlib.suppress(*_SDK_ERRORS):  # closing must never fail the caller
            self.service.close()
        if self._wire is not None:
            self._wire.close()


class _AzureStream(io.RawIOBase):
    """Chunks of a ranged download, handed out as the caller reads.

    A failure while fetching the next chunk (server gone, read timeout)
    becomes Unavailable at once; the SDK's own short retry is the only wait.
    """

    def __init__(self, chunks: Iterator[bytes], provider: AzureProvider, key: str,
                 info: ObjectInfo | None = None):
        #: the blob's properties from the download response (``Provider.open_read``)
        self.info = info
        self._chunks = chunks
        self._provider = provider
        self._key = key
        self._buf = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._buf:
            if self._eof:
                return False
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                return False
            except _SDK_ERRORS as e:
                self._eof = True
                raise self._provider.translate(e, self._key) from None
            self._buf = memoryview(chunk)
        return True

    def read(self, n: int = -1) -> bytes:
        if self.closed:
            return b""
        if n is None or n < 0:
            return self.readall()
        if n == 0 or not self._fill():
            return b""
        out = bytes(self._buf[:n])
        self._buf = self._buf[n:]
        return out

    def readall(self) -> bytes:
        parts = []
        while self._fill():
            parts.append(bytes(self._buf))
            self._buf = memoryview(b"")
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._chunks = iter(())
        self._buf = memoryview(b"")
        self._eof = True
        super().close()
