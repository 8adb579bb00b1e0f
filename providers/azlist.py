"""List Blobs answers read straight from their XML, not through the SDK's model objects.

Why: a listing through ``ContainerClient.list_blobs`` builds, for every
blob, the generated ``BlobItemInternal`` model and then a ``BlobProperties``
with its content settings, lease, copy and immutability objects; that was
73 % of the CPU of a 100,000-object ``migrate plan`` to Azurite, and tens of
MiB of memory per page in flight. Here each ``<Blob>`` becomes its
``ObjectInfo`` as the XML streams in (a pull parser; each blob's elements are
dropped once read), with what :func:`providers.azapi.info_from_properties`
gives from a listed ``BlobProperties``: name, size, last-modified, etag,
version id, Content-MD5, user metadata (decoded), access tier, content type.

The request still goes through the container client's own pipeline
(authentication, headers, retries, timeouts): only the parsing is ours.
An answer other than 200 is the SDK's to handle (providers/azure.py lists
on through it from the same marker), so its errors are the SDK's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, cast
from urllib.parse import unquote
from xml.etree.ElementTree import Element, XMLPullParser

from azure.core.rest import HttpRequest, HttpResponse

from .azapi import decode_metadata
from .base import ObjectInfo

#: blobs asked for per page (None: the service's own, 5,000); tests make pages small
PAGE_SIZE: int | None = None


def request(container: Any, name_prefix: str, marker: str | None, delimiter: str | None,
            timeout: int) -> HttpResponse:
    """Send one List Blobs request (metadata included) through ``container``'s pipeline;
    the answer's body is left to stream."""
    params = {"restype": "container", "comp": "list", "include": "metadata",
              "timeout": str(timeout)}
    if name_prefix:
        params["prefix"] = name_prefix
    if marker:
        params["marker"] = marker
    if delimiter:
        params["delimiter"] = delimiter
    if PAGE_SIZE:
        params["maxresults"] = str(PAGE_SIZE)
    req = HttpRequest("GET", container.url, params=params,
                      headers={"x-ms-version": container.api_version, "Accept": "application/xml"})
    return container._client._send_request(req, stream=True)


@dataclass
class Page:
    """One answer: its blob prefixes ("directories"), its blobs, the marker of the next."""

    prefixes: list[ObjectInfo] = field(default_factory=list)
    blobs: list[ObjectInfo] = field(default_factory=list)
    next_marker: str | None = None


@lru_cache(maxsize=1024)
def _timestamp(text: str) -> float:
    """An RFC 1123 date as seconds since the epoch (a page's blobs share a few hundred)."""
    return parsedate_to_datetime(text).timestamp()


def _name(e: Element | None) -> str:
    if e is None or e.text is None:
        return ""
    return unquote(e.text) if e.get("Encoded") == "true" else e.text


def _blob(e: Element, key_of: Callable[[str], str]) -> ObjectInfo:
    p = e.find("Properties")
    props = {c.tag: c.text for c in p} if p is not None else {}
    meta = e.find("Metadata")
    md5 = props.get("Content-MD5")
    modified = props.get("Last-Modified")
    version = e.find("VersionId")
    return ObjectInfo(
        key=key_of(_name(e.find("Name"))),
        size=int(props.get("Content-Length") or 0),
        last_modified=_timestamp(modified) if modified else None,
        etag=props.get("Etag"),
        version=version.text if version is not None else None,
        checksums={"md5": base64.b64decode(md5).hex()} if md5 else {},
        metadata=decode_metadata({c.tag: c.text or "" for c in meta}) if meta is not None else {},
        tier=props.get("AccessTier"),
        content_type=props.get("Content-Type"),
    )


def parse(chunks: Iterable[bytes], key_of: Callable[[str], str]) -> Page:
    """A List Blobs answer's body (as it arrives) as a :class:`Page`; each blob's elements
    are freed once it is read. Raises ``xml.etree.ElementTree.ParseError`` on bad XML.

    Only elements where the answer's layout puts them count (``EnumerationResults/Blobs/
    Blob``, ``.../BlobPrefix``, ``EnumerationResults/NextMarker``): a user metadata name
    such as ``Blob`` is no blob.
    """
    page = Page()
    parser: XMLPullParser = XMLPullParser(events=("start", "end"))
    path: list[str] = []
    blobs: Element | None = None

    def drain() -> None:
        nonlocal blobs
        for got in parser.read_events():
            event, e = cast(tuple[str, Element], got)  # "start" and "end": an element each
            if event == "start":
                path.append(e.tag)
                if len(path) == 2 and e.tag == "Blobs":
                    blobs = e
                continue
            path.pop()
            if len(path) == 1 and e.tag == "NextMarker":
                page.next_marker = e.text or None
            elif len(path) == 2 and path[1] == "Blobs" and blobs is not None:
                if e.tag == "Blob":
                    page.blobs.append(_blob(e, key_of))
                elif e.tag == "BlobPrefix":
                    page.prefixes.append(ObjectInfo(key=key_of(_name(e.find("Name"))),
                                                    is_prefix=True))
                blobs.remove(e)

    for chunk in chunks:
        parser.feed(chunk)
        drain()
    parser.close()
    drain()
    return page
