"""One backup target: a store and a key prefix, its objects named, written and read back checked.

Layout under the target's root (``BackupSpec.root``)::

    data/<id[:2]>/<id>          file content, once per SHA-256 (id: the SHA-256,
                                or an HMAC of it when encrypted)
    backups/<when>.manifest.gz  one backup: its tree and every file's SHA-256 (manifest.py)
    backups/<when>.catalog.gz   the catalog as it was then (what rebuilds a lost host)
    versions/<when>-<n>.json.gz a version kept when the mount replaced or deleted it
    locks/<when>-<host>         a backup in progress: prune leaves data alone meanwhile

Every content object carries the SHA-256 of its plaintext in its metadata;
reads hash what they return and fail (IntegrityError) on any difference.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from omnifs.errors import IntegrityError, NotFound
from omnifs.providers import META_SHA256, Provider

from . import crypto

META_ENCRYPTED = "omnifs_dr_encrypted"
#: manifest metadata: counts shown by ``omnifs dr list`` without reading each manifest
META_FILES, META_NEW, META_TOTAL = "omnifs_dr_files", "omnifs_dr_new", "omnifs_dr_total"
MANIFEST_SUFFIX = ".manifest.gz"
CATALOG_SUFFIX = ".catalog.gz"
CHUNK = 1 << 20


def backup_id(at: float) -> str:
    """``20261207T023000.123456Z``: ids sort by time."""
    t = datetime.fromtimestamp(at, UTC)
    return f"{t.strftime('%Y%m%dT%H%M%S')}.{t.microsecond:06d}Z"


def id_time(bid: str) -> float:
    t = datetime.strptime(bid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return t.timestamp() + int(bid[16:22]) / 1e6


@dataclass(frozen=True)
class Listed:
    """A backup as the target's listing shows it."""

    id: str
    at: float
    files: int | None
    bytes_new: int | None
    bytes_total: int | None


