"""omnifs.toml's [cost] table: parsed into the pure policy record, mistakes in one line."""

from __future__ import annotations

import tomllib

import pytest

from omnifs.config import ConfigError, parse_config
from omnifs.policy.costpolicy import CostPolicy, TierPolicy


def cost(text: str) -> CostPolicy:
    return parse_config(tomllib.loads(text), "omnifs.toml").cost


def test_defaults_without_a_cost_table():
    c = cost("")
    assert c == CostPolicy()
    assert c.default == TierPolicy(cool_after_days=30, cold_after_days=None,
                                   archive_after_days=180, horizon_days=365,
                                   allow_archive_only=False)
    assert not c.auto and c.schedule_seconds == 86400


def test_a_full_table_and_per_prefix_rules():
    c = cost("""
[cost]
cool_after_days = 20
cold_after_days = 60
archive_after_days = 200
horizon_days = 90
auto = true
schedule = "12h"
allow_archive_only = true

[[cost.rules]]
paths = ["/backups/**"]
archive_after_days = 7

[[cost.rules]]
paths = ["/projects/*/scratch/**", "/tmp/**"]
cool_after_days = 1
horizon_days = 30
""")
    assert c.auto and c.schedule_seconds == 12 * 3600
    assert c.default == TierPolicy(20, 60, 200, 90, True)
    # a rule's later step earlier than the inherited ones drops them: no cool, no cold
    assert c.for_path("/backups/db/2025.tar") == TierPolicy(None, None, 7, 90, True)
    assert c.for_path("/backups") == c.for_path("/backups/x")
    assert c.for_path("/projects/a/scratch/x/y") == TierPolicy(1, 60, 200, 30, True)
    assert c.for_path("/projects/a/b/scratch/x") == c.default
    assert c.for_path("/tmp/a") == TierPolicy(1, 60, 200, 30, True)
    assert c.for_path("/home/a") == c.default
    # which class an idle file belongs in, under each
    assert [c.default.target_class(d) for d in (0, 19, 20, 59, 60, 199, 200, 10_000)] == [
        "hot", "hot", "cool", "cool", "cold", "cold", "archive", "archive"]
    assert c.for_path("/backups/a").target_class(6.9) == "hot"
    assert c.for_path("/backups/a").target_class(7) == "archive"


@pytest.mark.parametrize("schedule, seconds", [
    ("30m", 1800), ("1d", 86400), ("7d", 7 * 86400), ("3600", 3600), (600, 600),
    (" 2h ", 7200)])
def test_schedules(schedule, seconds):
    value = f'"{schedule}"' if isinstance(schedule, str) else schedule
    assert cost(f"[cost]\nschedule = {value}\n").schedule_seconds == seconds


@pytest.mark.parametrize("text, needle", [
    ("[cost]\ncool_after_day = 3", "[cost]: unknown key 'cool_after_day' (did you mean "
                                   "'cool_after_days'?)"),
    ("[cost]\nfrobnicate = 3", "[cost]: unknown key 'frobnicate' (known keys: "),
    ("[cost]\ncool_after_days = -1", "[cost] cool_after_days: must not be negative, got -1"),
    ("[cost]\narchive_after_days = -5", "[cost] archive_after_days: must not be negative"),
    ("[cost]\ncool_after_days = 3.5", "[cost] cool_after_days: expected a whole number of "
                                      "days, got 3.5"),
    ("[cost]\ncool_after_days = true", "[cost] cool_after_days: expected a whole number"),
    ("[cost]\nauto = 1", "[cost] auto: expected true or false, got 1"),
    ("[cost]\ncool_after_days = 200\narchive_after_days = 100",
     "[cost] cool_after_days (200) must not be more than archive_after_days (100)"),
    ("[cost]\ncold_after_days = 10\ncool_after_days = 20",
     "[cost] cool_after_days (20) must not be more than cold_after_days (10)"),
    ("[cost]\nhorizon_days = 0", "[cost] horizon_days: must be at least 1 day"),
    ("[cost]\nschedule = \"soon\"", "[cost] schedule: 'soon' is not a duration"),
    ("[cost]\nschedule = \"10s\"", "[cost] schedule: must be at least a minute"),
    ("[cost]\nrules = [1]", "[cost] rule 1 ([[cost.rules]]): must be a table"),
    ("[[cost.rules]]\narchive_after_days = 7", "[cost] rule 1 ([[cost.rules]]): missing key "
                                               "'paths'"),
    ("[[cost.rules]]\npaths = \"/a/**\"", "[cost] rule 1 ([[cost.rules]]) paths: expected a "
                                         "list of globs"),
    ("[[cost.rules]]\npaths = [\"backups/**\"]", "paths: 'backups/**' is not a path glob"),
    ("[[cost.rules]]\npaths = [\"/a/[bc]/**\"]", "paths: bad glob '/a/[bc]/**'; use *, ? and "
                                                "** only"),
    ("[[cost.rules]]\npaths = [\"/a/***\"]", "bad glob '/a/***'"),
    ("[[cost.rules]]\npaths = [7]", "paths: 7 is not a path glob"),
    ("[[cost.rules]]\npaths = [\"/a\"]\nauto = true", "[cost] rule 1 ([[cost.rules]]): unknown "
                                                    "key 'auto'"),
    ("[[cost.rules]]\npaths = [\"/a\"]\n[[cost.rules]]\npaths = [\"/b\"]\n"
     "cool_after_days = 50\ncold_after_days = 40",
     "[cost] rule 2 ([[cost.rules]]) cool_after_days (50) must not be more than "
     "cold_after_days (40)"),
    ("[[cost.rules]]\npaths = [\"/a\"]\nhorizon_days = -3", "rule 1 ([[cost.rules]]) "
                                                          "horizon_days: must not be negative"),
    ("cost = 3", "[cost] must be a table"),
])
def test_bad_cost_config_is_one_line_naming_the_key(text, needle):
    with pytest.raises(ConfigError) as e:
        cost(text)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("omnifs.toml: ")
    assert needle in msg


def test_a_store_whose_tiers_are_disabled_is_priced_without_tier_moves():
    from omnifs.costing.inputs import store_prices

    cfg = parse_config(tomllib.loads("""
[providers.warm]
uri = "s3://warm"
region = "us-east-1"

[providers.flat]
uri = "s3://flat"
region = "us-east-1"
disable = ["tiers"]
"""), "omnifs.toml")
    prices = store_prices(cfg)
    assert prices["warm"].tiering and not prices["flat"].tiering
    assert prices["flat"].tiers == prices["warm"].tiers  # what it holds is still priced
