"""The filesystem without the kernel: ``Operations`` handlers called directly under trio.

The tier between the provider tests and the real mounts (S3QL's ``t3_fs_api``,
rclone's VFS tests): the mount's own ``Operations`` is built from a config by
:func:`mountfs.mount.build_operations` over ``file://`` stores or the real
local servers (moto, the GCS emulator, Azurite), its background tasks run
in a nursery as in the mount, and a test calls the handlers as the kernel
would. Nothing here opens ``/dev/fuse``: pyfuse3's entry points that would
(``init``, ``main``, ``close``, ``terminate``) and the fallocate hook fail the
test if anything calls them (:func:`_no_kernel`).

* ``async def`` tests run under ``trio.run`` (:func:`pytest_pyfunc_call`).
* ``make_fs(...)`` is an async context manager yielding an :class:`Fs`; every
  store is wrapped in a :class:`providers.faulty.FaultyProvider`, so a test
  takes one down with ``fs.stores[name].outage = True``.
* pyfuse3's ``RequestContext`` and ``SetattrFields`` are read-only from
  Python: :class:`Ctx` and :class:`Fields` carry the same attributes
  (tests/ops/test_kernel_free.py checks that they match), and
  ``pyfuse3.readdir_reply``, which writes into the kernel's request buffer,
  is replaced by :class:`Listing`, a buffer of a few entries that the
  listing helper pages through with the offsets readdir gives.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import inspect
import os
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pyfuse3
import pytest
import trio

from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.config import Config, parse_config
from omnifs.layout import object_meta
from omnifs.mountfs import fallocate
from omnifs.mountfs.mount import build_operations, start_background
from omnifs.mountfs.operations import Operations
from omnifs.mountfs.stores import MountHealth, Stores
from omnifs.providers import open_provider
from omnifs.providers.faulty import FaultyProvider
from tests import servers as S

#: pyfuse3's calls that reach the kernel (``/dev/fuse``); none may run in this tier
KERNEL_CALLS = ("init", "main", "close", "terminate")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run an ``async def`` test under ``trio.run`` (no pytest-trio needed)."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in inspect.signature(fn).parameters}
    trio.run(functools.partial(fn, **args))
    return True


@pytest.fixture(autouse=True)
def _no_kernel(monkeypatch):
    """Every pyfuse3 call that would talk to the kernel fails the test, even one swallowed
    by a handler's errno mapping: the calls are recorded and checked after the test."""
    called: list[str] = []

    def refuse(name: str):
        def call(*args, **kwargs):
            called.append(name)
            raise AssertionError(f"the kernel-free tier called {name}")

        return call

    for name in KERNEL_CALLS:
        monkeypatch.setattr(pyfuse3, name, refuse(f"pyfuse3.{name}"))
    monkeypatch.setattr(fallocate, "install", refuse("mountfs.fallocate.install"))
    monkeypatch.setattr(pyfuse3, "readdir_reply", Listing.reply)
    yield called
    assert not called, f"the kernel was asked for: {called}"


@dataclass(frozen=True)
class Ctx:
    """What a handler reads of pyfuse3's ``RequestContext``: the caller's ids and umask."""

    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    pid: int = field(default_factory=os.getpid)
    umask: int = 0o022


@dataclass(frozen=True)
class Fields:
    """pyfuse3's ``SetattrFields``: which attributes a setattr changes."""

    update_atime: bool = False
    update_mtime: bool = False
    update_ctime: bool = False
    update_mode: bool = False
    update_uid: bool = False
    update_gid: bool = False
    update_size: bool = False


