"""Nothing omnifs keeps on local disk is readable by another local user.

The mount lets user nobody in (``allow_other``) and refuses it the 0600
file, as the kernel should. These tests check the other way in: the cache,
the catalog and the ``file://`` stores on local disk.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from omnifs.providers import ProviderSettings
from tests.mount.conftest import Mounted, omnifs, write_config
from tests.mount.test_posix import _as_nobody

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

#: run as nobody: every path it could open or list
PROBE = """
import json, os, sys
opened = []
for path in json.loads(sys.argv[1]):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
    except OSError:
        continue
    opened.append(path)
print(json.dumps(opened))
"""


def everything_under(*roots) -> list[str]:
    """Every file and directory below ``roots`` (the roots themselves included)."""
    found = []
    for root in roots:
        found.append(str(root))
        for base, dirs, names in os.walk(root):
            found += [os.path.join(base, n) for n in dirs + names]
    return found


def readable_by_nobody(paths: list[str]) -> list[str]:
    proc = _as_nobody(PROBE.replace("sys.argv[1]", repr(json.dumps(paths))), "/")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def wide_open():
    """An allow_other mount's data directory that nobody can reach (pytest's are 0700).

    The stores are made here with mode 0755, as a wide umask would have made them.
    """
    root = Path(tempfile.mkdtemp(prefix="omnifs-privacy-"))
    root.chmod(0o755)
    settings = {}
    for i in range(2):
        (root / f"store-{i}").mkdir(mode=0o755)
        (root / f"store-{i}").chmod(0o755)
        settings[f"file{i}"] = ProviderSettings(name=f"file{i}", uri=f"file://{root}/store-{i}")
    (root / "mnt").mkdir()
    (root / "mnt").chmod(0o755)
    cfg = write_config(root, settings, allow_other=True)
    m = Mounted(root, root / "mnt", cfg, list(settings), settings)
    try:
        yield m
    finally:
        m.umount()
        m.close()
        shutil.rmtree(root, ignore_errors=True)


def test_nobody_reads_nothing_of_the_cache_catalog_and_stores(wide_open):
    m = wide_open
    assert all(stat.S_IMODE(os.stat(m.root / d).st_mode) == 0o755 for d in ("store-0", "store-1"))
    proc = omnifs("mount", str(m.mp), config=m.config)
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    assert len(warnings) == 1 and "private" in warnings[0], proc.stderr
    (m.mp / "dir").mkdir()
    for name, mode in (("dir/secret", 0o600), ("public", 0o644)):
        (m.mp / name).write_bytes(b"TOPSECRET " + name.encode())
        os.chmod(m.mp / name, mode)
    for name in ("dir/secret", "public"):
        assert (m.mp / name).read_bytes().startswith(b"TOPSECRET")  # read back: cached
    m.replicate()  # every store holds every file
    omnifs("status", config=m.config)
    m.umount()

    cache = m.root / "cache"
    stores = [m.root / "store-0", m.root / "store-1"]
    for store in stores:
        assert sorted(os.listdir(store / "dir")) == ["secret"] and (store / "public").exists()
    assert any(p.name.endswith(".val") for p in (cache / "blocks").rglob("*"))
    # all but the data directory and the mount point, which the test made open on purpose
    paths = [p for p in everything_under(m.root, cache, *stores) if p not in (str(m.root),
                                                                              str(m.mp))]
    assert str(m.root / "catalog.db") in paths and str(cache / "mount.log") in paths
    assert readable_by_nobody(paths) == []
    # the same with the directories opened up: every file is 0600 on its own
    for store in stores:
        for path in everything_under(store):
            if os.path.isdir(path):
                os.chmod(path, 0o755)
    opened = readable_by_nobody(everything_under(*stores))
    assert opened and all(os.path.isdir(p) for p in opened), opened
    # a restart finds it all private again, and says so once
    proc = omnifs("mount", str(m.mp), config=m.config)
    assert sum("private" in ln for ln in proc.stderr.splitlines()) == 1, proc.stderr
    assert readable_by_nobody(everything_under(*stores)) == []


def test_a_log_file_given_to_the_mount_is_made_private(make_mount, tmp_path):
    m = make_mount(mount=False)
    log = tmp_path / "mount.log"
    log.write_text("an older log\n")
    log.chmod(0o644)
    omnifs("mount", str(m.mp), "--log", str(log), config=m.config)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().startswith("an older log")  # appended to, not replaced
