"""What mountfs/fallocate.py assumes of libfuse 3 and pyfuse3 to route FUSE_FALLOCATE.

* libfuse's ``struct fuse_lowlevel_ops`` has ``fallocate`` at function-pointer index
  ``_SLOT`` and ``readdirplus`` right after it, with the callback's parameter types;
* pyfuse3 has no fallocate handler of its own, so it leaves that slot empty;
* pyfuse3's extension keeps the symbols the hook locates its static session pointer and
  ops table by (an unstripped build);
* libfuse 3 is loadable and answers with ``fuse_reply_err``;
* once ``pyfuse3.init`` mounted, the session's copy of the table is found, its slot is
  empty, and ``install`` fills it (a bare mount in a child process, unmounted at once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pyfuse3
import pytest

from omnifs.mountfs import fallocate
from tests.mount.conftest import fuse_missing

ROOT = Path(__file__).resolve().parents[2]


def _lowlevel_header() -> Path:
    """libfuse 3's fuse_lowlevel.h (libfuse3-dev, scripts/install-system.sh installs it)."""
    proc = subprocess.run(["pkg-config", "--variable=includedir", "fuse3"], capture_output=True,
                          text=True, check=False)
    for base in (proc.stdout.strip(), "/usr/include", "/usr/local/include"):
        if base and (Path(base) / "fuse3" / "fuse_lowlevel.h").exists():
            return Path(base) / "fuse3" / "fuse_lowlevel.h"
    raise AssertionError("fuse_lowlevel.h not found: install libfuse3-dev (make install)")


def _ops_members() -> dict[str, str]:
    """``struct fuse_lowlevel_ops``'s function pointers in order: name -> parameter list."""
    text = _lowlevel_header().read_text()
    body = re.search(r"struct fuse_lowlevel_ops \{(.*?)\n\};", text, re.DOTALL).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.DOTALL)
    members: dict[str, str] = {}
    # a member declared in both branches of an #if (ioctl) is one slot: the first one counts
    for name, params in re.findall(r"\(\*(\w+)\)\s*\(([^;]*)\)\s*;", body):
        members.setdefault(name, " ".join(params.split()))
    return members


def test_fallocate_slot_index_is_libfuses():
    names = list(_ops_members())
    assert names[:3] == ["init", "destroy", "lookup"]
    assert names.index("fallocate") == fallocate._SLOT
    assert names.index("readdirplus") == fallocate._READDIRPLUS


def test_fallocate_callback_parameters_match_the_ctypes_prototype():
    params = [p.strip() for p in _ops_members()["fallocate"].split(",")]
    types = [re.sub(r"\s*\w+$", "", p) for p in params]
    assert types == ["fuse_req_t", "fuse_ino_t", "int", "off_t", "off_t",
                     "struct fuse_file_info *"]
    c = ctypes
    assert fallocate._CALLBACK._argtypes_ == (c.c_void_p, c.c_uint64, c.c_int, c.c_int64,
                                              c.c_int64, c.c_void_p)


def test_pyfuse3_has_no_fallocate_handler_of_its_own():
    assert not hasattr(pyfuse3.Operations, "fallocate")


def test_pyfuse3_keeps_the_symbols_the_hook_finds_its_tables_by():
    want = {"PyInit_pyfuse3", "__pyx_v_7pyfuse3_session", "__pyx_v_7pyfuse3_fuse_ops"}
    found = fallocate._elf_symbols(pyfuse3.__file__, want)
    assert set(found) == want and all(found.values()), found


def test_libfuse3_answers_with_fuse_reply_err():
    lib = ctypes.CDLL(ctypes.util.find_library("fuse3") or "libfuse3.so.3")
    assert lib.fuse_reply_err


def test_no_session_nothing_is_patched():
    assert fallocate._ops_table(pyfuse3.__file__) is None  # pyfuse3.init never ran here


CHILD = textwrap.dedent("""
    import ctypes, sys
    import pyfuse3, trio
    from omnifs.mountfs import fallocate

    async def main():
        pyfuse3.init(pyfuse3.Operations(), sys.argv[1], set())
        try:
            slot = fallocate._ops_table(pyfuse3.__file__)
            assert slot is not None, "the session's ops table was not found"
            assert not ctypes.c_void_p.from_address(slot).value, "the slot is taken"
            assert ctypes.c_void_p.from_address(slot + ctypes.sizeof(ctypes.c_void_p)).value
            async def handler(ino, mode, offset, length):
                pass
            async with trio.open_nursery() as nursery:
                assert fallocate.install(handler, nursery)
                assert ctypes.c_void_p.from_address(slot).value, "install left the slot empty"
        finally:
            pyfuse3.close(unmount=True)
        print("ok")

    trio.run(main)
""")


@pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))
def test_after_init_the_hook_finds_and_fills_the_sessions_slot(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(mp)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    if proc.returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", str(mp)], check=False, capture_output=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
