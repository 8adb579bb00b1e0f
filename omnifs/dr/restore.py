"""Restore a file, a tree or the whole namespace from a backup, as it was then.

Into a local directory (``DIR/<path>``: each entry under its full path) or
in place through a running mount, where every rewritten file becomes a new
version (so a restore is itself undone by restoring to before it). Content
is read from the target and checked against its SHA-256 as it streams; a
file is in place only once all its bytes matched. Then the metadata:
hard links as links to the first name, xattrs, owners (when running as
root), modes, and times; directories last and deepest first, since adding
children changes a directory's mtime. Into a fresh store: omnifs/dr/fresh.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.catalog import portable
from omnifs.errors import IntegrityError, OmnifsError

from .manifest import Entry, Manifest
from .target import CATALOG_SUFFIX, MANIFEST_SUFFIX, Target

CHUNK = 1 << 20
#: xattrs a mount shows of its own (omnifs/mountfs): never restored or removed
OWN_XATTRS = "user.omnifs."


@dataclass
class Restored:
    files: int = 0
    bytes: int = 0
    dirs: int = 0
    others: int = 0
    #: files already holding the wanted content (in place), not rewritten
    unchanged: int = 0
    #: entries removed by ``delete`` (not in the backup)
    deleted: int = 0
    seconds: float = 0.0
    #: path -> one line: what failed (checksum, store)
    failed: dict[str, str] = field(default_factory=dict)
    #: dry run: (action, path, size) planned
    plan: list[tuple[str, str, int]] = field(default_factory=list)
    #: into a store: the key of the catalog snapshot written beside the objects
    snapshot: str | None = None

    @property
    def throughput(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def restore_catalog(catalog, target: Target, bid: str) -> dict[str, int]:
    """Replace the (empty) ``catalog``, on either engine, with the catalog copy of backup
    ``bid``; its counts."""
    body = target.get_doc(f"backups/{bid}{CATALOG_SUFFIX}")
    with tempfile.TemporaryDirectory(dir=portable.scratch_dir(catalog.target),
                                     prefix=".dr-") as tmp:
        copy = Path(tmp) / "catalog.db"
        copy.write_bytes(body)
        found = portable.check_copy(copy)
        portable.restore(catalog, copy)
    return found


def load_manifest(target: Target, bid: str) -> Manifest:
    key = f"backups/{bid}{MANIFEST_SUFFIX}"
    return Manifest.decode(target.get_doc(key), f"{target.name}:{target.root}{key}")


def restore(manifest: Manifest, target: Target, dest: Path, *, path: str = "/",
            dry_run: bool = False, workers: int = 8,
            unchanged: Callable[[Entry, Path], bool] | None = None,
            progress: Callable[[int, int], None] | None = None,
            entries: list[Entry] | None = None, delete: bool = False) -> Restored:
    """Restore ``path`` of ``manifest`` under ``dest``; failures are in ``Restored.failed``.

    ``unchanged(entry, where)`` True: the file there already holds that
    content and is left as it is (in place: no needless new version).
    ``entries`` restores those instead of ``path``'s (a drill's sample).
    ``delete``: what is under ``path`` at ``dest`` but was not in the backup
    goes (files a ransomware run left, files created after the point).
    """
    start = time.monotonic()
    chosen = entries if entries is not None else manifest.select(path)
    if not chosen:
        raise OmnifsError(f"{path}: not in backup {manifest.id}")
    out = Restored()
    files = [e for e in chosen if e.kind == "file"]
    if dry_run:
        for e in chosen:
            out.plan.append(("write" if e.kind == "file" else f"make {e.kind}", e.path, e.size))
            out.plan.extend(("link", name, 0) for name in e.links)
        out.files, out.bytes = len(files), sum(e.size for e in files)
        return out
    dirs = [e for e in chosen if e.kind == "dir"]
    for e in dirs:
        _make_dir(_at(dest, e.path))
    total = sum(e.size for e in files)
    done = [0]
    lock = threading.Lock()

    def one(e: Entry) -> None:
        where = _at(dest, e.path)
        try:
            if unchanged is not None and unchanged(e, where):
                with lock:
                    out.unchanged += 1
                return
            _write_file(target, e, where)
        except (OmnifsError, OSError) as err:
            out.failed[e.path] = line(err)
            return
        with lock:
            out.files += 1
            out.bytes += e.size
            done[0] += e.size
        if progress:
            progress(done[0], total)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, files))
    for e in chosen:
        if e.kind in ("dir", "file") or e.path in out.failed:
            continue
        try:
            _make_other(e, _at(dest, e.path))
            out.others += 1
        except OSError as err:
            out.failed[e.path] = line(err)
    for e in chosen:
        if e.path in out.failed:
            continue
        try:
            for name in e.links:
                _link(_at(dest, e.path), _at(dest, name))
            if e.kind != "dir":
                _apply_meta(e, _at(dest, e.path))
        except OSError as err:
            out.failed[e.path] = line(err)
    if delete:
        out.deleted = _delete_extra(chosen, dest, path, out.failed)
    for e in sorted(dirs, key=lambda d: d.path.count("/"), reverse=True):
        try:
            _apply_meta(e, _at(dest, e.path))
            out.dirs += 1
        except OSError as err:
            out.failed[e.path] = line(err)
    out.seconds = time.monotonic() - start
    return out


def _delete_extra(chosen: list[Entry], dest: Path, path: str, failed: dict[str, str]) -> int:
    """Remove what lies under ``path`` at ``dest`` but is no name of ``chosen``."""
    keep = {n for e in chosen for n in (e.path, *e.links)}
    top = _at(dest, path)
    if not top.is_dir() or top.is_symlink():
        return 0
    gone = 0
    for dirpath, dirnames, filenames in os.walk(top, topdown=True):
        rel = os.path.relpath(dirpath, dest)
        for name in [*dirnames, *filenames]:
            p = f"/{name}" if rel == "." else f"/{rel}/{name}"
            if p in keep:
                continue
            try:
                _clear(Path(dirpath, name), keep_dir=False)
                gone += 1
            except OSError as err:
                failed[p] = line(err)
            if name in dirnames:
                dirnames.remove(name)
    return gone


def line(err: BaseException) -> str:
    """One line saying what ``err`` was."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename else "")
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _at(dest: Path, path: str) -> Path:
    return dest / path.lstrip("/") if path != "/" else dest


