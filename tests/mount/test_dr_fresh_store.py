"""A whole account lost: ``dr restore --to`` a fresh store, then import and mount it.

A tree with files, symlinks, hard links, empty and setgid directories, odd
modes, owners, xattrs, a FIFO and a path too long for a key is built through
a real mount and backed up (once for the module); files are overwritten and
deleted after it and backed up again. On a
"new machine" (a config naming only a fresh bucket, the same backup target,
no catalog) ``omnifs dr restore --at T --to <the bucket>`` (moto S3, Azurite,
a file:// prefix), then ``omnifs import`` and a real mount give the tree at T:
the same bytes and ``find -printf`` and xattrs as the mount showed then.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from omnifs.layout import LONG_PREFIX
from omnifs.providers import ProviderSettings, open_provider

from .conftest import Mounted, write_config
from .test_dr import add_dr, backup, state
from .test_dr import omnifs as omnifs_here
from .test_rebuild import build_tree


def contents(root: Path) -> dict[str, str]:
    """path -> SHA-256 of every regular file (symlinks not followed)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def damaged_after_backup(m: Mounted, tmp_path: Path) -> tuple[str, tuple]:
    """The tree built and backed up (id, state and bytes then); then changed and backed up."""
    add_dr(m, tmp_path / "vault")
    build_tree(m.mp)
    os.chmod(m.mp / "d/sub/deeper", 0o710)
    deep = m.mp.joinpath(*["l" * 250] * 5)  # longer than an S3 or Azure key: .omnifs/long/
    deep.mkdir(parents=True)
    (deep / "far").write_bytes(b"at the end of a path no key can hold\n")
    bid, then = backup(m), (state(m.mp), contents(m.mp))
    (m.mp / "secret").write_bytes(b"overwritten after the backup\n")
    (m.mp / "tool").unlink()
    (m.mp / "d/sub/file").write_bytes(b"changed through a hard link\n")
    os.rmdir(m.mp / "d/empty")
    backup(m)
    return bid, then


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """One source namespace for every store kind (two file stores, a file backup target):
    (its Mounted, the backup id of T, the state and bytes at T)."""
    root = tmp_path_factory.mktemp("source")
    settings = {}
    for i in range(2):
        (root / f"store-{i}").mkdir()
        settings[f"file{i}"] = ProviderSettings(name=f"file{i}", uri=f"file://{root}/store-{i}")
    cfg = write_config(root, settings, extra={"file0": {"weight": 2}})
    (root / "mnt").mkdir()
    m = Mounted(root, root / "mnt", cfg, list(settings), settings)
    m.mount()
    try:
        bid, then = damaged_after_backup(m, root)
        yield m, bid, then
    finally:
        m.umount()
        m.close()


def new_machine(make_mount, m: Mounted, store: ProviderSettings) -> Mounted:
    """A config naming only ``store`` (empty), the same backup target, no catalog yet."""
    fresh = make_mount(settings={store.name: store}, copies=1, mount=False, extra={})
    vault = m.config.read_text().split("[[dr.backups]]", 1)[1]
    with open(fresh.config, "a") as f:
        f.write(f"\n[[dr.backups]]{vault}")
    return fresh


@pytest.mark.parametrize("kind", ["s3", "az", "file"])
def test_restore_into_a_fresh_store_imports_and_mounts_as_the_tree_was(
        make_mount, make_settings, damaged, kind):
    m, bid, then = damaged
    store = make_settings(kind, name="rescue", prefix="restored" if kind == "file" else "")
    if kind == "file":
        os.mkdir(store.uri.removeprefix("file://"))
    fresh = new_machine(make_mount, m, store)
    # a URI (the config's credentials for that bucket), or the provider's name
    where = store.uri if kind != "s3" else "rescue:/"
    out = omnifs_here("dr", "restore", "--at", bid, "--to", where, config=fresh.config).stdout
    assert "every file verified against its SHA-256" in out, out
    assert "catalog snapshot .omnifs/catalog/" in out, out
    if kind != "file":
        assert any(fresh.provider("rescue").list(LONG_PREFIX)), "the long path's object"

    out = omnifs_here("import", config=fresh.config).stdout
    assert "restored 9 files from snapshot rescue:.omnifs/catalog/" in out, out
    assert "0 replicas missing" in out and "0 copies queued" in out, out
    out = omnifs_here("check", config=fresh.config).stdout
    assert "clean: 1 store, 9 replicas match the catalog" in out, out
    fresh.mount()
    assert state(fresh.mp) == then[0]
    assert contents(fresh.mp) == then[1]
    assert os.stat(fresh.mp / "hard1").st_ino == os.stat(fresh.mp / "d/hard2").st_ino


