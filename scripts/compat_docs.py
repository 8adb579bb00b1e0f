"""Write docs/compat.md: the declared matrix plus probes of the local test servers.

Run from the repository: ``.venv/bin/python scripts/compat_docs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import servers as S  # noqa: E402
from tests.compat_docs import generate  # noqa: E402


def main() -> int:
    started: dict[str, S.Server] = {}
    try:
        for kind in ("s3", "gs", "az"):
            started[kind] = S.start(kind)
        started["minio"] = started["s3"]
        text = generate(started)
    finally:
        for server in started.values():
            server.stop()
    (ROOT / "docs" / "compat.md").write_text(text)
    print("wrote docs/compat.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