class Clock:
    """Wall-clock time that a test can move forward (``MountHealth``'s clock)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


class Listing:
    """A readdir request's reply buffer: room for ``size`` entries, as the kernel's page."""

    def __init__(self, size: int = 3):
        self.size = size
        self.entries: list[tuple[bytes, pyfuse3.EntryAttributes, int]] = []

    @staticmethod
    def reply(token: Listing, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        """``pyfuse3.readdir_reply``: False when the buffer is full (the entry is not taken)."""
        if len(token.entries) >= token.size:
            return False
        token.entries.append((name, attr, next_id))
        return True


def size_attr(size: int) -> pyfuse3.EntryAttributes:
    attr = pyfuse3.EntryAttributes()
    attr.st_size = size
    return attr


async def raises_errno(code: int, call) -> None:
    """``await call`` answers ``FUSEError(code)``, as the kernel would see it."""
    with pytest.raises(pyfuse3.FUSEError) as info:
        await call
    assert info.value.errno == code, (errno.errorcode.get(info.value.errno), errno.errorcode[code])


@dataclass
class Fs:
    """A running filesystem and the handful of steps tests repeat (each one FUSE request)."""

    ops: Operations
    config: Config
    #: the stores as the filesystem sees them, each behind a fault switch
    stores: dict[str, FaultyProvider]
    #: the clock of the filesystem's health view: ``advance`` ages what it saw fail
    clock: Clock = field(default_factory=lambda: Clock())
    #: store name -> the proxy in front of its server (``make_fs(proxied=True)``)
    proxies: dict[str, S.CuttableProxy] = field(default_factory=dict)
    ctx: Ctx = field(default_factory=Ctx)

    @property
    def names(self) -> list[str]:
        return list(self.stores)

    async def lookup(self, path: str) -> pyfuse3.EntryAttributes:
        """The entry at ``path`` (a lookup per component, as the kernel walks it)."""
        attr = await self.ops.getattr(ROOT_INODE, self.ctx)
        for part in filter(None, path.split("/")):
            attr = await self.ops.lookup(attr.st_ino, os.fsencode(part), self.ctx)
        return attr

    async def ino(self, path: str) -> int:
        return (await self.lookup(path)).st_ino

    async def parent_and_name(self, path: str) -> tuple[int, bytes]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return await self.ino(head), os.fsencode(tail)

    async def mkdir(self, path: str, mode: int = 0o755) -> int:
        parent, name = await self.parent_and_name(path)
        return (await self.ops.mkdir(parent, name, stat.S_IFDIR | mode, self.ctx)).st_ino

    async def create(self, path: str, flags: int = os.O_WRONLY) -> tuple[int, int]:
        """Create ``path``: (file handle, inode)."""
        parent, name = await self.parent_and_name(path)
        info, attr = await self.ops.create(parent, name, stat.S_IFREG | 0o644, flags, self.ctx)
        return info.fh, attr.st_ino

    async def write_file(self, path: str, data: bytes) -> int:
        """``open(path, "wb").write(data)`` and close: create or truncate, write, flush,
        release. Returns the inode."""
        try:
            ino = await self.ino(path)
        except pyfuse3.FUSEError as e:
            if e.errno != errno.ENOENT:
                raise
            fh, ino = await self.create(path)
        else:
            fh = (await self.ops.open(ino, os.O_WRONLY | os.O_TRUNC, self.ctx)).fh
        await self.write_all(fh, data)
        await self.close(fh)
        return ino

    async def write_all(self, fh: int, data: bytes, offset: int = 0) -> None:
        step = 1 << 20
        for at in range(0, len(data), step):
            assert await self.ops.write(fh, offset + at, data[at:at + step]) == \
                len(data[at:at + step])

    async def close(self, fh: int) -> None:
        """close(2) then the kernel's release: flush answers close's errno."""
        try:
            await self.ops.flush(fh)
        finally:
            await self.ops.release(fh)

    async def read_handle(self, fh: int, size: int | None = None) -> bytes:
        """Every byte through ``fh``, in the kernel's 128 KiB requests, up to ``size``."""
        out = bytearray()
        while size is None or len(out) < size:
            want = 128 * 1024 if size is None else min(128 * 1024, size - len(out))
            piece = await self.ops.read(fh, len(out), want)
            if not piece:
                break
            out += piece
        return bytes(out)

    async def read_file(self, path: str) -> bytes:
        ino = await self.ino(path)
        fh = (await self.ops.open(ino, os.O_RDONLY, self.ctx)).fh
        try:
            return await self.read_handle(fh)
        finally:
            await self.ops.release(fh)

    async def listdir(self, path: str = "/", page: int = 3) -> list[str]:
        """The names in a directory, read in pages of ``page`` entries as ``ls`` does."""
        fh = await self.ops.opendir(await self.ino(path), self.ctx)
        names: list[str] = []
        after = 0
        while True:
            token = Listing(page)
            await self.ops.readdir(fh, after, token)
            if not token.entries:
                break
            names += [os.fsdecode(name) for name, _, _ in token.entries]
            after = token.entries[-1][2]
        await self.ops.releasedir(fh)
        return names

    async def truncate(self, ino: int, size: int, fh: int | None = None) -> int:
        """truncate(2) (``fh`` None) or ftruncate(2); the size getattr answers after it."""
        attr = await self.ops.setattr(ino, size_attr(size), Fields(update_size=True), fh,
                                      self.ctx)
        return attr.st_size

    async def replicas(self, path: str) -> dict[str, str]:
        """provider -> state of the current version, from the ``user.omnifs.replicas`` xattr."""
        raw = await self.ops.getxattr(await self.ino(path), b"user.omnifs.replicas", self.ctx)
        out = {}
        for line in raw.decode().splitlines():
            provider, state, _version, current, _key = line.split(" ", 4)
            if current == "current":
                out[provider] = state
        return out

    def held_by(self, key: str) -> list[str]:
        """Stores whose object ``key`` exists, asked past their fault switches."""
        held = []
        for name, p in self.stores.items():
            with contextlib.suppress(Exception):
                p.inner.head(key)
                held.append(name)
        return held


