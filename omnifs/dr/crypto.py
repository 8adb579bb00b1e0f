"""Client-side encryption of backup objects: AES-256-GCM (``cryptography``), streamed.

An encrypted object is ``MAGIC`` + an 8-byte random nonce prefix, then the
plaintext in :data:`CHUNK` pieces, each sealed on its own with the nonce
prefix + its 4-byte index; the associated data is the index and a flag
marking the last piece, so pieces cannot be reordered, dropped or the object
cut short without the read failing. An empty plaintext is one empty last piece.

The key file holds 32 bytes: raw, 64 hex digits or base64 (``omnifs dr
keygen`` writes one). Object names of encrypted backups are an HMAC of the
content's SHA-256 under the key, so the store does not learn the hashes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from omnifs.errors import ConfigError, IntegrityError

MAGIC = b"OMNIFSDR1"
CHUNK = 1 << 20
TAG = 16
_HEADER = len(MAGIC) + 8


def load_key(path: Path) -> bytes:
    """The 32-byte key in ``path``; ConfigError (one line) when absent or malformed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"backup key file {path} does not exist: encrypted backups cannot be "
                          "written or read without it (create one with `omnifs dr keygen "
                          f"{path}` for a new target, or restore the file)") from None
    except OSError as e:
        raise ConfigError(f"backup key file {path}: cannot read: {e.strerror}") from None
    if len(raw) == 32:
        return raw
    for key in (_hex(raw.strip()), _b64(raw.strip())):
        if key is not None and len(key) == 32:
            return key
    raise ConfigError(f"backup key file {path}: expected 32 bytes (raw, hex or base64)")


def _hex(b: bytes) -> bytes | None:
    try:
        return bytes.fromhex(b.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _b64(b: bytes) -> bytes | None:
    try:
        return base64.b64decode(b, validate=True)
    except (binascii.Error, ValueError):
        return None


def new_key_file(path: Path) -> None:
    """Write a fresh random key (base64) to ``path``, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as f:
        f.write(base64.b64encode(os.urandom(32)) + b"\n")


def object_id(key: bytes | None, sha: str) -> str:
    """The name a content's object gets: its SHA-256, or an HMAC of it when encrypted."""
    return sha if key is None else hmac.new(key, sha.encode(), sha256).hexdigest()


def sealed_size(size: int) -> int:
    pieces = max(1, -(-size // CHUNK))
    return _HEADER + size + pieces * TAG


def _aad(index: int, last: bool) -> bytes:
    return index.to_bytes(4, "big") + (b"\1" if last else b"\0")


class Encrypting:
    """A readable stream: ``src`` (``size`` bytes of plaintext) sealed."""

    def __init__(self, src, size: int, key: bytes) -> None:
        self.src, self.left, self.aead = src, size, AESGCM(key)
        self.prefix = os.urandom(8)
        self.index = 0
        self.buf = bytearray(MAGIC + self.prefix)
        self.done = False

    def _fill(self) -> None:
        want = min(CHUNK, self.left)
        plain = _read_exact(self.src, want)
        if len(plain) != want:
            raise IntegrityError(f"source ended {self.left - len(plain)} bytes early")
        self.left -= want
        last = self.left == 0
        nonce = self.prefix + self.index.to_bytes(4, "big")
        self.buf += self.aead.encrypt(nonce, plain, _aad(self.index, last))
        self.index += 1
        self.done = last

    def read(self, size: int = -1, /) -> bytes:
        while not self.done and (size < 0 or len(self.buf) < size):
            self._fill()
        n = len(self.buf) if size < 0 else min(size, len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class Decrypting:
    """A readable stream of the plaintext of a sealed stream ``src``.

    IntegrityError (one line) on a wrong key, a changed, reordered or
    truncated object.
    """

    def __init__(self, src, key: bytes, what: str = "") -> None:
        self.src, self.aead, self.what = src, AESGCM(key), what
        head = _read_exact(src, _HEADER)
        if len(head) != _HEADER or not head.startswith(MAGIC):
            raise IntegrityError(f"{what}: not an encrypted backup object (or not this format)")
        self.prefix = head[len(MAGIC):]
        self.index = 0
        self.pending = _read_exact(src, CHUNK + TAG)
        self.buf = bytearray()
        self.done = False

    def _open_next(self) -> None:
        sealed = self.pending
        self.pending = _read_exact(self.src, CHUNK + TAG)
        last = not self.pending
        nonce = self.prefix + self.index.to_bytes(4, "big")
        try:
            self.buf += self.aead.decrypt(nonce, bytes(sealed), _aad(self.index, last))
        except InvalidTag:
            raise IntegrityError(f"{self.what}: decryption failed (wrong key, or the object "
                                 "was changed or cut short)") from None
        self.index += 1
        self.done = last

    def close(self) -> None:
        self.src.close()

    def read(self, size: int = -1, /) -> bytes:
        while not self.done and (size < 0 or len(self.buf) < size):
            self._open_next()
        n = len(self.buf) if size < 0 else min(size, len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _read_exact(src, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = src.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)
