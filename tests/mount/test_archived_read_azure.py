"""An archived-only file on Azurite read through a real mount: after the rehydration the
read path asked for, the catalog's tier says what the store says (Hot), not Archive.

Azurite rehydrates at once (tests/integration/test_rehydration.py covers a rehydration
still under way): the first read fails with ENODATA and asks for it; the next one,
after the mount's short memory of failed blocks, reads the bytes.
"""

from __future__ import annotations

import errno
import os
import time

import pytest

from tests.mount.conftest import omnifs

SIZE = 64 * 1024 + 5


def test_an_azure_rehydration_is_followed_by_the_catalog(make_mount):
    m = make_mount(("az",), copies=1)
    data = os.urandom(SIZE)
    (m.mp / "cold.bin").write_bytes(data)
    m.umount()
    m.provider("az0").set_tier("cold.bin", "Archive")
    cat = m.catalog()
    try:
        ino = cat.ns.lookup(1, "cold.bin").id
        cat.replicas.set_tier(ino, "az0", "Archive")
    finally:
        cat.close()
    omnifs("cache", "clear", config=m.config)
    m.mount()
    with pytest.raises(OSError) as e:
        (m.mp / "cold.bin").read_bytes()
    assert e.value.errno == errno.ENODATA

    deadline = time.monotonic() + 10
    while True:
        cat = m.catalog()
        try:
            tier = cat.replicas.get(ino, "az0").tier
        finally:
            cat.close()
        if tier == "Hot":
            break
        assert time.monotonic() < deadline, f"the catalog still says {tier}"
        time.sleep(0.1)
    assert m.provider("az0").head("cold.bin").tier == "Hot"
    time.sleep(3.2)  # the mount remembers a failed block for 3 s (mountfs/blocks.py)
    assert (m.mp / "cold.bin").read_bytes() == data
    m.umount()
