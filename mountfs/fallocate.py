"""fallocate(2) through the mount, although pyfuse3 has no handler for it.

Why: databases, downloaders and VM tools preallocate files (``posix_fallocate``,
``fallocate -l``) and punch holes in them (``fallocate -p``). Without a
handler libfuse answers FUSE_FALLOCATE with ENOSYS, the kernel then refuses
every later call with EOPNOTSUPP, and glibc's ``posix_fallocate`` falls back
to writing one byte per 4 KiB block through the mount.

How: pyfuse3 (3.4, 3.5) fills libfuse's ``struct fuse_lowlevel_ops`` without
the ``fallocate`` slot; ``fuse_session_new`` copies that table into the
session. Right after ``pyfuse3.init`` (before the first request is read),
:func:`install` finds the session's copy and sets the slot to a C callback
made with ctypes. libfuse calls it on the trio thread from inside pyfuse3's
request loop, as it calls pyfuse3's own handlers; the callback starts a trio
task that runs ``Operations.fallocate`` and answers with ``fuse_reply_err``.

Finding the table: pyfuse3 keeps the session pointer and its ops table in
two static variables, located through the extension's ELF symbol table
(pyfuse3 is built from source on install and keeps it); the session's copy
is found by comparing bytes with pyfuse3's table, so no libfuse-internal
struct layout is assumed. The slot's offset is libfuse's public, ABI-stable
``struct fuse_lowlevel_ops`` (only ever appended to). When anything here
does not match (a stripped build, another pyfuse3), nothing is patched and
the mount works without fallocate (one log line says so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger("omnifs.mount")

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

#: index of ``fallocate`` in libfuse 3's ``struct fuse_lowlevel_ops`` (function pointers:
#: init, destroy, lookup, ..., forget_multi, flock, fallocate, readdirplus, ...)
_SLOT = 40
#: the index of ``readdirplus``, which pyfuse3 sets: checks that the table is the one we think
_READDIRPLUS = 41
_PTR = ctypes.sizeof(ctypes.c_void_p)
#: bytes of ``struct fuse_session`` searched for the ops table (it starts within them)
_SESSION_SCAN = 512

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                             ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
#: the installed callback: kept alive for as long as the session may call it
_installed: object | None = None

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
_libc.fallocate.restype = ctypes.c_int


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) on a local file (Python's os module has only posix_fallocate)."""
    if _libc.fallocate(fd, mode, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _elf_symbols(path: str, names: set[str]) -> dict[str, int]:
    """``st_value`` of the named symbols in an ELF64 little-endian file's .symtab."""
    with open(path, "rb") as f:
        elf = f.read()
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return {}
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize)
                for i in range(shnum)]
    found: dict[str, int] = {}
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sec[6]]
        str_off = strtab[4]
        for i in range(sec[5] // 24):
            st_name, _, _, _, st_value, _ = struct.unpack_from("<IBBHQQ", elf, sec[4] + i * 24)
            end = elf.index(b"\0", str_off + st_name)
            name = elf[str_off + st_name:end].decode("ascii", "replace")
            if name in names:
                found[name] = st_value
    return found


def _ops_table(module_path: str) -> int | None:
    """Address of the fallocate slot in the running session's ops table, or None."""
    want = {"PyInit_pyfuse3", "__pyx_v_7pyfuse3_session", "__pyx_v_7pyfuse3_fuse_ops"}
    syms = _elf_symbols(module_path, want)
    if set(syms) != want:
        log.info("fallocate: pyfuse3's symbol table is not readable (stripped build?)")
        return None
    lib = ctypes.CDLL(module_path)
    init = ctypes.cast(lib.PyInit_pyfuse3, ctypes.c_void_p).value
    if init is None:
        return None
    base = init - syms["PyInit_pyfuse3"]
    session = ctypes.c_void_p.from_address(base + syms["__pyx_v_7pyfuse3_session"]).value
    if not session:
        return None
    table = ctypes.string_at(base + syms["__pyx_v_7pyfuse3_fuse_ops"], (_READDIRPLUS + 1) * _PTR)
    slot, readdirplus = (struct.unpack_from("P", table, i * _PTR)[0]
                         for i in (_SLOT, _READDIRPLUS))
    if slot != 0 or readdirplus == 0:
        log.info("fallocate: pyfuse3's ops table is not the one expected")
        return None
    where = ctypes.string_at(session, _SESSION_SCAN).find(table)
    if where < 0 or where % _PTR:
        log.info("fallocate: the FUSE session's copy of the ops table was not found")
        return None
    return session + where + _SLOT * _PTR


def install(handler: Callable[[int, int, int, int], Awaitable[None]],
            nursery: trio.Nursery) -> bool:
    """Route FUSE_FALLOCATE to ``handler(ino, mode, offset, length)``; True if done.

    Call on the trio thread after ``pyfuse3.init`` and before ``pyfuse3.main``
    reads requests. ``handler`` answers success by returning and an errno by
    raising ``pyfuse3.FUSEError`` (it is wrapped like every handler, see
    mountfs/fuse_errors.py). Each request runs as a task in ``nursery``, which
    must outlive the requests (the mount's, closed before ``pyfuse3.close``).
    """
    global _installed
    import pyfuse3

    try:
        slot = _ops_table(pyfuse3.__file__)
        fuse = ctypes.CDLL(ctypes.util.find_library("fuse3") or "libfuse3.so.3")
    except (OSError, ValueError, struct.error, AttributeError) as e:
        log.info("fallocate: not available through this mount (%s)", e)
        return False
    if slot is None:
        log.info("fallocate: not available through this mount")
        return False
    fuse.fuse_reply_err.argtypes = (ctypes.c_void_p, ctypes.c_int)
    fuse.fuse_reply_err.restype = ctypes.c_int

    async def answer(req: int, ino: int, mode: int, offset: int, length: int) -> None:
        code = errno.EINTR  # cancelled (unmount): the request still gets an answer
        try:
            await handler(ino, mode, offset, length)
            code = 0
        except pyfuse3.FUSEError as e:
            code = e.errno
        finally:
            fuse.fuse_reply_err(req, code)

    def on_request(req, ino, mode, offset, length, _fi) -> None:
        try:
            nursery.start_soon(answer, req, ino, mode, offset, length)
        except BaseException:  # noqa: BLE001 - nothing may escape into libfuse
            fuse.fuse_reply_err(req, errno.EIO)

    _installed = _CALLBACK(on_request)
    ctypes.c_void_p.from_address(slot).value = ctypes.cast(_installed, ctypes.c_void_p).value
    return True
