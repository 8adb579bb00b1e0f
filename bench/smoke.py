"""``omnifs bench run --quick`` on the local servers, as CI runs it: a smoke run whose
results are kept as artifacts, never gated on absolute times.

Starts the servers the way the test suite does (tests/servers.py: moto for s3:// and
minio://, the GCS emulator, Azurite; file:// in a temporary directory), one fresh
bucket each, writes a config naming them by kind, then runs the bench command and
writes its report (md with PNG charts, html, json) into ``--out``. Exit status: the
bench's (1 when an operation failed), so a broken harness or provider fails CI.

    .venv/bin/python bench/smoke.py --out ci-artifacts/bench [--scenario small-object]
    .venv/bin/python bench/smoke.py --out /tmp/b --scenario all --kinds s3,file
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import subprocess
import tempfile
import time

from tests import servers as S
from tests.cli import OMNIFS, write_config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="artifact directory (results and reports)")
    ap.add_argument("--scenario", default="small-object", help="as `omnifs bench run -s`")
    ap.add_argument("--kinds", default=",".join(S.KINDS), help="provider kinds to run on")
    ap.add_argument("--full", action="store_true", help="the full scenarios, not --quick")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started: dict[str, S.Server] = {}
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="omnifs-bench-") as tmp:
            stores = []
            for kind in kinds:
                if kind == "file":
                    stores.append(S.settings_for("file", None, "", name="file",
                                                 local_root=tmp + "/store"))
                    Path(tmp, "store").mkdir()
                    continue
                server_kind = "s3" if kind == "minio" else kind
                if server_kind not in started:
                    started[server_kind] = S.start(server_kind)
                endpoint = started[server_kind].endpoint
                bucket = S.unique_bucket("bench")
                S.create_bucket(kind, endpoint, bucket)
                stores.append(S.settings_for(kind, endpoint, bucket, name=kind))
            cfg = write_config(Path(tmp) / "omnifs.toml", stores)
            print(f"servers up in {time.monotonic() - t0:.1f} s", flush=True)
            argv = [*OMNIFS, "--config", str(cfg), "bench", "run", "--providers",
                    ",".join(kinds), "--scenario", args.scenario, "-o", str(out / "history")]
            status = subprocess.call(argv + ([] if args.full else ["--quick"]))
            for fmt in ("md", "html", "json"):
                subprocess.check_call([*OMNIFS, "--config", str(cfg), "bench", "report",
                                       str(out / "history"), "-f", fmt, "-o",
                                       str(out / f"report.{fmt}")])
    finally:
        for server in started.values():
            server.stop()
    print(f"bench smoke: {time.monotonic() - t0:.1f} s, artifacts in {out}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
