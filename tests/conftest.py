"""Session-wide real servers and per-test fresh buckets.

The servers (moto for s3:// and minio://, gcp-storage-emulator for gs://,
Azurite for az://) start once per test session on free loopback ports.
Every test gets its own bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omnifs.providers import open_provider
from tests import servers as S

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_umask():
    """``omnifs.cli.main`` called in-process sets the umask to 077; the next test gets its own."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)
def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.slow`` (soaks, long runs) only with OMNIFS_SLOW=1."""
    if os.environ.get("OMNIFS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with OMNIFS_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def servers():
    started: dict[str, S.Server] = {}
    try:
        for kind in ("s3", "gs", "az"):
            started[kind] = S.start(kind)
        started["minio"] = started["s3"]
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def make_settings(servers, tmp_path_factory):
    """Factory: ``make_settings(kind, name=None, prefix="")`` -> settings of a fresh bucket."""

    def make(kind: str, name: str | None = None, prefix: str = ""):
        if kind == "file":
            root = tmp_path_factory.mktemp("store")
            return S.settings_for(kind, None, "", name=name, prefix=prefix, local_root=str(root))
        bucket = S.unique_bucket()
        endpoint = servers[kind].endpoint
        S.create_bucket(kind, endpoint, bucket)
        return S.settings_for(kind, endpoint, bucket, name=name, prefix=prefix)

    return make


@pytest.fixture
def make_provider(make_settings):
    opened = []

    def make(kind: str, name: str | None = None, prefix: str = ""):
        p = open_provider(make_settings(kind, name=name, prefix=prefix))
        opened.append(p)
        return p

    yield make
    for p in opened:
        p.close()


@pytest.fixture(params=S.KINDS)
def kind(request):
    return request.param


@pytest.fixture
def provider(kind, make_provider):
    """A provider of every kind over a fresh, empty bucket."""
    return make_provider(kind)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 cluster for the session (tests/servers.py PostgresCluster)."""
    reason = S.postgres_missing()
    if reason:
        pytest.skip(reason)
    cluster = S.PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


#: the suites that run on every catalog engine (issue 22): each of their tests that reaches
#: ``catalog_backend`` (through ``make_mount`` or ``catalog_url``) runs once per engine
EVERY_ENGINE = ("tests/mount/", "tests/integration/test_daemon.py",
                "tests/integration/test_daemon_scaleout.py", "tests/integration/test_dr_daemon.py",
                "tests/integration/test_gov_daemon.py")


def pytest_generate_tests(metafunc):
    """``catalog_backend`` parametrised over ``catalog_engines()`` in the EVERY_ENGINE
    suites, unless the test names its engines itself (a ``parametrize`` of its own) or is
    marked ``one_engine`` (it brings its own catalog, so a second engine would repeat it)."""
    if "catalog_backend" not in metafunc.fixturenames:
        return
    definition = metafunc.definition
    if definition.get_closest_marker("one_engine"):
        return
    for mark in definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "catalog_backend" in (names.split(",") if isinstance(names, str) else names):
            return
    where = definition.path.relative_to(ROOT).as_posix()
    if where.startswith(EVERY_ENGINE):
        metafunc.parametrize("catalog_backend", S.catalog_engines())


@pytest.fixture
def catalog_backend():
    """The engine of ``catalog_url`` and of ``make_mount``'s catalog: sqlite, or
    $OMNIFS_CATALOG; parametrised over both in the EVERY_ENGINE suites."""
    return os.environ.get("OMNIFS_CATALOG", "sqlite")


@pytest.fixture
def catalog_url(catalog_backend, request, tmp_path):
    """``[catalog] url`` of a fresh catalog on ``catalog_backend``."""
    return S.catalog_url(S.fresh_catalog(catalog_backend, request, tmp_path / "catalog.db"))


@pytest.fixture(params=S.CATALOG_BACKENDS)
def catalog_target(request, tmp_path):
    """Where a fresh catalog lives: a SQLite file, or a new database on the session's cluster."""
    return S.fresh_catalog(request.param, request, tmp_path / "c.db")