def _table(settings) -> dict:
    """A ``[providers.NAME]`` table for provider settings from tests/servers.py."""
    table = {"uri": settings.uri, "timeout": settings.timeout}
    for key in ("endpoint", "region", "access_key", "secret_key", "connection_string"):
        value = getattr(settings, key)
        if value:
            table[key] = value
    return table


@pytest.fixture
def make_fs(tmp_path_factory, request):
    """Factory: ``async with make_fs(kinds=("file", "file"), ...) as fs`` -> :class:`Fs`.

    ``copies`` (default: every store) and ``quorum`` are ``[replication]``;
    ``proxied`` puts each server behind a proxy a test can cut (``fs.proxies``);
    ``files`` are put in every store first, so the filesystem imports them and
    reads them from the stores (its cache is empty); ``rules`` are
    ``[[governance.rules]]``, ``extra`` adds keys to provider tables, ``cache``
    to ``[cache]``. The first store is heavier, so placement puts new files
    there first while it is up. At the end, what is dirty is published
    (``Operations.shutdown``, as at unmount) and the stores are closed.
    """

    made_proxies = contextlib.ExitStack()

    @contextlib.asynccontextmanager
    async def make(kinds=("file", "file"), *, copies: int | None = None, quorum: int = 1,
                   writeback: bool = False, files: dict[str, bytes] | None = None,
                   rules: list[dict] | None = None, extra: dict[str, dict] | None = None,
                   cache: dict | None = None, proxied: bool = False) -> AsyncIterator[Fs]:
        root = tmp_path_factory.mktemp("ops")
        tables: dict[str, dict] = {}
        proxies: dict[str, S.CuttableProxy] = {}
        for i, kind in enumerate(kinds):
            name = f"{kind}{i}"
            if kind == "file":
                store = root / f"store-{i}"
                store.mkdir()
                tables[name] = {"uri": f"file://{store}"}
                continue
            server = request.getfixturevalue("servers")[kind]
            bucket = S.unique_bucket()
            S.create_bucket(kind, server.endpoint, bucket)
            endpoint = server.endpoint
            if proxied:
                proxies[name] = made_proxies.enter_context(
                    contextlib.closing(S.CuttableProxy(server.port)))
                endpoint = proxies[name].endpoint
            tables[name] = _table(S.settings_for(kind, endpoint, bucket, name=name))
        extra = extra if extra is not None else {next(iter(tables)): {"weight": 2}}
        for name, more in extra.items():
            tables[name].update(more)
        data = {
            "catalog": {"url": f"sqlite:///{root / 'catalog.db'}"},
            "cache": {"dir": str(root / "cache"), "size": "1GiB", **(cache or {})},
            "replication": {"copies": copies or len(tables), "write_quorum": quorum},
            "providers": tables,
        }
        if rules:
            data["governance"] = {"rules": rules}
        config = parse_config(data, source="tests/ops")
        faulty = {name: FaultyProvider(open_provider(s), name=name)
                  for name, s in config.providers.items()}
        for key, body in (files or {}).items():
            meta = object_meta(hashlib.sha256(body).hexdigest(), 1_700_000_000 * 10**9)
            for p in faulty.values():
                p.inner.write_bytes(key, body, meta)
        stores = Stores(dict(faulty))
        clock = Clock()
        stores.attach_health(MountHealth(config.catalog_path(), clock=clock))
        catalog = Catalog(config.catalog_path())
        try:
            ops = build_operations(config, catalog, stores, writeback=writeback)
            async with _running(ops):
                yield Fs(ops, config, faulty, clock, proxies)
        finally:
            stores.close()
            catalog.close()

    with made_proxies:
        yield make


@contextlib.asynccontextmanager
async def _running(ops: Operations) -> AsyncIterator[None]:
    """The mount's life without the kernel: recover, serve (the caller), publish at the end.

    A failure of the caller's block leaves as itself, not wrapped in an exception group.
    """
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await ops.recover()
        await start_background(ops, nursery)
        try:
            yield
        except BaseException as e:  # noqa: BLE001 - re-raised below, outside the nursery
            failure = e
        with trio.CancelScope(shield=True):
            for p in ops.stores.by_name.values():
                if isinstance(p, FaultyProvider):
                    p.outage = False  # what is dirty is published, as at a clean unmount
            await ops.shutdown()
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure



#: store pairs the data-path tests run over: local directories, and each real server kind
STORE_PAIRS = [
    pytest.param(("file", "file"), id="file"),
    pytest.param(("s3", "az"), id="s3+az"),
    pytest.param(("gs", "minio"), id="gs+minio"),
]
