"""A restore into a fresh store: the files' objects, and a catalog snapshot beside them.

Objects alone cannot carry directories, symlinks, hard links, special files
or xattrs. So the tree as it was is built as a catalog of its own in a
scratch directory (one inode per manifest entry, a hard link's other names
as links, every attribute and xattr as the backup recorded it), each file is
written from the backup target as the mount writes it (its key, or the
``.omnifs/long/`` key of a path too long for the store; metadata with its
SHA-256, mtime, mode, owner, and the catalog and inode it belongs to),
checked against its SHA-256 as it streams, and last that catalog goes into
the store as a catalog snapshot (omnifs/snapshot.py: the daemon's own writer
and format). ``omnifs import`` over the store, or a mount's first start on a
new catalog, restores that snapshot: the tree at TIME, metadata and all.

The snapshot records no replicas: the import finds each file's object by the
``omnifs_origin`` in its metadata (omnifs/importer.py), whatever name the new
config gives the store.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omnifs import snapshot
from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.errors import IntegrityError, InvalidInput, OmnifsError
from omnifs.layout import object_key, placed_meta, write_sidecar
from omnifs.providers import ObjectInfo, Provider, open_provider, parse_uri
from omnifs.replication import current_meta

from .manifest import Entry, Manifest
from .restore import Restored, line
from .target import Target

#: catalog meta key: which backup (id) the snapshot's tree was restored from
META_FROM = "dr:restored_from"


def rooted(store: Provider, key: str) -> Provider:
    """A provider whose root is ``key`` inside ``store`` (``store`` itself for ""); a local
    directory (file://) that does not exist yet is made, as for ``--to DIR``."""
    key = key.strip("/")
    if not key:
        return store
    base = store.uri if store.uri.endswith("/") else store.uri + "/"
    settings = dataclasses.replace(store.settings, uri=base + key)
    if store.location.scheme == "file":
        Path(parse_uri(settings.uri).path).mkdir(parents=True, exist_ok=True)
    return open_provider(settings)


def check_empty(store: Provider, where: str, *, force: bool = True) -> None:
    """InvalidInput unless ``store`` holds no object (saying whether --force would do);
    an unreachable store says so."""
    try:
        first = next(iter(store.list("", recursive=True, metadata=False)), None)
    except OmnifsError as e:
        raise type(e)(f"{where}: cannot be listed: {line(e)}") from None
    if first is None:
        return
    if force:
        raise InvalidInput(f"{where} is not empty (it holds {first.key}): restore into an "
                           "empty store or prefix, or pass --force")
    raise InvalidInput(f"{where} is a store of this namespace and not empty (it holds "
                       f"{first.key}): restore into an empty store (--force is for stores "
                       "outside the namespace)")


def restore_to_store(manifest: Manifest, target: Target, store: Provider, *, path: str = "/",
                     workers: int = 8, scratch: Path | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     clock: Callable[[], float] = time.time) -> Restored:
    """Restore ``path`` of ``manifest`` into ``store`` (its root) as a namespace: objects and
    a catalog snapshot. The snapshot is written only when every file was: a store an import
    would turn into a tree with holes gets none (the failures are in ``Restored.failed``)."""
    start = time.monotonic()
    chosen = manifest.select(path)
    if not chosen:
        raise OmnifsError(f"{path}: not in backup {manifest.id}")
    out = Restored()
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".omnifs-dr-") as tmp:
        db = Path(tmp) / "catalog.db"
        cat = Catalog(db)
        try:
            with cat.transaction():
                files = _build(cat, _with_ancestors(manifest, chosen, path), out)
                cat.set_meta(META_FROM, manifest.id)
            jobs = [(ino, p, e, *placed_meta(store, object_key(store, p), p,
                                             current_meta(cat, cat.ns.get(ino))))
                    for ino, p, e in files]
        finally:
            cat.close()
        total = sum(e.size for _, _, e, _, _ in jobs)
        lock = threading.Lock()

        def one(job: tuple[int, str, Entry, dict[str, str], bytes | None]) -> None:
            _, p, e, meta, sidecar = job
            try:
                write_object(store, target, object_key(store, p), e.sha256 or "", e.size, meta,
                             sidecar)
            except OmnifsError as err:
                out.failed[p] = line(err)
                return
            with lock:
                out.files += 1
                out.bytes += e.size
                done = out.bytes
            if progress:
                progress(done, total)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, jobs))
        if not out.failed:
            out.snapshot = snapshot.take(db, {store.name: store}, clock=clock).key
    out.seconds = time.monotonic() - start
    return out


