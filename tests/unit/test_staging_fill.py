"""Writing a content into a staging file without its holes (mountfs/staging_fill.py)."""

from __future__ import annotations

import os

import pytest

from omnifs.mountfs.staging_fill import HOLE, _write_data


@pytest.mark.parametrize("layout", [
    [("z", 3 * HOLE), ("d", 10)],  # a hole first
    [("d", 1), ("z", 5 * HOLE + 7)],  # a hole last
    [("d", HOLE - 1), ("z", 2 * HOLE), ("d", 3), ("z", HOLE // 2), ("d", HOLE + 5)],
    [("z", 100)],  # nothing but zeros, shorter than a piece
    [("d", 4 * HOLE)],  # no hole at all
])
def test_written_bytes_read_back_and_whole_zero_pieces_are_holes(tmp_path, layout):
    data = b"".join(bytes(n) if kind == "z" else os.urandom(n).replace(b"\0", b"\1")
                    for kind, n in layout)
    path = tmp_path / "f"
    with open(path, "w+b") as f:
        _write_data(f.fileno(), memoryview(data), 1000 * HOLE)
        os.ftruncate(f.fileno(), 1000 * HOLE + len(data))
        f.seek(1000 * HOLE)
        assert f.read() == data
        # every whole zero piece is left unwritten: at most the data pieces take room
        data_pieces = sum(1 for i in range(0, len(data), HOLE) if any(data[i:i + HOLE]))
        assert os.fstat(f.fileno()).st_blocks * 512 <= (data_pieces + 1) * HOLE
