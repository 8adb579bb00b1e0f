"""Real FUSE mounts for the mount tests, started through the ``omnifs`` CLI.

``mounted(kinds)`` writes an omnifs.toml over fresh stores of the given kinds
(two ``file`` stores by default, for speed), runs ``omnifs mount`` in the
background and yields a :class:`Mounted`; teardown unmounts. Tests skip only
when this machine cannot mount FUSE at all.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omnifs.catalog import Catalog
from omnifs.config import load_config
from omnifs.providers import Provider, open_provider
from tests.servers import CuttableProxy, catalog_url, fresh_catalog

ROOT = Path(__file__).resolve().parents[2]


def fuse_missing() -> str | None:
    """Why this machine cannot mount FUSE, or None: the one skip reason for mount tests."""
    try:
        import pyfuse3  # noqa: F401
    except ImportError:
        return "pyfuse3 is not installed (make install)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent: this machine cannot mount FUSE"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt-get install fuse3)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = fuse_missing()
    if reason:
        for item in items:
            if "tests/mount" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


def omnifs(*args: str, config: Path | None = None, check: bool = True,
           timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "omnifs"]
    if config is not None:
        argv += ["--config", str(config)]
    proc = subprocess.run(argv + list(args), check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"omnifs {' '.join(args)} failed ({proc.returncode}): "
                             f"{proc.stdout}{proc.stderr}")
    return proc


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return f'"{value}"'


def toml_table(settings, extra: dict | None = None) -> str:
    """A provider table; ``extra`` adds or overrides keys (region, weight, max_attempts...)."""
    extra = extra or {}
    lines = [f'uri = "{settings.uri}"']
    for key in ("endpoint", "region", "access_key", "secret_key", "connection_string"):
        value = getattr(settings, key)
        if value and key not in extra:
            lines.append(f'{key} = "{value}"')
    lines += [f"{key} = {toml_value(value)}" for key, value in extra.items()]
    return "\n".join(lines)


@dataclass
class Mounted:
    root: Path
    mp: Path
    config: Path
    names: list[str]
    settings: dict = field(default_factory=dict)
    _providers: dict[str, Provider] = field(default_factory=dict)

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            self._providers[name] = open_provider(self.settings[name])
        return self._providers[name]

    def catalog(self) -> Catalog:
        return Catalog(load_config(self.config).catalog_target())

    def homes(self, path: str) -> list[str]:
        """Providers holding ``path``'s current version (synced), as the catalog says.

        Placement spreads new files over equal providers, so tests ask here
        instead of assuming the first provider in config holds a file.
        """
        cat = self.catalog()
        try:
            inode = cat.ns.resolve(path)
            return sorted(r.provider for r in cat.replicas.of(inode.id)
                          if r.state == "synced" and r.version == inode.version)
        finally:
            cat.close()

    def cached(self, content_id: str, size: int) -> bool:
        """Does the mount's block cache hold every block of ``content_id``?"""
        from omnifs.cached_content import holds, open_cache

        cache = open_cache(load_config(self.config))
        assert cache is not None
        try:
            return holds(cache, content_id, size)
        finally:
            cache.close()

    def home(self, path: str) -> Provider:
        """A provider holding ``path``'s current version."""
        names = self.homes(path)
        assert names, f"{path}: no synced replica"
        return self.provider(names[0])

    #: pid of the background mount process
    pid: int | None = None
    #: extra `omnifs mount` options, e.g. ["--writeback"]
    mount_args: list[str] = field(default_factory=list)

    def mount(self) -> None:
        out = omnifs("mount", str(self.mp), *self.mount_args, config=self.config).stdout
        m = re.search(r"\(pid (\d+)\)", out)
        self.pid = int(m.group(1)) if m else None

    def umount(self) -> None:
        if os.path.ismount(self.mp):
            omnifs("umount", str(self.mp), config=self.config)

    def replicate(self) -> str:
        return omnifs("replicate", "--now", config=self.config).stdout

    def close(self) -> None:
        for p in self._providers.values():
            p.close()