class Hashing:
    """A readable stream that hashes what passes and counts it."""

    def __init__(self, src) -> None:
        self.src, self.h, self.n = src, hashlib.sha256(), 0

    def read(self, size: int = -1, /) -> bytes:
        b = self.src.read(size)
        self.h.update(b)
        self.n += len(b)
        return b

    def close(self) -> None:
        close = getattr(self.src, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Verifying(Hashing):
    """Hashing, and IntegrityError at the end when the bytes are not ``sha``/``size``."""

    def __init__(self, src, sha: str, size: int | None, what: str) -> None:
        super().__init__(src)
        self.sha, self.size, self.what = sha, size, what

    def read(self, size: int = -1, /) -> bytes:
        b = super().read(size)
        if not b or (size < 0):
            self.check()
        return b

    def check(self) -> None:
        got = self.h.hexdigest()
        if got != self.sha or (self.size is not None and self.n != self.size):
            raise IntegrityError(f"{self.what}: content does not match its SHA-256 "
                                 f"(got {got[:12]}..., {self.n} bytes; want {self.sha[:12]}...)")


class Target:
    """A store and a root prefix holding backups; ``key`` set: every object encrypted."""

    def __init__(self, provider: Provider, root: str, key: bytes | None = None) -> None:
        self.provider, self.root, self.key = provider, root, key

    @property
    def name(self) -> str:
        return self.provider.name

    # -- content ---------------------------------------------------------------
    def data_key(self, sha: str) -> str:
        oid = crypto.object_id(self.key, sha)
        return f"{self.root}data/{oid[:2]}/{oid}"

    def stored_ids(self) -> set[str]:
        """The object ids under data/ (one listing)."""
        prefix = f"{self.root}data/"
        return {info.key.rsplit("/", 1)[-1]
                for info in self.provider.list(prefix, recursive=True, metadata=False)}

    def has(self, sha: str, ids: set[str]) -> bool:
        return crypto.object_id(self.key, sha) in ids

    def put_content(self, sha: str, size: int, src) -> int:
        """Store ``size`` bytes read from ``src`` as the content ``sha``; bytes written.

        The bytes are hashed on the way and the object checked afterwards
        (size in the store); a mismatch deletes the object and raises
        IntegrityError.
        """
        key = self.data_key(sha)
        hashing = Hashing(src)
        body: Hashing | crypto.Encrypting = hashing
        stored = size
        meta = {META_SHA256: sha}
        if self.key is not None:
            body = crypto.Encrypting(hashing, size, self.key)
            stored = crypto.sealed_size(size)
            meta = {META_ENCRYPTED: "aes-256-gcm"}
        self.provider.write(key, body, stored, meta, "application/octet-stream")
        try:
            if hashing.h.hexdigest() != sha or hashing.n != size:
                raise IntegrityError(f"{sha[:12]}...: the source changed while it was backed "
                                     "up (SHA-256 or size differ)")
            if self.provider.head(key).size != stored:
                raise IntegrityError(f"{key}: stored size differs from what was written")
        except (IntegrityError, NotFound):
            self.provider.delete(key)
            raise
        return stored

    def open_content(self, sha: str, size: int | None = None) -> Verifying:
        """The plaintext of content ``sha``, checked against it as it is read."""
        key = self.data_key(sha)
        raw = self.provider.open_read(key)
        src = crypto.Decrypting(raw, self.key, key) if self.key is not None else raw
        return Verifying(src, sha, size, f"{self.name}:{key}")

    def delete_content(self, oid: str) -> None:
        self.provider.delete(f"{self.root}data/{oid[:2]}/{oid}")

    def data_listing(self) -> Iterator[tuple[str, int, float | None]]:
        """(object id, stored size, last modified) of every content object."""
        for info in self.provider.list(f"{self.root}data/", recursive=True, metadata=False):
            yield info.key.rsplit("/", 1)[-1], info.size, info.last_modified

    # -- documents (manifests, catalogs, kept versions) ----------------------
    def put_doc(self, key: str, data: bytes, meta: dict[str, str] | None = None,
                compressed: bool = False) -> int:
        body = data if compressed else gzip.compress(data, compresslevel=6, mtime=0)
        plain_sha = hashlib.sha256(body).hexdigest()
        out = body
        if self.key is not None:
            out = crypto.Encrypting(io.BytesIO(body), len(body), self.key).read()
        full = {**(meta or {}), META_SHA256: plain_sha}
        self.provider.write(self.root + key, io.BytesIO(out), len(out), full, "application/gzip")
        if self.provider.head(self.root + key).size != len(out):
            raise IntegrityError(f"{self.root + key}: stored size differs from what was written")
        return len(out)

    def get_doc(self, key: str, decompress: bool = True) -> bytes:
        full = self.root + key
        with self.provider.open_read(full) as f:
            raw = f.read()
        want = self.provider.head(full).sha256
        body = raw
        if self.key is not None:
            body = crypto.Decrypting(io.BytesIO(raw), self.key, full).read()
        elif raw.startswith(crypto.MAGIC):
            raise IntegrityError(f"{full}: this backup is encrypted: set key_file in its "
                                 "[[dr.backups]]")
        if want and hashlib.sha256(body).hexdigest() != want:
            raise IntegrityError(f"{full}: does not match its SHA-256")
        try:
            return gzip.decompress(body) if decompress else body
        except (OSError, EOFError) as e:
            raise IntegrityError(f"{full}: not a whole gzip file: {e}") from None

    def list_docs(self, folder: str) -> list:
        return list(self.provider.list(f"{self.root}{folder}/", recursive=True))

    def delete_doc(self, key: str) -> None:
        self.provider.delete(self.root + key)

    # -- backups ----------------------------------------------------------------
    def backups(self) -> list[Listed]:
        """Every backup on the target, oldest first."""
        out = []
        for info in self.list_docs("backups"):
            name = info.key.rsplit("/", 1)[-1]
            if not name.endswith(MANIFEST_SUFFIX):
                continue
            bid = name[:-len(MANIFEST_SUFFIX)]
            try:
                at = id_time(bid)
            except ValueError:
                continue
            m = info.metadata
            out.append(Listed(bid, at, _int(m.get(META_FILES)), _int(m.get(META_NEW)),
                              _int(m.get(META_TOTAL))))
        out.sort(key=lambda b: b.at)
        return out

    # -- locks --------------------------------------------------------------------
    def lock(self, at: float) -> str:
        key = f"locks/{backup_id(at)}-{socket.gethostname()}"
        self.provider.write_bytes(self.root + key, b"", {"omnifs_mtime": f"{time.time():.6f}"})
        return key

    def active_locks(self, max_age: float, now: float) -> list[str]:
        out = []
        for info in self.list_docs("locks"):
            try:
                at = id_time(info.key.rsplit("/", 1)[-1][:23])
            except ValueError:
                continue
            if now - at < max_age:
                out.append(info.key)
        return out


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None
