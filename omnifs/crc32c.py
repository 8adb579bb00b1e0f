"""CRC-32C of any buffer (bytes, bytearray, memoryview, read-only mmap), in hardware.

Why not ``google_crc32c.value``: it accepts only ``bytes`` (its argument
format refuses memoryviews and maps), and the cache checks maps of its
files and views of stream buffers: a copy per block would cost more than
zlib's CRC-32 does. So this calls the C library that package
ships (``crc32c_value``) through ctypes on the buffer's own memory, which
also releases the GIL for the computation. Measured here: ~20 GB/s, against
~3.5 GB/s for ``zlib.crc32``.

``value`` is None when the library cannot be loaded (a source build of
google-crc32c without it): callers then keep using zlib's CRC-32.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable

_PyBUF_SIMPLE = 0


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


def _load() -> Callable[[object], int] | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    here = os.path.dirname(os.path.dirname(google_crc32c.__file__))
    for path in sorted(glob.glob(os.path.join(here, "google_crc32c.libs", "libcrc32c*"))
                       + glob.glob(os.path.join(os.path.dirname(google_crc32c.__file__),
                                                "libcrc32c*"))):
        try:
            lib = ctypes.CDLL(path)
            fn = lib.crc32c_value
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_uint32
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        get = ctypes.pythonapi.PyObject_GetBuffer
        get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
        get.restype = ctypes.c_int
        release = ctypes.pythonapi.PyBuffer_Release
        release.argtypes = [ctypes.POINTER(_PyBuffer)]
        release.restype = None

        def crc(data: object, fn=fn, get=get, release=release) -> int:
            view = _PyBuffer()
            if get(data, ctypes.byref(view), _PyBUF_SIMPLE) != 0:  # raises TypeError itself
                raise TypeError("not a buffer")
            try:
                return fn(view.buf, view.len)
            finally:
                release(ctypes.byref(view))

        if crc(b"123456789") == 0xE3069283:  # the standard check value
            return crc
    return None


#: ``value(buffer) -> int``, or None when the hardware library is not available
value = _load()
