"""``omnifs cp`` as a user sees it.

``--keep-tier`` across stores, and the progress bar on a terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time

import pytest

from omnifs.providers import open_provider
from tests.cli import OMNIFS, run, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def stores(make_settings, tmp_path):
    settings = [make_settings("s3", name="aws"), make_settings("az", name="azure"),
                make_settings("minio", name="mini")]
    cfg = write_config(tmp_path / "omnifs.toml", settings)
    opened = {s.name: open_provider(s) for s in settings}
    yield cfg, opened
    for p in opened.values():
        p.close()


def test_keep_tier_translates_names_between_stores(stores):
    cfg, p = stores
    p["aws"].write_bytes("t/ia.bin", b"infrequent")
    p["aws"].set_tier("t/ia.bin", "STANDARD_IA")
    p["aws"].write_bytes("t/ir.bin", b"glacier instant")
    p["aws"].set_tier("t/ir.bin", "GLACIER_IR")

    proc = run("cp", "-r", "--keep-tier", "aws:/t", "azure:/t", config=cfg, check=True)
    assert p["azure"].head("t/ia.bin").tier == "Cool"
    assert p["azure"].head("t/ir.bin").tier == "Cold"
    assert "kept as 'Cool'" in proc.stderr.decode()

    run("cp", "--keep-tier", "azure:/t/ir.bin", "aws:/back/ir.bin", config=cfg, check=True)
    assert p["aws"].head("back/ir.bin").tier == "GLACIER_IR"

    # a store without a cool class keeps the object readable: the nearest warmer tier
    run("cp", "--keep-tier", "aws:/t/ia.bin", "mini:/ia.bin", config=cfg, check=True)
    assert p["mini"].head("ia.bin").tier in (None, "STANDARD")

    # without --keep-tier the destination's default applies
    run("cp", "aws:/t/ia.bin", "azure:/plain.bin", config=cfg, check=True)
    assert p["azure"].head("plain.bin").tier in (None, "Hot")


def _run_on_tty(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal.

    Returns its exit status and all it printed.
    """
    leader, follower = pty.openpty()
    os.set_inheritable(follower, True)
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=env, cwd=ROOT, close_fds=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    rc = proc.wait(timeout=10)
    return rc, out.decode(errors="replace")


def test_progress_bar_on_a_terminal_and_quiet_when_piped(stores, tmp_path):
    cfg, p = stores
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02}.bin").write_bytes(os.urandom(1024 * 1024))

    rc, screen = _run_on_tty([*OMNIFS, "--config", str(cfg), "cp", "-r", "--transfers", "1",
                              f"file://{src}", "aws:/bar"])
    assert rc == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "copy" in plain and "obj" in plain, plain      # the bar: description and objects
    assert re.search(r"/40 obj", plain), plain            # objects done of total
    assert re.search(r"[0-9.]+ (?:KiB|MiB|GiB)/s", plain), plain  # the rate, binary units
    assert re.search(r"/40\.0 MiB", plain) and not re.search(r"\d (?:kB|MB|GB)\b", plain), plain
    assert "40 objects" in plain and "0 failed" in plain  # the summary line stays
    assert len(list(p["aws"].list("bar/"))) == 40

    piped = run("cp", "-r", f"file://{src}", "aws:/piped", config=cfg, check=True)
    err = piped.stderr.decode()
    assert "\x1b[" not in err and "/40 obj" not in err    # no bar when not a terminal
    assert err.strip().splitlines()[-1].startswith("omnifs: 40 objects")
