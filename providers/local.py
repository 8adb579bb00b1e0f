"""A local directory as a store (``file:///abs/path``).

Why it exists: ``omnifs init`` must work with no cloud account, and a local
replica is the cheapest second copy. It behaves like an object store, not like
a filesystem, so the rest of omnifs needs no special case:

* a key ``a/b.txt`` is the file ``ROOT/a/b.txt``; directories appear and
  vanish with the objects under them;
* a write is invisible until complete (temp file in the same directory,
  fsync, ``os.replace``); temp files are named ``.omnifs-tmp-*`` and never
  listed;
* objects are private like a cloud bucket's: files 0600, directories 0700
  (whatever the file's mode in a mount; the mount enforces that one);
* holes stay holes: writes and copies skip zero pages and a local source's
  holes (providers/sparse.py), so a sparse file costs its data, not its size;
* with ``free_space_ratio`` (the mount's config passes ``[cache]
  free_space_ratio``), a write that would leave less than that share of the
  disk free fails with NoSpace (ENOSPC) before the disk is full;
* user metadata and content type live in the xattr ``user.omnifs.meta``
  (JSON); where the filesystem has no user xattrs (ENOTSUP) they go to a
  sidecar ``ROOT/.omnifs/meta/<key>.json`` instead, which listings skip.

Caveats: a key and a "directory" of the same name cannot coexist (``a`` and
``a/b``); writing the second raises Conflict. A missing root directory is
reported as NotFound on first use, not in the constructor, so that ``omnifs
init`` can build the provider and then create the directory.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import io
import json
import os
import stat
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from . import compat_cells, diskspace, sparse
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
    Conflict,
    InvalidInput,
    NoSpace,
    NotFound,
    OmnifsError,
    PermissionDenied,
    PreconditionFailed,
    RootMissing,
    Unavailable,
)

if TYPE_CHECKING:
    from .registry import ProviderSettings

XATTR = "user.omnifs.meta"
TMP_PREFIX = ".omnifs-tmp-"
#: sidecar metadata, relative to the root, used only where xattrs are unsupported
SIDECAR_DIR = ".omnifs/meta"
CHUNK = MiB
_MAX_COMPONENT = 255
#: objects and their directories are the owner's alone (the umask may only narrow them)
FILE_MODE = 0o600
DIR_MODE = 0o700
#: longest path the kernel takes (PATH_MAX less its NUL), and what a key's file needs
#: beside it: the temp file of a write, or the sidecar of its metadata
_PATH_MAX = 4095
_PATH_SLACK = len(TMP_PREFIX) + 32 + len(SIDECAR_DIR) + len(".json") + 2


class _Window(io.RawIOBase):
    """``[start, end)`` of an open file: reads stop at ``end`` as a ranged GET would."""

    def __init__(self, f: BinaryIO, remaining: int | None):
        self._f = f
        self._remaining = remaining

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        want = len(b)
        if self._remaining is not None:
            want = min(want, self._remaining)
        if want <= 0:
            return 0
        # an unbuffered file: BinaryIO does not declare the readinto it has
        n = self._f.readinto(memoryview(b)[:want])  # type: ignore[attr-defined]
        if self._remaining is not None:
            self._remaining -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class LocalProvider(Provider):
    schemes = ("file",)

    capabilities = Capabilities(
        server_side_copy=True,
        tiers=(),
        native_checksums=(),
        max_key_bytes=4096,
        # a local write is one sequential stream; parts would gain nothing
        multipart_threshold=1 << 62,
        part_size=16 * MiB,
        # if_absent: link(2) of the finished temp file (atomic); if_match: compared and
        # renamed under an flock of the directory (atomic among omnifs's own writers)
        conditional_writes=True,
    )
    compat = compat_cells.LOCAL

    def __init__(self, settings: ProviderSettings):
        super().__init__(settings)
        self.root = os.path.abspath(self.location.path)
        fsync = str(settings.extra.get("fsync", "true")).lower()
        self._fsync = fsync not in ("0", "false", "no", "off")
        #: share of the disk no write may take (the mount's config sets [cache] free_space_ratio)
        self._free_ratio = float(settings.extra.get("free_space_ratio", 0) or 0)
        self._root_checked = False
        #: None until the first metadata write tells whether xattrs work here
        self._xattrs: bool | None = None

    # -- paths and errors ------------------------------------------------
    def key_limit(self) -> int:
        """A key is a path under the root: PATH_MAX counts the root's own length."""
        return min(self.capabilities.max_key_bytes, _PATH_MAX - len(self.root.encode()) - 1
                   - _PATH_SLACK)

    def _path(self, key: str) -> str:
        """The file for ``key``, refusing names that would escape the root or can't exist."""
        name = self.object_name(key)
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") for p in parts):
            raise InvalidInput("key must be a relative path without empty, '.' or '..' parts",
                               provider=self.name, key=key)
        for p in parts:
            if len(p.encode("utf-8")) > _MAX_COMPONENT:
                raise InvalidInput(f"a path component is longer than {_MAX_COMPONENT} bytes",
                                   provider=self.name, key=key[:80] + "...")
        if parts[-1].startswith(TMP_PREFIX):
            raise InvalidInput(f"names starting with {TMP_PREFIX!r} are reserved",
                               provider=self.name, key=key)
        return os.path.join(self.root, *parts)

    def _check_root(self) -> None:
        if self._root_checked:
            return
        if not os.path.isdir(self.root):
            raise self._root_missing()
        self._root_checked = True

    def _root_missing(self) -> RootMissing:
        return RootMissing(
            f"directory {self.root} does not exist (create it, or run `omnifs init`)",
            provider=self.name)

    def _translate(self, exc: BaseException, key: str | None) -> OmnifsError:
        if isinstance(exc, OSError):
            return self._os_error(exc, key)
        return super()._translate(exc, key)

    def _os_error(self, e: OSError, key: str | None, *, reading: bool = False) -> OmnifsError:
        """The omnifs error for an OSError met while working on ``key``.

        ``reading``: a path through a file (ENOTDIR) just means "no such object".
        """
        code = e.errno
        if reading and code in (errno.ENOTDIR, errno.EISDIR):
            code = errno.ENOENT
        reason = os.strerror(code) if code else str(e)
        if code in (errno.ENOENT, errno.ENOTDIR) and not os.path.isdir(self.root):
            self._root_checked = False
            return self._root_missing()
        cls: type[OmnifsError]
        if code == errno.ENOENT:
            cls, reason = NotFound, "no such object"
        elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
            cls = PermissionDenied
        elif code in (errno.ENOSPC, errno.EDQUOT):
            cls, reason = NoSpace, e.strerror or reason  # ours says which reserve
        elif code in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY):
            cls, reason = Conflict, f"{reason} (a key and a 'directory' share this name)"
        elif code == errno.ENAMETOOLONG:
            cls = InvalidInput
        else:
            cls = Unavailable
        return cls(reason, provider=self.name, key=key)

    # -- metadata -------------------------------------------------------
    def _sidecar(self, path: str) -> str:
        rel = os.path.relpath(path, self.root)
        return os.path.join(self.root, SIDECAR_DIR, rel + ".json")

    def _publish_if(self, key: str, tmp: str, path: str, if_absent: bool,
                    if_match: str | None) -> None:
        """Move the finished ``tmp`` to ``path`` if the precondition holds, else refuse."""
        lock = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if if_absent:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise refused(self.name, key, True) from None
                os.unlink(tmp)
                return
            try:
                now = self._info(key, path, os.stat(path), {}).etag
            except FileNotFoundError:
                now = None
            if now != if_match:
                raise refused(self.name, key, False)
            os.replace(tmp, path)
        finally:
            os.close(lock)  # releases the flock

    def _store_meta(self, fd: int, final_path: str, meta: dict, sidecar: bool = True) -> bool:
        """Store ``meta`` on ``fd`` (xattr) or in ``final_path``'s sidecar; False: it needs the
        sidecar and ``sidecar`` said not yet (``fd`` -1: the sidecar only)."""
        blob = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode()
        if fd >= 0 and self._xattrs is not False:
            try:
                os.setxattr(fd, XATTR, blob)
                self._xattrs = True
                return True
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self._xattrs = False
        if not sidecar:
            return False
        side = self._sidecar(final_path)
        os.makedirs(os.path.dirname(side), mode=DIR_MODE, exist_ok=True)
        tmp = os.path.join(os.path.dirname(side), f"{TMP_PREFIX}{uuid.uuid4().hex}")
        with _create(tmp) as f:
            f.write(blob)
        os.replace(tmp, side)
        return True

    def _load_meta(self, path: str) -> dict:
        blob: bytes | None = None
        if self._xattrs is not False:
            try:
                blob = os.getxattr(path, XATTR)
            except OSError as e:
                if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    self._xattrs = False
                elif e.errno != errno.ENODATA:
                    raise
        if blob is None and self._xattrs is False:
            try:
                with open(self._sidecar(path), "rb") as f:
                    blob = f.read()
            except FileNotFoundError:
                pass
        if not blob:
            return {}
        try:
            meta = json.loads(blob)
        except ValueError:  # written by someone else: treat as absent rather than fail reads
            return {}
        return meta if isinstance(meta, dict) else {}

    def _info(self, key: str, path: str, st: os.stat_result | None = None,
              meta: dict | None = None) -> ObjectInfo:
        st = st or os.stat(path)
        meta = self._load_meta(path) if meta is None else meta
        return ObjectInfo(
            key=key,
            size=st.st_size,
            last_modified=st.st_mtime,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}",
            metadata={str(k): str(v) for k, v in (meta.get("metadata") or {}).items()},
            content_type=meta.get("content_type"),
        )

    # -- the primitives ------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        self._check_root()
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound("no such object (it is a directory)", provider=self.name, key=key)
            return self._info(key, path, st)
        except OSError as e:
            raise self._os_error(e, key, reading=True) from None

    def open_read(self, key: str, start: int = 0, end: int | None = None) -> ReadStream:
        path = self._path(key)
        self._check_root()
        if start < 0 or (end is not None and end < start):
            raise InvalidInput(f"bad range [{start}, {end})", provider=self.name, key=key)
        try:
            # to the end of the file: the plain file object is the fastest stream there is
            f = open(path, "rb", buffering=-1 if end is None else 0)  # noqa: SIM115
        except OSError as e:
            raise self._os_error(e, key, reading=True) from None
        try:
            info = self._info(key, path, os.fstat(f.fileno()))
            f.seek(start)
        except OSError as e:
            f.close()
            raise self._os_error(e, key) from None
        if end is None:
            f.info = info  # type: ignore[attr-defined]  # read_info's attribute
            return f
        remaining = end - start
        reader = io.BufferedReader(_Window(f, remaining), buffer_size=CHUNK)
        reader.info = info  # type: ignore[attr-defined]  # read_info's attribute
        return reader

    def write(self, key: str, stream: WriteSource, size: int | None = None,
              metadata: dict[str, str] | None = None,
              content_type: str | None = None, *, if_absent: bool = False,
              if_match: str | None = None) -> ObjectInfo:
        path = self._path(key)
        self._check_root()
        meta = {"metadata": dict(metadata or {}),
                "content_type": content_type_for(key, content_type)}
        with self.preconditioned(key, if_absent, if_match):
            cond = (if_absent, if_match) if if_absent or if_match is not None else None
            return self._atomic_write(key, path, meta,
                                      lambda out: self._pump(key, stream, size, out), cond)

    def _room_for(self, nbytes: int) -> None:
        """Refuse (ENOSPC) bytes that would go into the disk's free-space reserve."""
        if self._free_ratio > 0:
            diskspace.check_room(self.root, self._free_ratio, nbytes)

    def _pump(self, key: str, stream: WriteSource, size: int | None, out: BinaryIO) -> None:
        got = sparse.copy_stream(stream, out.fileno(), size, before_write=self._room_for)
        if size is not None and got < size:
            raise InvalidInput(f"stream ended {size - got} bytes short of the announced {size}",
                               provider=self.name, key=key)

    def _atomic_write(self, key: str, path: str, meta: dict, fill,
                      cond: tuple[bool, str | None] | None = None) -> ObjectInfo:
        parent = os.path.dirname(path)
        tmp = os.path.join(parent, f"{TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            try:
                out = _create(tmp)
            except FileNotFoundError:  # the first object in a new "directory"
                os.makedirs(parent, mode=DIR_MODE, exist_ok=True)
                out = _create(tmp)
            with out:
                try:
                    fill(out)
                    out.flush()
                    # a conditional write's sidecar waits for the condition to hold
                    side = not self._store_meta(out.fileno(), path, meta, cond is None)
                    if self._fsync:
                        os.fsync(out.fileno())
                    st = os.fstat(out.fileno())
                except BaseException:
                    out.close()
                    _unlink_quietly(tmp)
                    raise
            if cond is None:
                os.replace(tmp, path)
            else:
                self._publish_if(key, tmp, path, *cond)
                if side:
                    self._store_meta(-1, path, meta, True)
            if self._fsync:
                _fsync_dir(parent)
            # what we just wrote, without reading the metadata back (rename keeps the inode)
            return self._info(key, path, st, meta)
        except PreconditionFailed:
            _unlink_quietly(tmp)
            raise
        except OSError as e:
            _unlink_quietly(tmp)
            raise self._os_error(e, key) from None

    def copy(self, src_key: str, dst_key: str,
             metadata: dict[str, str] | None = None) -> ObjectInfo:
        src = self._path(src_key)
        dst = self._path(dst_key)
        self._check_root()
        try:
            if not os.path.isfile(src):
                os.stat(src)  # raises ENOENT/EACCES as appropriate
                raise NotFound("no such object (it is a directory)",
                               provider=self.name, key=src_key)
            meta = self._load_meta(src)
            src_f = open(src, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise self._os_error(e, src_key, reading=True) from None
        if metadata is not None:
            meta = {"metadata": dict(metadata), "content_type": meta.get("content_type")}
            if src == dst:  # new metadata only (chmod through the mount): the bytes stay
                with src_f:
                    try:
                        self._store_meta(src_f.fileno(), src, meta)
                        return self._info(dst_key, src, os.fstat(src_f.fileno()), meta)
                    except OSError as e:
                        raise self._os_error(e, dst_key) from None
        with src_f:
            return self._atomic_write(dst_key, dst, meta,
                                      lambda out: sparse.copy_fd(src_f.fileno(), out.fileno(),
                                                                 before_write=self._room_for))

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._check_root()
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as e:
            if e.errno == errno.EISDIR:
                return
            raise self._os_error(e, key) from None
        if self._xattrs is False:
            side = self._sidecar(path)
            _unlink_quietly(side)
            self._prune(os.path.dirname(side))
        self._prune(os.path.dirname(path))

    def _prune(self, directory: str) -> None:
        """Remove now-empty parents up to (not including) the root: stores have no empty dirs."""
        stop = os.path.join(self.root, SIDECAR_DIR)
        while directory not in (self.root, stop) and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def list(self, prefix: str = "", recursive: bool = True,
             metadata: bool = True) -> Iterator[ObjectInfo]:
        # metadata is one getxattr per file, cheaper than the head a caller would do instead
        self._check_root()
        if prefix:
            self.object_name(prefix)  # same UTF-8 / NUL checks as a key
        # start at the deepest directory the prefix names fully
        head, _, _ = prefix.rpartition("/")
        base_parts = [p for p in head.split("/") if p] if head else []
        if any(p in (".", "..") for p in base_parts):
            raise InvalidInput("prefix must not contain '.' or '..' parts",
                               provider=self.name, key=prefix)
        base = os.path.join(self.root, *base_parts)
        base_key = "/".join(base_parts) + "/" if base_parts else ""
        if recursive:
            yield from self._walk(base, base_key, prefix)
        else:
            yield from self._one_level(base, base_key, prefix)

    def _entries(self, directory: str) -> builtins.list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as it:
                return [e for e in it if not e.name.startswith(TMP_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise self._os_error(e, None) from None

    def _skip_dir(self, key: str) -> bool:
        return self._xattrs is not True and key == SIDECAR_DIR + "/"

    def _walk(self, directory: str, dir_key: str, prefix: str) -> Iterator[ObjectInfo]:
        for e in sorted(self._entries(directory), key=lambda e: e.name):
            key = dir_key + e.name
            try:
                if e.is_dir():
                    sub = key + "/"
                    # descend only where keys matching the prefix can be
                    if ((sub.startswith(prefix) or prefix.startswith(sub))
                            and not self._skip_dir(sub)):
                        yield from self._walk(e.path, sub, prefix)
                elif e.is_file() and key.startswith(prefix):
                    yield self._info(key, e.path, e.stat())
            except FileNotFoundError:  # deleted while we listed: it is simply gone
                continue
            except OSError as err:
                raise self._os_error(err, key) from None

    def _one_level(self, directory: str, dir_key: str, prefix: str) -> Iterator[ObjectInfo]:
        for e in sorted(self._entries(directory), key=lambda e: e.name):
            key = dir_key + e.name
            if not key.startswith(prefix):
                continue
            try:
                if e.is_dir():
                    if not self._skip_dir(key + "/") and self._has_objects(e.path, key + "/"):
                        yield ObjectInfo(key=key + "/", is_prefix=True)
                elif e.is_file():
                    yield self._info(key, e.path, e.stat())
            except FileNotFoundError:
                continue
            except OSError as err:
                raise self._os_error(err, key) from None

    def _has_objects(self, directory: str, dir_key: str) -> bool:
        """A directory holding only temp files, sidecars or nothing is no "prefix" in a store."""
        for e in self._entries(directory):
            if e.is_file():
                return True
            sub = dir_key + e.name + "/"
            if e.is_dir() and not self._skip_dir(sub) and self._has_objects(e.path, sub):
                return True
        return False


def _create(path: str) -> BinaryIO:
    """A new private file, open for writing (fails if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    return os.fdopen(fd, "wb")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_dir(path: str) -> None:
    """Make the rename durable: the directory entry lives in the directory's own blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
