"""Every panel of docs/dashboards/ queries only metrics omnifs exports, in valid PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from omnifs.daemon.metrics import Metrics
from omnifs.metrics import cost
from omnifs.mountfs.metrics import FUSE, SERIES
from omnifs.providers.metered import REGISTRY
from tests.prometheus import binary

BOARDS = Path(__file__).resolve().parents[2] / "docs" / "dashboards"
NAMES = ("overview", "providers", "cache", "replication", "cost")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
             "gauge": ("",)}


def exported() -> set[str]:
    """The sample names the mount and the daemon export."""
    names = {*SERIES, *cost.SERIES}
    families = [*REGISTRY.collect(), *FUSE.collect(), *Metrics().registry.collect()]
    for m in families:
        names.update(m.name + s for s in _SUFFIXES[m.type])
    assert isinstance(REGISTRY, CollectorRegistry)
    return names


def queries() -> list[tuple[str, str, str]]:
    out = []
    for name in NAMES:
        board = json.loads((BOARDS / f"{name}.json").read_text())
        assert board["panels"], name
        for panel in board["panels"]:
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            out += [(name, panel["title"], t["expr"]) for t in panel["targets"]]
    return out


def test_every_panel_names_only_exported_metrics():
    known = exported()
    for board, title, expr in queries():
        used = set(re.findall(r"\bomnifs_[a-z0-9_]+", expr))
        assert used, f"{board}: {title}: no omnifs metric in {expr!r}"
        assert used <= known, f"{board}: {title}: not exported: {sorted(used - known)}"


@pytest.mark.parametrize("board", NAMES)
def test_panel_queries_are_valid_promql(board, tmp_path):
    rules = ["groups:", "  - name: panels", "    rules:"]
    for i, (b, _title, expr) in enumerate(queries()):
        if b == board:
            plain = expr.replace("$provider", ".*")
            rules += [f"      - record: panel:{board}:{i}", f"        expr: {json.dumps(plain)}"]
    path = tmp_path / "panels.yml"
    path.write_text("\n".join(rules) + "\n")
    check = subprocess.run([binary("promtool"), "check", "rules", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
