"""Small, self-cleaning probes of a live store: what ``omnifs compat --probe`` runs.

Every object goes under ``.omnifs/probe/<random>/`` and is deleted at the end,
whatever happened. The cost is bounded: at most :data:`MAX_REQUESTS` requests
and a few KiB written. Each probe yields a :class:`~.capabilities.Finding`
(the feature, the status the store showed, a detail without keys or times, so
the same server gives the same output). What a probe needs beyond the
:class:`~.base.Provider` interface (a conditional PUT, a version listing, a
PUT with a wrong checksum) goes through the store's SDK client, one small
function per scheme; the minio SDK has no public call for a conditional PUT,
so it uses ``Minio._put_object`` (a private hook, as tests/contract checks
for the others).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .base import RESERVED_PREFIX, Provider
from .capabilities import DEGRADED, SUPPORTED, UNSUPPORTED, Finding, server_product
from .errors import Conflict, OmnifsError

PROBE_PREFIX = RESERVED_PREFIX + "probe/"
#: the most requests one probe run makes (writes, reads, lists, deletes)
MAX_REQUESTS = 40
_BODY = bytes(range(256)) * 4  # 1 KiB


@dataclass
class ProbeReport:
    """What probing one store found."""

    #: the store's Server header, as it reported it (None: no server, or it said nothing)
    server: str | None = None
    #: the API version the store answered with (Azure's x-ms-version), where it says
    api_version: str | None = None
    product: str | None = None
    emulator: bool = False
    findings: list[Finding] = field(default_factory=list)
    #: probes that could not run, with why (the store's error, one line)
    skipped: list[str] = field(default_factory=list)
    requests: int = 0

    def finding(self, feature: str) -> Finding | None:
        return next((f for f in self.findings if f.feature == feature), None)


class _Run:
    """One probe run: its prefix, the keys to remove, the request count."""

    def __init__(self, p: Provider, report: ProbeReport):
        self.p = p
        self.report = report
        self.base = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}/"
        self.written: list[str] = []

    def call(self, fn: Callable, *args, **kwargs):
        self.report.requests += 1
        if self.report.requests > MAX_REQUESTS:
            raise RuntimeError("probe request budget spent")
        return fn(*args, **kwargs)

    def put(self, key: str, data: bytes = _BODY, metadata: dict[str, str] | None = None):
        self.written.append(key)
        return self.call(self.p.write_bytes, key, data, metadata)

    def cleanup(self) -> None:
        for key in reversed(self.written):
            with contextlib.suppress(OmnifsError):
                self.call(self.p.delete, key)


def probe(p: Provider) -> ProbeReport:
    """Run every probe against ``p`` and clean up; a probe that fails is noted as skipped."""
    report = ProbeReport()
    _server(p, report)
    run = _Run(p, report)
    try:
        for name, fn in _PROBES:
            try:
                found = fn(run)
            except (OmnifsError, OSError, RuntimeError) as e:
                report.skipped.append(f"{name}: {str(e).splitlines()[0][:160]}")
                continue
            if found is not None:
                report.findings.append(found)
    finally:
        run.cleanup()
    return report


# -- the server -----------------------------------------------------------
_PUBLIC = {"s3": "https://s3.amazonaws.com/", "gs": "https://storage.googleapis.com/"}


def _endpoint_url(p: Provider) -> str | None:
    s = p.settings
    if s.endpoint:
        return s.endpoint if "://" in s.endpoint else f"https://{s.endpoint}"
    return _PUBLIC.get(p.location.scheme)


def _server(p: Provider, report: ProbeReport) -> None:
    """The Server header (and Azure's API version) of one cheap request."""
    scheme = p.location.scheme
    if scheme == "file":
        return
    if scheme == "az":
        headers: dict[str, str] = {}
        with contextlib.suppress(Exception), p.translating(None):
            report.requests += 1
            p.container.get_container_properties(  # type: ignore[attr-defined]
                raw_response_hook=lambda r: headers.update(r.http_response.headers))
        report.server, report.api_version = headers.get("Server"), headers.get("x-ms-version")
    else:
        url = _endpoint_url(p)
        if url is not None:
            report.requests += 1
            try:
                with urllib.request.urlopen(url, timeout=p.settings.timeout) as r:
                    report.server = r.headers.get("Server")
            except urllib.error.HTTPError as e:
                report.server = e.headers.get("Server")
            except OSError:
                pass
    report.product, report.emulator = server_product(scheme, report.server)


# -- the probes -----------------------------------------------------------
def _range(run: _Run) -> Finding:
    run.put(run.base + "body")
    got = run.call(run.p.read_bytes, run.base + "body", 100, 200)
    ok = got == _BODY[100:200]
    return Finding("range_reads", SUPPORTED if ok else UNSUPPORTED,
                   "bytes 100-199 of 1 KiB read back" if ok
                   else f"a 100-byte range read gave {len(got)} bytes")


def _copy(run: _Run) -> Finding | None:
    if not run.p.capabilities.server_side_copy:
        return None
    run.written.append(run.base + "copy")
    run.call(run.p.copy, run.base + "body", run.base + "copy")
    ok = run.call(run.p.read_bytes, run.base + "copy") == _BODY
    return Finding("copy_same_bucket", SUPPORTED if ok else DEGRADED,
                   "a 1 KiB object copied in the store" if ok else "the copy's bytes differ")


def _key_length(run: _Run) -> Finding:
    room = run.p.key_limit()
    head = run.base + "k/"
    left = room - len(head.encode())
    parts = []
    while left > 0:
        n = min(200, left)
        parts.append("a" * n)
        left -= n + 1
    key = head + "/".join(parts)
    key = key[:room] if len(key.encode()) > room else key
    run.put(key, b"k")
    run.call(run.p.head, key)
    limit = run.p.capabilities.max_key_bytes
    return Finding("key_limits", SUPPORTED, f"a key of the {limit}-byte limit accepted")


def _listing(run: _Run) -> Finding:
    entries = list(run.call(run.p.list, run.base, False, False))
    names = {e.key for e in entries}
    ok = run.base + "k/" in names and run.base + "body" in names
    return Finding("listing", SUPPORTED if ok else DEGRADED,
                   "a delimited listing gives objects and prefixes" if ok
                   else "a delimited listing lacks an object or a prefix")


def _metadata(run: _Run) -> Finding:
    limit = run.p.capabilities.max_metadata_bytes
    name = "omnifs_probe"
    run.put(run.base + "meta", b"m", {name: "v" * (limit - len(name))})
    kept = run.call(run.p.head, run.base + "meta").metadata.get(name, "")
    if len(kept) != limit - len(name):
        return Finding("user_metadata", DEGRADED, f"{limit} bytes of metadata not kept whole")
    if run.p.location.scheme == "file":
        return Finding("user_metadata", SUPPORTED, f"{limit} bytes kept (the limit is omnifs's)")
    try:
        run.put(run.base + "meta2", b"m", {name: "v" * (limit - len(name) + 1)})
    except OmnifsError:
        return Finding("user_metadata", SUPPORTED, f"{limit} bytes kept, {limit + 1} refused")
    return Finding("user_metadata", DEGRADED,
                   f"{limit} bytes kept, and {limit + 1} accepted: the limit is not enforced")


def _checksums(run: _Run) -> Finding:
    natives = run.p.capabilities.native_checksums
    info = run.call(run.p.head, run.base + "body")
    if not natives:
        return Finding("checksums", UNSUPPORTED, "no native checksum reported")
    md5 = info.checksums.get("md5")
    if "md5" in natives and md5 is not None and md5 != hashlib.md5(_BODY).hexdigest():
        return Finding("checksums", DEGRADED, "the reported md5 is wrong")
    reported = ", ".join(sorted(info.checksums)) or "none"
    refused = _bad_md5_refused(run)
    if refused is False:
        return Finding("checksums", DEGRADED, f"reports {reported}, but stored an upload "
                       "whose Content-MD5 did not match its body")
    tail = "; an upload with a wrong Content-MD5 refused" if refused else ""
    return Finding("checksums", SUPPORTED, f"reports {reported}{tail}")


def _bad_md5_refused(run: _Run) -> bool | None:
    """Does the store refuse a PUT whose MD5 does not match? None: not probed here."""
    p, key = run.p, run.base + "badmd5"
    name = p.object_name(key)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    scheme = p.location.scheme
    run.written.append(key)
    try:
        with p.translating(key):
            run.report.requests += 1
            if scheme == "s3":
                p.client.put_object(Bucket=p.bucket, Key=name, Body=b"x",  # type: ignore
                                    ContentMD5=wrong)
            elif scheme == "minio":
                p.client._put_object(p.bucket, name, b"x",  # type: ignore[attr-defined]
                                     headers={"Content-MD5": wrong})
            elif scheme == "gs":
                blob = p.bucket.blob(name)  # type: ignore[attr-defined]
                blob.md5_hash = wrong
                blob.upload_from_string(b"x", checksum=None)
            else:
                run.report.requests -= 1
                return None
    except OmnifsError:
        return True
    return False


def _conditional(run: _Run) -> Finding:
    """A create-only PUT over an existing object must fail."""
    p, key = run.p, run.base + "body"
    scheme = p.location.scheme
    if scheme == "file":
        path = p._path(key)  # type: ignore[attr-defined]
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return Finding("conditional_writes", DEGRADED, "an exclusive create of an "
                           "existing file refused")
        return Finding("conditional_writes", UNSUPPORTED, "an exclusive create overwrote")
    name = p.object_name(key)
    try:
        with p.translating(key):
            run.report.requests += 1
            if scheme == "s3":
                p.client.put_object(Bucket=p.bucket, Key=name, Body=b"x",  # type: ignore
                                    IfNoneMatch="*")
            elif scheme == "minio":
                p.client._put_object(p.bucket, name, b"x",  # type: ignore[attr-defined]
                                     headers={"If-None-Match": "*"})
            elif scheme == "gs":
                p.bucket.blob(name).upload_from_string(  # type: ignore[attr-defined]
                    b"x", if_generation_match=0)
            else:
                p.container.upload_blob(name, b"x", overwrite=False)  # type: ignore
    except Conflict:
        return Finding("conditional_writes", SUPPORTED, "a create-only PUT over an existing "
                       "object refused")
    return Finding("conditional_writes", UNSUPPORTED, "a create-only PUT over an existing "
                   "object overwrote it")


def _versions(run: _Run) -> Finding | None:
    """A version listing of the probe's object, and the bucket's versioning setting."""
    p = run.p
    scheme = p.location.scheme
    prefix = p.object_name(run.base + "body")
    with p.translating(None):
        run.report.requests += 2
        if scheme == "s3":
            p.client.list_object_versions(Bucket=p.bucket, Prefix=prefix,  # type: ignore
                                          MaxKeys=10)
            state = p.client.get_bucket_versioning(Bucket=p.bucket).get(  # type: ignore
                "Status") or "never enabled"
        elif scheme == "minio":
            list(p.client.list_objects(p.bucket, prefix=prefix,  # type: ignore[attr-defined]
                                       include_version=True))
            versioning = p.client.get_bucket_versioning  # type: ignore[attr-defined]
            state = versioning(p.bucket).status or "never enabled"  # type: ignore[attr-defined]
        elif scheme == "gs":
            list(p.client.list_blobs(p.bucket_name, prefix=prefix,  # type: ignore
                                     versions=True))
            bucket = p.bucket  # type: ignore[attr-defined]
            bucket.reload()
            state = "Enabled" if bucket.versioning_enabled else "off"
        elif scheme == "az":
            run.report.requests -= 1
            ids = [b.version_id for b in p.container.list_blobs(  # type: ignore
                name_starts_with=prefix, include=["versions"])]
            if not any(ids):
                return Finding("versioning", DEGRADED, "a version listing answered without "
                               "version ids: off for this account, or the server has none")
            state = "Enabled"
        else:
            run.report.requests -= 2
            return None
    return Finding("versioning", SUPPORTED, "a version listing answered; versioning "
                   f"{str(state).lower()} on this bucket")


def _object_lock(run: _Run) -> Finding | None:
    """A retention lock on the probe's own object, on a GCS or Azure emulator only: on a real
    store the lock could outlive the probe (its object could not be deleted), and these
    calls have not been run against the real clouds (S3's Object Lock is tested on moto
    through ``omnifs gov apply`` instead)."""
    p: Any = run.p
    scheme = p.location.scheme
    if not run.report.emulator or scheme not in ("gs", "az"):
        return None
    name = p.object_name(run.base + "body")
    if scheme == "az":
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import ImmutabilityPolicy

        blob = p.container.get_blob_client(name)
        until = datetime.now(UTC) + timedelta(minutes=1)
        try:
            run.call(blob.set_immutability_policy,
                     ImmutabilityPolicy(expiry_time=until, policy_mode="Unlocked"))
        except HttpResponseError as e:
            said = "not implemented" if "not implemented" in str(e) else str(e).splitlines()[0]
            return Finding("object_lock", UNSUPPORTED,
                           f"Set Blob Immutability Policy answered: {said[:120]}")
        run.call(blob.delete_immutability_policy)
        return Finding("object_lock", SUPPORTED, "an unlocked immutability policy was set "
                       "and removed")
    blob = p.bucket.blob(name)
    blob.temporary_hold = True
    with p.translating(run.base + "body"):
        run.call(blob.patch)
        run.call(blob.reload)
        if not blob.temporary_hold:
            return Finding("object_lock", DEGRADED, "an object hold (temporaryHold) is "
                           "accepted but not kept")
        blob.temporary_hold = False
        run.call(blob.patch)
    return Finding("object_lock", SUPPORTED, "an object hold was kept and released")


#: (name, probe) in the order they run; later ones use the objects earlier ones wrote
_PROBES: tuple[tuple[str, Callable[[_Run], Finding | None]], ...] = (
    ("range read", _range), ("server-side copy", _copy), ("key length", _key_length),
    ("listing", _listing), ("metadata at the limit", _metadata), ("checksums", _checksums),
    ("conditional write", _conditional), ("version listing", _versions),
    ("retention lock", _object_lock),
)
