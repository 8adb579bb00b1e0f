"""A full staging disk gives ENOSPC to the writer, never a corrupt file or a dead mount."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_staging_disk_is_enospc(make_mount, small_disk):
    m = make_mount(cache_dir=small_disk)
    (m.mp / "before.txt").write_bytes(b"fine")
    with pytest.raises(OSError) as info, open(m.mp / "huge", "wb") as f:
        for _ in range(8):
            f.write(os.urandom(1 << 20))
            f.flush()
    assert info.value.errno == errno.ENOSPC
    # the mount is alive and the earlier file intact; freeing space lets writes go on
    assert (m.mp / "before.txt").read_bytes() == b"fine"
    os.unlink(m.mp / "huge")
    (m.mp / "after.txt").write_bytes(b"room again")
    assert (m.mp / "after.txt").read_bytes() == b"room again"
    assert m.provider(m.names[0]).read_bytes("after.txt") == b"room again"