def _clear(where: Path, keep_dir: bool) -> None:
    """Remove what is at ``where`` unless it is a directory and ``keep_dir``."""
    try:
        st = os.lstat(where)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(where)
    else:
        os.unlink(where)


def _make_dir(where: Path) -> None:
    try:
        st = os.lstat(where)
        if stat.S_ISDIR(st.st_mode):
            return
        os.unlink(where)
    except FileNotFoundError:
        pass
    where.mkdir(parents=True, exist_ok=True)


def _write_file(target: Target, e: Entry, where: Path) -> None:
    """Download, check and put the content in place: a regular file there keeps its
    inode (a new version in a mount); anything else there is replaced."""
    try:
        st = os.lstat(where)
        regular = stat.S_ISREG(st.st_mode)
        if not regular:
            _clear(where, keep_dir=False)
    except FileNotFoundError:
        regular = False
        where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.with_name(f".{where.name}.omnifs-restore")
    dst = where if regular else tmp
    try:
        with target.open_content(e.sha256 or "", e.size) as src, open(dst, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
            src.check()
    except BaseException:
        if not regular:
            tmp.unlink(missing_ok=True)
        raise
    if not regular:
        os.replace(tmp, where)


def _make_other(e: Entry, where: Path) -> None:
    where.parent.mkdir(parents=True, exist_ok=True)
    if e.kind == "symlink":
        try:
            if os.readlink(where) == e.target:
                return
        except OSError:
            pass
        _clear(where, keep_dir=False)
        os.symlink(e.target or "", where)
        return
    _clear(where, keep_dir=False)
    kinds = {"fifo": stat.S_IFIFO, "socket": stat.S_IFSOCK, "chr": stat.S_IFCHR,
             "blk": stat.S_IFBLK}
    os.mknod(where, kinds[e.kind] | stat.S_IMODE(e.mode), e.rdev)


def _link(first: Path, name: Path) -> None:
    try:
        if os.path.samefile(first, name):
            return
    except OSError:
        pass
    _clear(name, keep_dir=False)
    name.parent.mkdir(parents=True, exist_ok=True)
    os.link(first, name)


def _apply_meta(e: Entry, where: Path) -> None:
    link = e.kind == "symlink"
    if not link:
        want = dict(e.xattr_items())
        try:
            for have in os.listxattr(where):
                # user.omnifs.*: the mount's own view (replica states), not the file's
                if have.startswith("user.") and not have.startswith(OWN_XATTRS) \
                        and have.encode() not in want:
                    os.removexattr(where, have)
            for name, value in want.items():
                if _get_xattr(where, name) != value:
                    os.setxattr(where, name, value)
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP) or want:
                raise
    if os.geteuid() == 0:
        os.chown(where, e.uid, e.gid, follow_symlinks=False)
    if not link:
        os.chmod(where, stat.S_IMODE(e.mode))
    os.utime(where, ns=(e.atime_ns, e.mtime_ns), follow_symlinks=False)


def _get_xattr(where: Path, name: bytes) -> bytes | None:
    try:
        return os.getxattr(where, name)
    except OSError:
        return None


def verify_tree(entries: list[Entry], dest: Path) -> dict[str, str]:
    """Read every restored file back and hash it: path -> what is wrong (a drill's check)."""
    bad: dict[str, str] = {}
    for e in entries:
        if e.kind != "file":
            continue
        h = hashlib.sha256()
        try:
            with open(_at(dest, e.path), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except OSError as err:
            bad[e.path] = line(err)
            continue
        if h.hexdigest() != e.sha256:
            bad[e.path] = str(IntegrityError(f"restored bytes hash to {h.hexdigest()[:12]}..., "
                                             f"not {str(e.sha256)[:12]}..."))
    return bad