def write_object(store: Provider, target: Target, key: str, sha: str, size: int,
                 meta: dict[str, str], sidecar: bytes | None) -> ObjectInfo:
    """Content ``sha`` from the backup target as the object ``key`` of ``store``, checked
    against its SHA-256 as it streams; bytes that fail it are deleted, never left."""
    with target.open_content(sha, size) as src:
        info = store.write(key, src, size, meta)
        try:
            src.check()
            if info.size not in (0, size) and size:
                raise IntegrityError(f"{store.name}:{key}: stored size differs")
        except IntegrityError:
            store.delete(key)
            raise
    write_sidecar(store, key, sidecar)
    return info


def _with_ancestors(manifest: Manifest, chosen: list[Entry], path: str) -> list[Entry]:
    """``chosen`` after the directories above ``path`` (their attributes as they were)."""
    if path == "/":
        return chosen
    parts = path.strip("/").split("/")
    above = {"/"} | {"/" + "/".join(parts[:i]) for i in range(1, len(parts))}
    return [e for e in manifest.entries if e.path in above and e.kind == "dir"] + chosen


def _build(cat: Catalog, entries: list[Entry], out: Restored) -> list[tuple[int, str, Entry]]:
    """Every entry as an inode of ``cat`` (parents first); (inode, path, entry) of files."""
    dirs: dict[str, int] = {"/": ROOT_INODE}
    inos: dict[str, int] = {}
    files: list[tuple[int, str, Entry]] = []
    # directories first, shallowest first (the root before all); then everything else
    for e in sorted(entries, key=lambda e: (e.kind != "dir", e.path != "/", e.path.count("/"))):
        if e.path == "/":
            ino = ROOT_INODE
        else:
            parent_path, _, name = e.path.rpartition("/")
            parent = _dir(cat, dirs, parent_path or "/")
            mode = _KIND_BITS[e.kind] | stat.S_IMODE(e.mode)
            inode = cat.ns.create(parent, name, mode, e.uid, e.gid, target=e.target, rdev=e.rdev,
                                  size=_size(e),
                                  mtime_ns=e.mtime_ns, sha256=e.sha256,
                                  version=1 if e.kind == "file" else 0)
            ino = inode.id
        inos[e.path] = ino
        if e.kind == "dir":
            dirs[e.path] = ino
        for xname, value in e.xattr_items():
            cat.ns.set_xattr(ino, xname, value)
        if e.kind == "file":
            cat.replicas.add_version(ino, 1, e.sha256, e.size, e.mtime_ns)
            files.append((ino, e.path, e))
        elif e.kind != "dir":
            out.others += 1
        for other in e.links:
            parent_path, _, name = other.rpartition("/")
            cat.ns.add_link(ino, _dir(cat, dirs, parent_path or "/"), name)
    # attributes last: adding entries and links changed what they say
    for e in entries:
        ino = ROOT_INODE if e.path == "/" else inos[e.path]
        fields = {"atime_ns": e.atime_ns, "mtime_ns": e.mtime_ns}
        if e.kind == "dir":
            fields.update(mode=stat.S_IFDIR | stat.S_IMODE(e.mode), uid=e.uid, gid=e.gid)
            out.dirs += 1
        cat.ns.update(ino, **fields)
    return files


_KIND_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
              "fifo": stat.S_IFIFO, "socket": stat.S_IFSOCK, "chr": stat.S_IFCHR,
              "blk": stat.S_IFBLK}


def _size(e: Entry) -> int:
    """A file's bytes; a symlink's target's length, as the mount gives it."""
    if e.kind == "symlink":
        return len(os.fsencode(e.target or ""))
    return e.size if e.kind == "file" else 0


def _dir(cat: Catalog, dirs: dict[str, int], path: str) -> int:
    """The inode of directory ``path``, made (0755, this user) when the backup lacks it."""
    if path not in dirs:
        dirs[path] = cat.ns.ensure_dirs(path, os.getuid(), os.getgid())
    return dirs[path]
