"""What the CLI prints: one size style, singular counts, and log lines no name can forge."""

from __future__ import annotations

import io
import logging

from omnifs.cli import setup_logging
from omnifs.printable import escape_controls
from omnifs.progress import Snapshot, summary_line
from omnifs.units import human_bytes, plural


def test_sizes_are_binary_everywhere():
    assert [human_bytes(n) for n in (0, 1, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**3)] == [
        "0 B", "1 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB"]


def test_counts_are_singular_for_one():
    assert plural(1, "object") == "1 object"
    assert plural(0, "object") == "0 objects"
    assert plural(2, "entry", "entries") == "2 entries"
    line = summary_line(Snapshot(done_objects=1, done_bytes=2048, elapsed=1.0))
    assert line.startswith("1 object, 2.0 KiB in 1.0s (2.0 KiB/s)"), line


def test_escape_controls():
    assert escape_controls("plain name é.txt") == "plain name é.txt"
    assert escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_controls("\x1b[31mred") == "\\x1b[31mred"
    assert escape_controls("bad\udcffbyte") == "bad\\xffbyte"  # os.fsdecode of b"\xff"
    assert escape_controls("line\u2028sep") == "line\\u2028sep"


def test_a_name_with_a_newline_cannot_forge_a_log_line(monkeypatch):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    root.handlers = []
    try:
        setup_logging(debug=False)
        name = "evil\nomnifs: ERROR: the catalog is gone\udcff"
        logging.getLogger("omnifs.mount").warning("upload of %s failed", name)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("omnifs").exception("with %s", "a\nb")
    finally:
        root.handlers, root.level = saved
    lines = err.getvalue().splitlines()
    assert lines[0] == ("omnifs: WARNING: upload of evil\\nomnifs: ERROR: the catalog is gone"
                        "\\xff failed")
    # the message is escaped, the traceback after it keeps its lines
    assert lines[1] == "omnifs: ERROR: with a\\nb" and lines[2].startswith("Traceback")