def test_a_tree_from_an_encrypted_backup_comes_with_its_parents_and_only_its_names(
        make_mount, tmp_path):
    m = make_mount()
    key = tmp_path / "dr.key"  # an encrypted target: the new machine needs its key file
    omnifs_here("dr", "keygen", str(key))
    add_dr(m, tmp_path / "vault", f'key_file = "{key}"\n')
    os.makedirs(m.mp / "p/q")
    os.chmod(m.mp / "p", 0o750)
    os.chown(m.mp / "p", 1234, 5678)
    (m.mp / "p/q/f").write_bytes(b"three names\n")
    os.link(m.mp / "p/q/f", m.mp / "p/g")
    os.link(m.mp / "p/q/f", m.mp / "outside")
    os.symlink("q/f", m.mp / "p/s")
    os.setxattr(m.mp / "p/q", "user.tag", b"kept")
    bid = backup(m)
    was = {p: os.lstat(m.mp / p) for p in ("", "p", "p/q", "p/q/f")}
    store = tmp_path / "tree"
    store.mkdir()
    fresh = new_machine(make_mount, m, ProviderSettings(name="tree", uri=f"file://{store}"))
    out = omnifs_here("dr", "restore", "--at", bid, "--path", "/p", "--to", "tree:/",
                      config=fresh.config).stdout
    assert "restored 1 files" in out and "1 other entries" in out, out
    omnifs_here("import", config=fresh.config)
    cat = fresh.catalog()
    try:
        for path, st in was.items():
            inode = cat.ns.resolve(path)
            assert (inode.mode, inode.uid, inode.gid, inode.mtime_ns) == (
                st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns), path
        assert [c.name for c in cat.ns.children(1)] == ["p"]
        f = cat.ns.resolve("p/g")
        assert f.id == cat.ns.resolve("p/q/f").id and f.nlink == 2
        assert cat.ns.resolve("p/s").target == "q/f"
        assert cat.ns.get_xattr(cat.ns.resolve("p/q").id, b"user.tag") == b"kept"
    finally:
        cat.close()


def test_bad_destinations_are_one_line(make_mount, make_settings, tmp_path):
    m = make_mount()
    add_dr(m, tmp_path / "vault")
    (m.mp / "a").write_bytes(b"a\n")
    bid = backup(m)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_bytes(b"already here\n")
    unreachable = ProviderSettings(name="gone", uri="s3://nowhere", endpoint="http://127.0.0.1:9",
                                   access_key="k", secret_key="s", timeout=1.0)
    fresh = new_machine(make_mount, m, unreachable)

    def refused(*args: str, at: str = bid) -> tuple[int, str]:
        proc = omnifs_here("dr", "restore", "--at", at, *args, config=fresh.config,
                           check=False)
        err = proc.stderr.strip()
        assert proc.returncode != 0 and "\n" not in err and "Traceback" not in err, err
        return proc.returncode, err

    rc, err = refused("--to", f"file://{busy}")
    assert rc == 2 and "is not empty" in err and "--force" in err, err
    rc, err = refused("--to", "nosuch:/")
    assert rc == 2 and "unknown provider 'nosuch'" in err, err
    rc, err = refused("--to", "gone:/")
    assert rc == 1 and "gone:/: cannot be listed" in err, err
    rc, err = refused("--to", f"file://{tmp_path}/e", at="2001-01-01T00:00:00Z")
    assert rc == 2 and "no backup at or before 2001-01-01" in err, err

    # a store of the live namespace: never forced, nor a prefix inside one
    proc = omnifs_here("dr", "restore", "--at", bid, "--to", "file0:/", "--force",
                       config=m.config, check=False)
    assert proc.returncode == 2 and "a store of this namespace and not empty" in proc.stderr
    proc = omnifs_here("dr", "restore", "--at", bid, "--to", "file0:/sub", config=m.config,
                       check=False)
    assert proc.returncode == 2 and "a prefix inside file0" in proc.stderr, proc.stderr
    dry = tmp_path / "dry"
    out = omnifs_here("dr", "restore", "--at", bid, "--to", f"file://{dry}", "--dry-run",
                      config=fresh.config).stdout
    assert "would restore 1 files" in out and f"into file://{dry}" in out, out
    assert not any(dry.iterdir())

    out = omnifs_here("dr", "restore", "--at", bid, "--to", f"file://{busy}", "--force",
                      config=fresh.config).stdout
    assert "restored 1 files" in out, out
    store = open_provider(ProviderSettings(name="busy", uri=f"file://{busy}"))
    assert store.read_bytes("a") == b"a\n" and store.read_bytes("x") == b"already here\n"
    store.close()

    # bytes that do not match their SHA-256: never left in the store, and no snapshot
    victim = next(p for p in (tmp_path / "vault/data").rglob("*") if p.is_file())
    body = bytearray(victim.read_bytes())
    body[0] ^= 0xFF
    victim.write_bytes(bytes(body))
    bad = tmp_path / "bad"
    proc = omnifs_here("dr", "restore", "--at", bid, "--to", f"file://{bad}",
                       config=fresh.config, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not restored: /a" in proc.stderr and "no catalog snapshot" in proc.stderr
    assert [p.name for p in bad.rglob("*")] == []
