"""The mount scenarios of ``omnifs bench`` (``--quick``) through real FUSE mounts over all
five kinds: sequential and random read, ``ls -l`` of a big directory, untar of many files
(one mount per provider serves the four)."""

from __future__ import annotations

import time

from omnifs.bench import results, scenario
from tests import servers as S
from tests.cli import run, write_config


def _run_mount_scenarios(kinds, make_settings, tmp_path) -> None:
    stores = [make_settings(kind, name=kind) for kind in kinds]
    cfg = write_config(tmp_path / "omnifs.toml", stores)
    hist = tmp_path / "history"
    names = [n for n in scenario.builtin_names() if scenario.builtin(n).kind == "mount"]
    assert len(names) == 4
    t0 = time.monotonic()
    proc = run("bench", "run", "--providers", ",".join(kinds), "--scenario", ",".join(names),
               "--quick", "-o", str(hist), config=cfg, timeout=900)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.decode()
    runs = results.load_many([hist])
    assert sorted(r["scenario"]["name"] for r in runs) == sorted(names)
    for r in runs:
        assert {row["provider"] for row in r["results"]} == set(kinds)
        for row in r["results"]:
            assert row["errors"] == 0 and row["ops"] > 0, row
            # the mount process's memory is counted: a Python process with pyfuse3 loaded
            assert row["peak_rss"] > 20 * 2**20
        if r["scenario"]["workload"] == "seq-read":
            assert all(row["bytes"] == row["ops"] * row["size"] for row in r["results"])
    print(f"--quick of {len(names)} mount scenarios on {', '.join(kinds)}: {took:.1f} s")


def test_every_mount_scenario_quick_on_five_kinds(make_settings, tmp_path):
    _run_mount_scenarios(S.KINDS, make_settings, tmp_path)