def write_config(root: Path, settings: dict, *, copies: int = 2, quorum: int = 1,
                 allow_other: bool = False, cache_dir: Path | None = None,
                 extra: dict[str, dict] | None = None, rules: list[dict] | None = None,
                 cache: dict | None = None, catalog: Path | str | None = None) -> Path:
    """``cache`` adds or overrides ``[cache]`` keys; ``catalog`` is the catalog file, or a
    ``postgresql://`` URL."""
    cache_keys = {"dir": str(cache_dir or root / "cache"), "size": "1GiB", **(cache or {})}
    url = catalog_url(catalog or root / "catalog.db")
    text = [f'[catalog]\nurl = "{url}"\n',
            "[cache]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in cache_keys.items()),
            f"[replication]\ncopies = {copies}\nwrite_quorum = {quorum}\n",
            f"[mount]\nallow_other = {'true' if allow_other else 'false'}\n"]
    for name, s in settings.items():
        text.append(f"[providers.{name}]\n{toml_table(s, (extra or {}).get(name))}\n")
    for rule in rules or ():
        text.append("[[governance.rules]]\n"
                    + "".join(f"{k} = {toml_value(v)}\n" for k, v in rule.items()))
    cfg = root / "omnifs.toml"
    cfg.write_text("\n".join(text))
    cfg.chmod(0o600)
    return cfg


@pytest.fixture
def make_mount(tmp_path_factory, request, catalog_backend):
    """Factory: ``make_mount(kinds=("file", "file"), allow_other=False)`` -> Mounted.

    ``settings`` (name -> ProviderSettings) replaces ``kinds`` when given;
    ``extra`` adds keys to provider tables, ``rules`` writes ``[[governance.rules]]``,
    ``cache`` adds ``[cache]`` keys; ``catalog`` and ``store_dir`` move the catalog
    file and the ``file`` stores (e.g. onto a small disk). Without ``catalog`` the catalog
    is on the ``catalog_backend`` engine (each test runs on both: on PostgreSQL, a fresh
    database of the session's PostgreSQL cluster).
    """
    made: list[Mounted] = []

    def make(kinds=("file", "file"), *, allow_other: bool = False, copies: int | None = None,
             quorum: int = 1, mount: bool = True, cache_dir: Path | None = None,
             mount_args: list[str] | None = None, settings: dict | None = None,
             extra: dict[str, dict] | None = None, rules: list[dict] | None = None,
             cache: dict | None = None, catalog: Path | str | None = None,
             store_dir: Path | None = None) -> Mounted:
        root = tmp_path_factory.mktemp("omnifs")
        if catalog is None:
            catalog = fresh_catalog(catalog_backend, request, root / "catalog.db", "mount")
        if allow_other:
            root.chmod(0o755)
        given = settings
        settings = dict(given or {})
        for i, kind in enumerate(() if given else kinds):
            name = f"{kind}{i}"
            if kind == "file":
                store = (store_dir or root) / f"store-{i}"
                store.mkdir()
                from omnifs.providers import ProviderSettings

                settings[name] = ProviderSettings(name=name, uri=f"file://{store}")
            else:
                make_settings = request.getfixturevalue("make_settings")
                settings[name] = make_settings(kind, name=name)
        if extra is None and settings:
            # the first provider is the primary (heavier): placement then puts new files
            # there while it is up, so tests that look for a file's bytes know where
            extra = {next(iter(settings)): {"weight": 2}}
        cfg = write_config(root, settings, copies=copies or len(settings), quorum=quorum,
                           allow_other=allow_other, cache_dir=cache_dir, extra=extra, rules=rules,
                           cache=cache, catalog=catalog)
        if allow_other:
            # other users must be able to reach it: pytest's tmp dirs are 0700
            mp = Path(tempfile.mkdtemp(prefix="omnifs-mnt-"))
            mp.chmod(0o755)
        else:
            mp = root / "mnt"
            mp.mkdir()
        m = Mounted(root, mp, cfg, list(settings), settings, mount_args=list(mount_args or []))
        made.append(m)
        if mount:
            m.mount()
        return m

    yield make
    for m in made:
        try:
            m.umount()
        except AssertionError:
            subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], check=False)
        m.close()
        if m.mp.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(m.mp, ignore_errors=True)


@pytest.fixture
def tmpfs(tmp_path):
    """Factory: ``tmpfs("64m")`` -> a fresh directory on a tmpfs of that size."""
    made: list[Path] = []

    def make(size: str) -> Path:
        d = tmp_path / f"tmpfs{len(made)}"
        d.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                              check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
        made.append(d)
        return d

    yield make
    for d in made:
        subprocess.run(["umount", "-l", str(d)], check=False)


@pytest.fixture
def mnt(make_mount) -> Mounted:
    """A mount over two local stores."""
    return make_mount()


@pytest.fixture
def cuttable_s3(servers, make_settings):
    """Factory: ``cuttable_s3(name)`` -> (proxy, settings): an s3 provider behind a proxy
    a test can cut (a store that died)."""
    proxies = []

    def make(name: str):
        proxy = CuttableProxy(servers["s3"].port)
        proxies.append(proxy)
        return proxy, dataclasses.replace(make_settings("s3", name=name), endpoint=proxy.endpoint)

    yield make
    for proxy in proxies:
        proxy.close()
