"""What the start-time privacy walk costs: ``omnifs.private.tighten`` over a cache-like tree.

A mount and the daemon walk the cache directory and every ``file://`` store
at start, one ``lstat`` per entry (``chmod`` only where something is wide).
Prints, for N files in 100 directories, our walk when every entry is wide
(first start after an upgrade), when nothing is (every later start), and the
baseline ``find DIR -printf '%m'`` (also one lstat per entry) in the same run.

Not a timed test: ``.venv/bin/python bench/tighten.py [--files 10000]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like stdlib modules (copy.py): never import from it
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import os
import subprocess
import tempfile
import time

from omnifs.private import tighten


def build(root: Path, files: int) -> None:
    per_dir = max(files // 100, 1)
    for i in range(files):
        d = root / f"{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir(mode=0o755)
            os.chmod(d, 0o755)
        p = d / f"{i}.val"
        p.write_bytes(b"")
        os.chmod(p, 0o644)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cache"
        root.mkdir()
        build(root, args.files)
        find = ["find", str(root), "-printf", "%m\n"]
        subprocess.run(find, stdout=subprocess.DEVNULL, check=True)  # warm the dentry cache
        wide = timed(lambda: tighten([root]))
        again = timed(lambda: tighten([root]))
        base = timed(lambda: subprocess.run(find, stdout=subprocess.DEVNULL, check=True))
    print(f"{args.files} files: tighten all wide {wide * 1000:.0f} ms, nothing to change "
          f"{again * 1000:.0f} ms; baseline find -printf %m {base * 1000:.0f} ms")


if __name__ == "__main__":
    main()
