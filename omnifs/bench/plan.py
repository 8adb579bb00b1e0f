"""The operation sequence of one cell: seeded, so every provider gets the same one.

Keys are relative to the cell's prefix: the data set is ``data/NNNNNN`` (written
before the clock starts, read by get/range_get/head/list, copied by copy);
put, multipart and copy write ``w/NNNNNNNN``; a delete removes the oldest key
written at least ``2 x concurrency`` operations earlier (so it has landed), or
becomes a put when there is none yet: the same substitution on every provider.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .scenario import Scenario


@dataclass(frozen=True)
class Op:
    kind: str
    key: str
    #: copy: the source key; range_get: unused
    source: str = ""
    #: range_get: [start, end)
    start: int = 0
    end: int | None = None


def data_key(i: int) -> str:
    return f"data/{i:06d}"


def operations(s: Scenario, size: int, concurrency: int) -> Iterator[Op]:
    """Warm-up then measured operations, endless (the runner stops after ``count`` or
    ``duration``)."""
    rng = random.Random(f"{s.seed}/{size}/{concurrency}")
    kinds = [op for op, w in s.mix.items() if w > 0]
    weights = [s.mix[op] for op in kinds]
    written: deque[tuple[int, str]] = deque()
    n = 0
    while True:
        kind = rng.choices(kinds, weights)[0]
        if kind == "delete":
            if written and written[0][0] <= n - 2 * concurrency:
                yield Op("delete", written.popleft()[1])
                n += 1
                continue
            kind = "put"
        if kind in ("put", "multipart", "copy"):
            key = f"w/{n:08d}"
            written.append((n, key))
            source = data_key(rng.randrange(s.objects)) if kind == "copy" else ""
            yield Op(kind, key, source)
        elif kind == "range_get":
            length = min(s.range, size)
            start = rng.randrange(size - length + 1)
            yield Op(kind, data_key(rng.randrange(s.objects)), start=start, end=start + length)
        elif kind == "list":
            yield Op(kind, "data/")
        else:
            yield Op(kind, data_key(rng.randrange(s.objects)))
        n += 1


def counted(s: Scenario, size: int, concurrency: int, n: int) -> dict[str, int]:
    """How many of each operation the first ``n`` of the sequence hold (cost estimates)."""
    out: dict[str, int] = {}
    ops = operations(s, size, concurrency)
    for _ in range(n):
        op = next(ops)
        out[op.kind] = out.get(op.kind, 0) + 1
    return out
