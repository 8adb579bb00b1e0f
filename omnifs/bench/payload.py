"""The bytes a benchmark writes: seeded random, generated once, streamed at any size."""

from __future__ import annotations

import random

BLOCK = 1024 * 1024


class Payload:
    """``size`` bytes read in pieces from one seeded 1 MiB random block, repeated.

    Random so no store or link compresses them; one block so a 1 GiB object
    costs 1 MiB of memory.
    """

    _blocks: dict[int, bytes] = {}

    def __init__(self, size: int, seed: int = 1):
        if seed not in self._blocks:
            self._blocks[seed] = random.Random(seed).randbytes(BLOCK)
        self._block = self._blocks[seed]
        self.size = size
        self._pos = 0

    def read(self, n: int = -1, /) -> bytes:
        left = self.size - self._pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        offset = self._pos % BLOCK
        if offset + n <= BLOCK:
            chunk = self._block[offset:offset + n]
        else:
            parts = []
            need = n
            while need:
                take = min(need, BLOCK - offset)
                parts.append(self._block[offset:offset + take])
                need -= take
                offset = 0
            chunk = b"".join(parts)
        self._pos += n
        return chunk

    def readable(self) -> bool:
        return True
