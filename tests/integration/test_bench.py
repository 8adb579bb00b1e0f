"""``omnifs bench`` end to end on the real local servers: every built-in object scenario
``--quick`` on all five kinds, its report in a browser, compare, the cost gate, and the
network profiles moving latency and throughput the expected way."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

from omnifs.bench import netprofile, results, scenario, session
from omnifs.config import Config
from omnifs.providers import ProviderSettings, open_provider
from tests import servers as S
from tests.chromium import images_loaded
from tests.cli import one_line_error, run, write_config


def test_every_builtin_scenario_quick_on_five_kinds(make_settings, tmp_path):
    stores = [make_settings(kind, name=kind) for kind in S.KINDS]
    cfg = write_config(tmp_path / "omnifs.toml", stores)
    hist = tmp_path / "history"
    names = [n for n in scenario.builtin_names() if scenario.builtin(n).kind == "objects"]
    t0 = time.monotonic()
    proc = run("bench", "run", "--providers", ",".join(S.KINDS), "--scenario", ",".join(names),
               "--quick", "-o", str(hist), config=cfg, timeout=300)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.decode()
    runs = results.load_many([hist])
    assert sorted(r["scenario"]["name"] for r in runs) == sorted(names)
    for r in runs:
        assert {row["provider"] for row in r["results"]} == set(S.KINDS)
        for row in r["results"]:
            assert row["errors"] == 0 and row["ops"] > 0, row
            assert row["latency"]["p50"] <= row["latency"]["p99"] <= row["latency"]["max"]
            assert row["peak_rss"] > 0 and row["cpu_seconds"] >= 0
        assert r["environment"]["config_hash"] and r["environment"]["versions"]["boto3"]
    print(f"--quick of {len(names)} object scenarios on five kinds: {took:.1f} s")
    # nothing of the bench is left in the stores
    for settings in stores:
        p = open_provider(settings)
        assert not [o for o in p.list("omnifs-bench/") if not o.is_prefix], settings.name
        p.close()

    html = tmp_path / "bench.html"
    proc = run("bench", "report", str(hist), "--format", "html", "-o", str(html))
    assert proc.returncode == 0, proc.stderr.decode()
    loaded, total = images_loaded(html, tmp_path)
    assert loaded == total >= 2 * len(names)
    md = run("bench", "report", str(hist), "-f", "md").stdout.decode()
    assert "| provider | size | concurrency |" in md and "Latency CDF" in md
    doc = json.loads(run("bench", "report", str(hist), "-f", "json").stdout)
    assert doc["kind"] == "bench"

    same = run("bench", "compare", str(hist), str(hist))
    assert same.returncode == 0, same.stdout.decode()
    assert "0 regressions" in same.stdout.decode()


def test_bad_input_is_one_line(make_settings, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[mix]\nget = 1\nconcurrency = 3\n')
    cfg = write_config(tmp_path / "omnifs.toml", [make_settings("file", name="f")])
    err = one_line_error(run("bench", "run", "-p", "f", "-s", str(bad), config=cfg))
    assert f"{bad}: mix.concurrency:" in err
    err = one_line_error(run("bench", "run", "-p", "nope", config=cfg))
    assert "'nope'" in err
    err = one_line_error(run("bench", "run", "-p", "f", "--profile", "moon", config=cfg))
    assert "no network profile 'moon'" in err


def test_a_cloud_store_needs_yes_after_the_cost_estimate(tmp_path):
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text('[providers.aws]\nuri = "s3://omnifs-bench-nowhere/x"\nregion = "us-east-1"\n')
    cfg.chmod(0o600)
    proc = run("bench", "run", "-p", "aws", "-s", "small-object,mount-seq-read", config=cfg,
               env={"AWS_ACCESS_KEY_ID": "none", "AWS_SECRET_ACCESS_KEY": "none"})
    assert proc.returncode == 2
    out = proc.stdout.decode()
    assert "cost estimate: small-object on aws:" in out and "USD" in out
    assert "cost estimate: mount-seq-read on aws:" in out and ": about " in out
    assert "--yes" in one_line_error(proc)


def _measure(p, profile_name: str | None, size: int):
    s = scenario.Scenario("probe", sizes=(size,), concurrency=(4,), count=12, objects=4,
                          mix={"get": 1})
    profile = netprofile.profile(profile_name) if profile_name else None
    with ExitStack() as stack:
        subjects = session.open_subjects(stack, Config(), [p], profile, seed=1)
        (run_,) = session.run([s], subjects, quick=False, repeats=1, profile=profile,
                              config_path=None)
    (row,) = run_["results"]
    assert row["errors"] == 0
    return row


def test_profiles_change_latency_and_throughput_the_expected_way(tmp_path):
    uri = f"file://{tmp_path}"
    direct = _measure(uri, None, 64 * 1024)
    lan = _measure(uri, "lan", 64 * 1024)
    far = _measure(uri, "cross-region", 64 * 1024)
    throttled = _measure(uri, "throttled", 256 * 1024)
    # per-request latency: cross-region (65 ms) above lan (0.3 ms) above none
    assert far["latency"]["p50"] > 0.05 > lan["latency"]["p50"]
    assert lan["latency"]["p50"] > direct["latency"]["p50"] * 0.5
    assert far["ops_per_s"] < lan["ops_per_s"] / 5
    # bandwidth: 2 MB/s cap
    assert throttled["mb_per_s"] < 2.2 < lan["mb_per_s"]
    # a bare file:// URI is the store itself: what the bench wrote is gone, directories too
    assert list(tmp_path.iterdir()) == []


def test_a_profile_measured_from_real_round_trips(tmp_path):
    p = open_provider(ProviderSettings(name="disk", uri=f"file://{tmp_path}"))
    measured = netprofile.measure(p, samples=5)
    p.close()
    assert measured.name == "measure:disk"
    assert 0 < measured.latency < 0.5 and measured.bandwidth is None


def test_run_under_a_profile_measured_from_a_store(make_settings, tmp_path):
    cfg = write_config(tmp_path / "omnifs.toml", [make_settings("s3", name="s3"),
                                                    make_settings("file", name="f")])
    s = tmp_path / "tiny.toml"
    s.write_text('sizes = ["4KiB"]\ncount = 10\nobjects = 4\n[mix]\nget = 1\n')
    proc = run("bench", "run", "-p", "f", "-s", str(s), "--profile", "measure:s3",
               "-o", str(tmp_path / "h"), config=cfg)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "measured profile of s3:" in proc.stderr.decode()
    (r,) = results.load_many([tmp_path / "h"])
    assert r["profile"]["name"] == "measure:s3" and r["profile"]["latency"] > 0
    # every GET on the local disk now waits about one round trip to moto
    assert r["results"][0]["latency"]["p50"] >= r["profile"]["latency"] * 0.5
