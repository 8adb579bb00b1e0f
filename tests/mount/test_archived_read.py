"""Reading a file whose only copy is archived (S3 GLACIER on moto) through a real mount.

Documented behaviour (docs/cost.md): the read fails at once with ENODATA and one log
line naming the file, after asking the store to restore the object; it never waits
for the restore. moto restores at once, so reading again (after the mount's short
memory of failed blocks) returns the bytes.
"""

from __future__ import annotations

import errno
import os
import time

import boto3
import pytest

from tests.mount.conftest import omnifs

SIZE = 100 * 1024 + 3


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_an_archived_only_file_asks_a_restore_and_fails_with_enodata(make_mount):
    m = make_mount(("s3",), copies=1)
    data = os.urandom(SIZE)
    (m.mp / "cold.bin").write_bytes(data)
    m.umount()
    s3 = m.provider("s30")
    s3.set_tier("cold.bin", "GLACIER")
    omnifs("cache", "clear", config=m.config)  # no local copy left to serve the read
    m.mount()

    start = time.monotonic()
    with pytest.raises(OSError) as e:
        _read(m.mp / "cold.bin")
    assert e.value.errno == errno.ENODATA
    assert time.monotonic() - start < 10  # failed at once: no waiting for the restore

    settings = m.settings["s30"]
    bucket = settings.uri.split("://", 1)[1].split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=settings.endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    deadline = time.monotonic() + 10
    while "Restore" not in client.head_object(Bucket=bucket, Key="cold.bin"):
        assert time.monotonic() < deadline, "no restore was requested"
        time.sleep(0.1)

    time.sleep(3.2)  # the mount remembers a failed block for 3 s (mountfs/blocks.py)
    assert _read(m.mp / "cold.bin") == data  # moto restored it at once
    m.umount()
    log = (m.root / "cache" / "mount.log").read_text()
    lines = [line for line in log.splitlines() if "cold.bin" in line and "archived" in line]
    assert len(lines) == 1, log
    assert "restore" in lines[0]
