"""``omnifs daemon`` with every store it opens behind a network profile (bench only).

    python bench/profiled_daemon.py PROFILE [omnifs arguments ...]

PROFILE is a name of omnifs/bench/netprofile.py (``cross-region``: 65 ms per request): the
daemon's stores are wrapped in the faulty wrapper as ``omnifs bench`` wraps a store, so
local ``file://`` directories answer as a store that far away would. This is how
bench/pg_catalog.py measures daemon processes whose items wait on the network, as
replication between clouds does, rather than on this machine's CPU. The wrapper is a
bench's: nothing in the daemon or its config knows about it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from omnifs.bench.netprofile import profile
from omnifs.cli import main
from omnifs.daemon import main as daemon_main


def run(argv: list[str]) -> int:
    net = profile(argv[0])
    real = daemon_main.open_provider
    daemon_main.open_provider = lambda settings: net.apply(real(settings))  # type: ignore[assignment]
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
