"""One backup: a catalog snapshot plus the content the target does not hold yet.

Steps: a lock object on the target (prune leaves data alone meanwhile), a
consistent copy of the catalog as a SQLite file (either engine's,
omnifs/catalog/portable.py: the mount goes on), its
tree walked into a manifest, one listing of the target's ``data/``, then each
SHA-256 the target lacks read from a replica of the current version and
written under ``data/`` (hashed on the way, checked as written: a replica
that changed since the copy is skipped for the next one). The catalog copy
and last the manifest are written: a backup exists once its manifest does,
so a failed run leaves only content a later run reuses. Unchanged files and
identical files cost nothing: their content is already there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.catalog import Catalog, portable
from omnifs.errors import OmnifsError, Unavailable
from omnifs.providers import Provider

from .manifest import Entry, Manifest, walk
from .restore import load_manifest
from .target import CATALOG_SUFFIX, MANIFEST_SUFFIX, META_FILES, META_NEW, META_TOTAL, Target
from .target import backup_id as make_id

log = logging.getLogger("omnifs.dr")

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


@dataclass
class BackupResult:
    id: str
    at: float
    files: int = 0
    bytes_total: int = 0
    #: plaintext bytes of content the target did not hold before
    bytes_new: int = 0
    objects_new: int = 0
    #: bytes written to the target (content, encrypted size when encrypted)
    bytes_written: int = 0
    seconds: float = 0.0
    #: file paths left out, with why (no content anywhere yet)
    left_out: dict[str, str] = field(default_factory=dict)


def run(catalog: str | Path, providers: dict[str, Provider], target: Target, *, name: str,
        paths: list[str], workers: int = 8, clock: Callable[[], float] = time.time,
        progress: Callable[[int, int], None] | None = None) -> BackupResult:
    """Take one backup of ``paths`` of the catalog ``catalog`` (a SQLite file or a
    PostgreSQL URL) to ``target``. Unavailable (one line) when any file's
    content could not be read and stored: then no manifest is written."""
    start = time.monotonic()
    at = clock()
    result = BackupResult(make_id(at), at)
    lock = target.lock(at)
    try:
        with tempfile.TemporaryDirectory(dir=portable.scratch_dir(catalog),
                                         prefix=".dr-") as tmp:
            db = Path(tmp) / "catalog.db"
            portable.copy_catalog(catalog, db)
            cat = Catalog(db)
            try:
                entries = walk(cat, paths)
            finally:
                cat.close()
            entries = _drop_unknown(entries, result)
            result.bytes_new, result.objects_new, result.bytes_written = _content(
                entries, providers, target, workers, progress)
            gz = Path(tmp) / "catalog.db.gz"
            with open(db, "rb") as f, gzip.open(gz, "wb", compresslevel=1) as z:
                shutil.copyfileobj(f, z, 1 << 20)
            target.put_doc(f"backups/{result.id}{CATALOG_SUFFIX}", gz.read_bytes(),
                           compressed=True)
        manifest = Manifest(result.id, at, name, list(paths), socket.gethostname(), entries,
                            result.bytes_new)
        result.files, result.bytes_total = len(manifest.files), manifest.bytes_total
        target.put_doc(f"backups/{result.id}{MANIFEST_SUFFIX}", manifest.encode(),
                       {META_FILES: str(result.files), META_NEW: str(result.bytes_new),
                        META_TOTAL: str(result.bytes_total)})
    finally:
        try:
            target.delete_doc(lock)
        except OmnifsError as e:
            log.warning("backup lock %s not removed: %s", lock, e)
    result.seconds = time.monotonic() - start
    return result


def _drop_unknown(entries: list[Entry], result: BackupResult) -> list[Entry]:
    """Files whose content no store holds yet (never uploaded) are left out, named."""
    kept = []
    for e in entries:
        if e.kind == "file" and e.sha256 is None:
            if e.size == 0:
                e.sha256 = EMPTY_SHA
            else:
                result.left_out[e.path] = "not uploaded to any store yet"
                continue
        kept.append(e)
    return kept


def _known(target: Target) -> set[str] | None:
    """The SHA-256s the newest backup references (its content is on the target: prune
    keeps what a kept backup needs, and every rule keeps the newest); None: no backup."""
    listed = target.backups()
    if not listed:
        return None
    try:
        return {e.sha256 for e in load_manifest(target, listed[-1].id).files if e.sha256}
    except OmnifsError as e:
        log.warning("newest backup not readable (%s): listing the target's content instead",
                    str(e).splitlines()[0])
        return None


def _content(entries: list[Entry], providers: dict[str, Provider], target: Target,
             workers: int, progress: Callable[[int, int], None] | None) -> tuple[int, int, int]:
    """Store the content the target lacks; (plaintext bytes, objects, bytes written).

    What the target holds: after a first backup, the newest backup's content
    plus a HEAD of each other SHA-256 (an incremental backup asks about the
    changed files only); else one listing of ``data/``.
    """
    known = _known(target)
    have = target.stored_ids() if known is None else set()
    todo: dict[str, Entry] = {}
    for e in entries:
        if e.kind == "file" and e.sha256 and e.sha256 not in (known or ()) \
                and not target.has(e.sha256, have):
            todo.setdefault(e.sha256, e)
    asked = known is not None
    done = [0]
    failures: list[str] = []
    total = sum(e.size for e in todo.values())
    stored: list[int] = []

    def one(e: Entry) -> int:
        try:
            if asked and target.provider.exists(target.data_key(e.sha256 or "")):
                return 0
            stored.append(e.size)
            written = _store(e, providers, target)
        except OmnifsError as err:
            failures.append(f"{e.path}: {str(err).splitlines()[0]}")
            return 0
        done[0] += e.size
        if progress:
            progress(done[0], total)
        return written

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        written = sum(pool.map(one, todo.values()))
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise Unavailable(f"backup incomplete, no manifest written: {failures[0]}{more}")
    return sum(stored), len(stored), written


def _store(e: Entry, providers: dict[str, Provider], target: Target) -> int:
    if e.sha256 == EMPTY_SHA:
        return target.put_content(EMPTY_SHA, 0, io.BytesIO(b""))
    last: OmnifsError | None = None
    for provider, key in e.sources:
        p = providers.get(provider)
        if p is None:
            continue
        try:
            with p.open_read(key) as src:
                return target.put_content(e.sha256 or "", e.size, src)
        except OmnifsError as err:
            last = err
            log.info("%s: not read from %s: %s", e.path, provider, err)
    if last is not None:
        raise last
    raise Unavailable("no store holds its current version")
