"""``[dr] keep_versions_for`` with ``copies = 1``: the mount overwrites a file's only
object itself, so it sets the old version aside first and the daemon keeps it.

A file is overwritten twice between two backups through a real mount; a
restore to a time between the overwrites gives the version neither backup
holds (omnifs/dr/versions.py, mountfs/overwrite.py).
"""

from __future__ import annotations

import time

from omnifs.providers import RESERVED_PREFIX

from .test_dr import add_dr, backup, omnifs


def test_a_version_overwritten_between_backups_comes_back(make_mount, tmp_path):
    m = make_mount(("file",), copies=1, mount=False)
    with open(m.config, "a") as f:
        f.write('\n[dr]\nkeep_versions_for = "7d"\n')
    add_dr(m, tmp_path / "vault")
    m.mount()
    store = m.provider(m.names[0])
    (m.mp / "f").write_bytes(b"version 1\n")
    first = backup(m)
    (m.mp / "f").write_bytes(b"version 2, between the backups\n")
    time.sleep(0.2)
    between = time.time()
    time.sleep(0.2)
    (m.mp / "f").write_bytes(b"version 3\n")  # the only copy of version 2 is replaced
    assert store.read_bytes("f") == b"version 3\n"
    assert [o.key for o in store.list(RESERVED_PREFIX + "kept/")], "version 2 set aside"
    # the daemon's part: the keep items (version 1 was replaced through the mount too)
    assert "done 2, failed 0" in m.replicate()
    assert not list(store.list(RESERVED_PREFIX + "kept/"))  # kept on the target, copy gone
    second = backup(m)
    listed = omnifs("dr", "list", config=m.config).stdout
    assert first in listed and second in listed
    assert "2 versions kept between backups" in listed, listed

    at = f"{between:.3f}"
    out = omnifs("dr", "restore", "--at", at, "--path", "/f", "--to", str(tmp_path / "v2"),
                 config=m.config).stdout
    assert "verified" in out, out
    assert (tmp_path / "v2" / "f").read_bytes() == b"version 2, between the backups\n"
    omnifs("dr", "restore", "--at", first, "--path", "/f", "--to", str(tmp_path / "v1"),
           config=m.config)
    assert (tmp_path / "v1" / "f").read_bytes() == b"version 1\n"
    omnifs("dr", "restore", "--at", "latest", "--path", "/f", "--to", str(tmp_path / "v3"),
           config=m.config)
    assert (tmp_path / "v3" / "f").read_bytes() == b"version 3\n"
