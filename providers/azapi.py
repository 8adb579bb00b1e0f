"""What Azure Blob's protocol means to omnifs, whichever way a request was sent.

Through the SDK or the fast path (providers/azwire.py): how user metadata is
written (names must be C# identifiers, values header text), what a blob's
properties or a Get Blob's headers say about it, and what an error answer
means (the codes that say more than their status; the status by the one table,
providers/http_status.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core import exceptions as aexc

from .base import ObjectInfo
from .errors import (
    Archived,
    IntegrityError,
    OmnifsError,
    RootMissing,
    timed_out,
    transport_error,
)
from .http_status import status_error
from .streams import whole_size

#: azure-core's error classes and the codes that say what an answer meant (the status it
#: carries), ahead of the status it came with
SDK_CLASSES: tuple[tuple[type[BaseException], int], ...] = (
    (aexc.ResourceNotFoundError, 404), (aexc.ClientAuthenticationError, 403),
    (aexc.ResourceModifiedError, 412), (aexc.ResourceExistsError, 409))
CODE_STATUS = {"ServerBusy": 503, "OperationTimedOut": 503}

_SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_ESCAPED = re.compile(r"_x([0-9a-f]{2})_")
_B64_VALUE = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=\Z")


def encode_meta_name(name: str) -> str:
    """A C# identifier for ``name``; ``decode_meta_name`` gives it back exactly."""
    if _SAFE_NAME.match(name) and "_x" not in name:
        return name
    out = []
    for i, ch in enumerate(name):
        keep = ("a" <= ch <= "z") or ch == "_" or (i > 0 and "0" <= ch <= "9")
        if ch == "_" and name[i + 1:i + 2] == "x":
            keep = False  # a literal "_x" would read back as an escape
        if keep:
            out.append(ch)
        else:
            out.extend(f"_x{b:02x}_" for b in ch.encode("utf-8"))
    return "".join(out)


def decode_meta_name(name: str) -> str:
    if "_x" not in name:
        return name
    raw = _ESCAPED.sub(lambda m: f"\x00{m.group(1)}", name)
    buf = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == "\x00":
            buf.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            buf.extend(raw[i].encode("utf-8"))
            i += 1
    return buf.decode("utf-8", "replace")


def _encode_value(value: str) -> str:
    if value.isascii() and value.isprintable() and value == value.strip() and "=?" not in value:
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _decode_value(value: str) -> str:
    m = _B64_VALUE.match(value)
    if not m:
        return value
    try:
        return base64.b64decode(m.group(1)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


def encode_metadata(meta: dict[str, str] | None) -> dict[str, str]:
    return {encode_meta_name(k): _encode_value(str(v)) for k, v in (meta or {}).items()}


def decode_metadata(meta: dict[str, str] | None) -> dict[str, str]:
    return {decode_meta_name(k): _decode_value(v) for k, v in (meta or {}).items()}


def container_missing(container: str, provider: str, key: str | None) -> RootMissing:
    return RootMissing(f"container {container!r} does not exist", provider=provider, key=key)


def blob_error(e: BaseException, *, container: str, timeout: float, provider: str,
               key: str | None) -> OmnifsError:
    """An azure-core error as an omnifs error (its text is never repeated: it may hold a SAS)."""
    where: dict[str, Any] = {"provider": provider, "key": key}
    code = str(getattr(e, "error_code", None) or "")
    status = getattr(e, "status_code", None)
    if status is None and timed_out(e):  # an answer (a 504 included) is no silence
        return transport_error(e, timeout, **where)
    if code == "ContainerNotFound":
        return container_missing(container, provider, key)
    if code == "BlobArchived" or (status == 409 and "archiv" in code.lower()):
        return Archived("the blob is archived: rehydrate it (set_tier Hot or Cool) "
                        "and wait before reading", **where)
    if "mismatch" in code.lower():  # Md5Mismatch, Crc64Mismatch
        return IntegrityError(f"checksum mismatch in transfer ({code})", **where)
    meant = CODE_STATUS.get(code) or next(
        (s for kind, s in SDK_CLASSES if isinstance(e, kind)), status)
    if meant is not None:
        return status_error(meant, code or (f"HTTP {status}" if status else None), **where)
    return transport_error(e, timeout, **where)


def info_from_properties(props: Any, key: str) -> ObjectInfo:
    """A blob's properties (from Get Blob Properties, a listing or a download) as its info."""
    settings = props.content_settings
    md5 = settings.content_md5 if settings is not None else None
    tier = props.blob_tier
    return ObjectInfo(
        key=key,
        size=int(props.size or 0),
        last_modified=props.last_modified.timestamp() if props.last_modified else None,
        etag=props.etag,
        version=getattr(props, "version_id", None),
        checksums={"md5": bytes(md5).hex()} if md5 else {},
        metadata=decode_metadata(props.metadata),
        tier=str(tier.value if hasattr(tier, "value") else tier) if tier else None,
        content_type=settings.content_type if settings is not None else None,
    )


def info_from_headers(h: Any, key: str) -> ObjectInfo:
    """A Get Blob response's headers as the blob's info (what its properties would say)."""
    md5 = h.get("x-ms-blob-content-md5") or (None if h.get("Content-Range")
                                              else h.get("Content-MD5"))
    lm = h.get("Last-Modified")
    return ObjectInfo(
        key=key, size=whole_size(h.get("Content-Range"), h.get("Content-Length")) or 0,
        last_modified=parsedate_to_datetime(lm).timestamp() if lm else None,
        etag=h.get("ETag"), version=h.get("x-ms-version-id"),
        checksums={"md5": base64.b64decode(md5).hex()} if md5 else {},
        metadata=decode_metadata({k[10:]: v for k, v in h.items()
                                  if k.lower().startswith("x-ms-meta-")}),
        tier=h.get("x-ms-access-tier"), content_type=h.get("Content-Type"),
    )
