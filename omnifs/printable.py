"""Names as text that cannot break a line: for logs, error lines and listings.

A file name may hold any byte but '/' and NUL. Printed raw, a newline in one
forges a log line of its own, an ESC drives the terminal, and a byte that is
not UTF-8 (kept by ``os.fsdecode`` as a lone surrogate) fails the write.
"""

from __future__ import annotations


def escape_controls(text: str) -> str:
    """Control characters (newline, ESC, ...) and undecodable bytes as visible escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if c in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[c]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
