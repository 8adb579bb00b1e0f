"""``omnifs metrics alerts|compare|export``, the rules through promtool, config checks."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from omnifs.config import parse_config
from omnifs.errors import ConfigError
from omnifs.metrics import compare, samples
from omnifs.metrics.alerts import AlertBook
from omnifs.metrics_config import AlertSettings
from omnifs.providers import ProviderSettings
from omnifs.providers.registry import open_provider
from tests.cli import run
from tests.prometheus import binary
from tests.servers import free_port

ALERTS = """
[alerts]
replication_lag = 300
under_replicated = 0
provider_down = 60
error_rate = 0.05
p95_latency = 2.5
cache_hit_ratio = 0.5
monthly_cost = 100
recovery_point = 900
"""


def _config(tmp_path, extra: str = "") -> object:
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    path = tmp_path / "omnifs.toml"
    path.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path}/c.db"\n'
                    f'[cache]\ndir = "{tmp_path}/cache"\n'
                    f'[providers.disk]\nuri = "file://{store}"\n{extra}')
    path.chmod(0o600)
    return path


def test_generated_rules_pass_promtool(tmp_path):
    cfg = _config(tmp_path, ALERTS)
    out = run("metrics", "alerts", config=cfg, check=True).stdout.decode()
    rules = tmp_path / "omnifs.rules.yml"
    rules.write_text(out)
    check = subprocess.run([binary("promtool"), "check", "rules", str(rules)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout


def test_the_dr_rpo_is_an_alert_threshold(tmp_path):
    """[dr] rpo raises the recovery-point alert unless [alerts] sets its own threshold."""
    from omnifs.config import load_config

    assert load_config(_config(tmp_path, '[dr]\nrpo = "15m"\n')).metrics.alerts.thresholds() \
        == {"recovery_point": 900.0}
    both = _config(tmp_path, '[dr]\nrpo = "15m"\n[alerts]\nrecovery_point = 60\n')
    assert load_config(both).metrics.alerts.recovery_point == 60.0


def test_config_mistakes_are_one_line(tmp_path):
    for section, line, says in (
            ("alerts", "error_rate = 2", "[alerts] error_rate must be between 0 and 1"),
            ("alerts", "paging = 1", "[alerts]: unknown key 'paging'"),
            ("metrics", "mount_port = 70000", "[metrics] mount_port must be a TCP port"),
            ("metrics", 'enabled = "no"', "[metrics] enabled: wrong type str")):
        cfg = _config(tmp_path, f"[{section}]\n{line}\n")
        proc = run("metrics", "alerts", config=cfg)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_alert_book_waits_its_for_time_and_resolves():
    now = [0.0]
    book = AlertBook(AlertSettings(cache_hit_ratio=0.5, provider_down=10), clock=lambda: now[0])
    assert book.update({("cache_hit_ratio", ""): 0.2, ("provider_down", "a"): 1.0}) == []
    now[0] = 60.0
    fired = book.update({("cache_hit_ratio", ""): 0.3, ("provider_down", "a"): 1.0})
    assert {(e.alert, e.state) for e in fired} == {("cache_hit_ratio", "firing"),
                                                   ("provider_down", "firing")}
    assert book.update({("cache_hit_ratio", ""): 0.3}) == []  # fires once
    done = book.update({("cache_hit_ratio", ""): 0.9, ("provider_down", "a"): 0.0})
    assert {(e.alert, e.state) for e in done} == {("cache_hit_ratio", "resolved"),
                                                  ("provider_down", "resolved")}


def test_compare_and_export_from_local_samples(tmp_path):
    cfg_path = _config(tmp_path)
    cfg = parse_config({"catalog": {"url": f"sqlite:///{tmp_path}/c.db"},
                        "cache": {"dir": str(tmp_path / "cache")},
                        "providers": {"disk": {"uri": f"file://{tmp_path}/store"}}})
    p = open_provider(ProviderSettings(name="disk", uri=f"file://{tmp_path}/store"))
    samples.append(cfg.cache_dir, "test", now=1000.0)  # counters before the window
    for i in range(20):
        p.write_bytes(f"k{i}", b"x" * 4096)
        assert p.read_bytes(f"k{i}") == b"x" * 4096
    samples.append(cfg.cache_dir, "test", now=1010.0)
    totals, seconds = compare.from_samples(samples.read(cfg.cache_dir), 1005.0)
    assert seconds == 10.0  # from the last sample at or before the start: what was measured
    got = totals[("disk", "get")]
    assert got["requests"] == 20 and got["bytes_in"] == 20 * 4096
    rows = compare.rows(totals, seconds, {})
    get = next(r for r in rows if r["op"] == "get")
    assert get["p50_ms"] is not None and get["p50_ms"] <= get["p95_ms"] <= get["p99_ms"]
    assert get["error_rate"] == 0.0 and get["mib_s"] > 0

    proc = run("metrics", "compare", "--since", "100000d", "--json", config=cfg_path, check=True)
    body = json.loads(proc.stdout)
    assert body["source"] == "local samples"
    assert any(r["provider"] == "disk" and r["op"] == "put" for r in body["rows"])
    out = run("metrics", "export", "--format", "csv", config=cfg_path, check=True).stdout
    table = list(csv.DictReader(io.StringIO(out.decode())))
    assert {"provider", "op", "p95_ms", "usd_per_gb_read"} <= set(table[0])
    text = run("metrics", "compare", config=cfg_path, check=True).stdout.decode()
    assert "provider" in text or "no store requests" in text
    bad = run("metrics", "compare", "--since", "soon", config=cfg_path)
    assert bad.returncode == 2 and "not a duration" in bad.stderr.decode()
    gone = _config(tmp_path, f'[metrics]\nprometheus_url = "http://127.0.0.1:{free_port()}"\n')
    down = run("metrics", "compare", config=gone)
    err = down.stderr.decode()
    assert down.returncode == 1 and "cannot query Prometheus" in err, err
    assert len(err.strip().splitlines()) == 1


def test_quantile_interpolates_like_prometheus():
    from omnifs.providers.metered import BUCKETS

    counts = [0.0] * (len(BUCKETS) + 1)
    i = BUCKETS.index(0.01)
    for j in range(i, len(counts)):
        counts[j] = 100.0  # every request between 5 and 10 ms
    assert compare.quantile(counts, 0.5) == pytest.approx(0.0075)
    assert compare.quantile([0.0] * len(counts), 0.5) is None


def test_config_error_type():
    with pytest.raises(ConfigError):
        parse_config({"metrics": {"sample_interval": 0}})


def test_cost_counters_use_the_shared_price_tables():
    from decimal import Decimal

    from omnifs.metrics.cost import costs
    from omnifs.prices import store_price

    price = store_price("s3", "us-east-1")
    tier = price.tier_price
    counts = {("b", "get"): (1000, 0, 2**30, 0), ("b", "put"): (10, 0, 0, 5 * 2**20),
              ("b", "list"): (2, 0, 0, 0)}
    got = costs({"b": price}, counts)
    assert got[("b", "requests")] == 1000 * tier.read_requests + 10 * tier.write_requests \
        + 2 * tier.list_requests
    assert got[("b", "egress")] == price.egress_internet_per_gb
    assert got[("b", "retrieval")] == tier.retrieval_per_gb
    assert got[("b", "egress")] > Decimal(0)
