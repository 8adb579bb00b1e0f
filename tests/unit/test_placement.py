"""policy.placement: distinct providers, region rules, health, load and cost."""

from __future__ import annotations

from collections import Counter

import pytest

from omnifs.policy.placement import (
    Placement,
    PlacementError,
    ProviderView,
    Rule,
    allowed,
    infer_region,
    path_matches,
    place,
    rank_reads,
    rules_from_config,
    views_from_config,
)

EU = Rule(("/eu/**",), ("eu*", "europe*"))


def views(*specs) -> list[ProviderView]:
    out = []
    for i, spec in enumerate(specs):
        name, *rest = spec.split(":")
        region = rest[0] if rest and rest[0] else None
        status = rest[1] if len(rest) > 1 else "healthy"
        out.append(ProviderView(name=name, region=region, status=status, order=i))
    return out


THREE = views("a:us-east-1", "b:eu-west-1", "c:europe-west1")


# -- globs ---------------------------------------------------------------

@pytest.mark.parametrize("path,pattern,expected", [
    ("/eu/a.txt", "/eu/**", True),
    ("/eu/x/y/z", "/eu/**", True),
    ("/eu", "/eu/**", True),
    ("/europe/a", "/eu/**", False),
    ("/us/eu/a", "/eu/**", False),
    ("/a.csv", "/*.csv", True),
    ("/d/a.csv", "/*.csv", False),
    ("/d/a.csv", "/**/*.csv", True),
    ("/d/e/a.csv", "/**/*.csv", True),
    ("/a1", "/a?", True),
    ("/a12", "/a?", False),
    ("eu/a", "/eu/**", True),
    ("/eu/a/", "/eu/**", True),
    ("/x", "/**", True),
    ("/", "/**", True),
    ("/a+b(c)", "/a+b(c)", True),
    ("/data/2024/eu/x", "/data/*/eu/**", True),
])
def test_path_matches(path, pattern, expected):
    assert path_matches(path, pattern) is expected


# -- regions -------------------------------------------------------------

@pytest.mark.parametrize("table,region", [
    ({"region": "EU-West-1"}, "eu-west-1"),
    ({"endpoint": "https://s3.eu-central-1.amazonaws.com"}, "eu-central-1"),
    ({"uri": "s3://b/p", "endpoint": "https://s3.us-gov-west-1.amazonaws.com"}, "us-gov-west-1"),
    ({"endpoint": "https://storage.europe-west1.rep.googleapis.com"}, "europe-west1"),
    ({"uri": "file:///tmp/x"}, None),
    ({"uri": "s3://bucket-eu/data"}, None),
    ({"region": "", "endpoint": "http://127.0.0.1:9000"}, None),
])
def test_infer_region(table, region):
    assert infer_region(table) == region


def test_rule_limits_providers():
    names = [p.name for p in allowed("/eu/report.pdf", THREE, [EU])]
    assert names == ["b", "c"]
    assert [p.name for p in allowed("/us/report.pdf", THREE, [EU])] == ["a", "b", "c"]


def test_provider_without_region_never_satisfies_a_rule():
    vs = views("a", "b:eu-west-1")
    assert [p.name for p in allowed("/eu/x", vs, [EU])] == ["b"]
    assert [p.name for p in allowed("/other", vs, [EU])] == ["a", "b"]


def test_all_matching_rules_apply():
    rules = [EU, Rule(("/eu/de/**",), ("*central*",))]
    vs = views("a:eu-west-1", "b:eu-central-1", "c:us-central1")
    assert [p.name for p in allowed("/eu/de/x", vs, rules)] == ["b"]
    assert [p.name for p in allowed("/eu/fr/x", vs, rules)] == ["a", "b"]


def test_rules_from_config():
    rules = rules_from_config([{"paths": ["/eu/**"], "regions": ["eu*"]},
                               {"paths": "/x/**", "regions": "us*"},
                               {"paths": ["/audit/**"], "immutable": True}])
    assert rules == [Rule(("/eu/**",), ("eu*",)), Rule(("/x/**",), ("us*",))]


# -- place -----------------------------------------------------------------

def test_copies_on_distinct_providers_primary_first():
    p = place("/f", THREE, [], copies=2, write_quorum=2)
    assert p.targets == ["a", "b"]
    assert p.write_now == ["a", "b"] and p.pending == [] and p.shortfall == 0


def test_quorum_one_uploads_one_and_queues_the_rest():
    p = place("/f", THREE, [], copies=3, write_quorum=1)
    assert len(p.targets) == 3 and len(set(p.targets)) == 3
    assert len(p.write_now) == 1
    assert sorted(p.write_now + p.pending) == ["a", "b", "c"]


def test_eu_paths_only_on_eu_providers():
    for i in range(50):
        p = place(f"/eu/f{i}", THREE, [EU], copies=2)
        assert set(p.targets) == {"b", "c"}


def test_shortfall_when_rules_leave_too_few():
    p = place("/eu/f", THREE, [Rule(("/eu/**",), ("eu-*",))], copies=2)
    assert p.targets == ["b"] and p.shortfall == 1


def test_no_allowed_provider_raises():
    with pytest.raises(PlacementError, match="no configured provider is allowed"):
        place("/eu/f", views("a:us-east-1"), [EU], copies=1)


def test_down_provider_skipped_for_writes():
    vs = views("a:us-east-1:down", "b:eu-west-1", "c:europe-west1")
    p = place("/f", vs, [], copies=2, write_quorum=1, balance=False)
    assert p.write_now == ["b"]
    assert p.targets == ["b", "c"]


def test_down_provider_kept_as_target_when_needed():
    vs = views("a::down", "b")
    p = place("/f", vs, [], copies=2, write_quorum=1)
    assert p.write_now == ["b"] and p.pending == ["a"]


def test_quorum_shrinks_to_what_is_up():
    vs = views("a::down", "b", "c::down")
    p = place("/f", vs, [], copies=3, write_quorum=2)
    assert p.write_now == ["b"]
    assert sorted(p.pending) == ["a", "c"]


def test_all_down_raises():
    with pytest.raises(PlacementError, match="down"):
        place("/f", views("a::down", "b::down"), [], copies=1)


def test_close_succeeds_when_any_allowed_provider_is_up():
    vs = views("a:us-east-1", "b:eu-west-1:down", "c:europe-west1")
    p = place("/eu/f", vs, [EU], copies=2, write_quorum=2)
    assert p.write_now == ["c"]
    assert p.pending == ["b"]


def test_lost_provider_never_chosen():
    vs = views("a::lost", "b", "c")
    for i in range(20):
        assert "a" not in place(f"/f{i}", vs, [], copies=2).targets
    p = place("/f", views("a::lost", "b"), [], copies=2)
    assert p.targets == ["b"] and p.shortfall == 1


def test_degraded_after_healthy():
    vs = views("a::degraded", "b", "c")
    p = place("/f", vs, [], copies=2, write_quorum=2)
    assert p.targets == ["b", "c"]
    p = place("/f", vs, [], copies=3, write_quorum=1)
    assert p.targets[-1] == "a"


def test_unknown_counts_as_healthy():
    vs = views("a::unknown", "b")
    assert place("/f", vs, [], copies=1, balance=False).write_now == ["a"]


def test_cheaper_preferred():
    vs = [ProviderView("a", cost_per_gb=0.023, order=0),
          ProviderView("b", cost_per_gb=0.01, order=1),
          ProviderView("c", cost_per_gb=0.02, order=2)]
    assert place("/f", vs, [], copies=2, write_quorum=2).targets == ["b", "c"]


def test_weight_preferred():
    vs = [ProviderView("a", weight=1, order=0), ProviderView("b", weight=3, order=1)]
    assert place("/f", vs, [], copies=1).targets == ["b"]


def test_less_loaded_preferred():
    vs = [ProviderView("a", load=100, order=0), ProviderView("b", load=5, order=1),
          ProviderView("c", load=50, order=2)]
    assert place("/f", vs, [], copies=2, write_quorum=2).targets == ["b", "c"]


def test_health_beats_cost():
    vs = [ProviderView("a", cost_per_gb=0.0, status="down", order=0),
          ProviderView("b", cost_per_gb=10.0, status="healthy", order=1)]
    assert place("/f", vs, [], copies=1).write_now == ["b"]


def test_new_writes_balanced_when_quorum_below_copies():
    vs = views("a", "b", "c")
    first = Counter(place(f"/dir/file{i}", vs, [], copies=3, write_quorum=1).write_now[0]
                    for i in range(600))
    assert set(first) == {"a", "b", "c"}
    assert min(first.values()) > 120


def test_no_balance_when_quorum_equals_copies():
    vs = views("a", "b", "c")
    for i in range(30):
        assert place(f"/f{i}", vs, [], copies=2, write_quorum=2).targets == ["a", "b"]


def test_balance_is_deterministic():
    vs = views("a", "b", "c")
    assert (place("/same", vs, [], copies=3, write_quorum=1).targets
            == place("/same", vs, [], copies=3, write_quorum=1).targets)


def test_exclude():
    p = place("/f", views("a", "b", "c"), [], copies=2, exclude=["a"], balance=False)
    assert p.targets == ["b", "c"]


def test_placement_result_shape():
    p = place("/f", views("a"), [], copies=1)
    assert isinstance(p, Placement) and p.targets == ["a"] and p.write_now == ["a"]


# -- reads ---------------------------------------------------------------

def test_rank_reads_healthy_fastest_first():
    vs = [ProviderView("a", status="healthy", latency=0.2, order=0),
          ProviderView("b", status="healthy", latency=0.05, order=1),
          ProviderView("c", status="down", latency=0.01, order=2),
          ProviderView("d", status="degraded", latency=0.01, order=3),
          ProviderView("e", status="lost", order=4),
          ProviderView("f", status="healthy", latency=None, order=5)]
    assert [p.name for p in rank_reads(vs)] == ["b", "a", "f", "d", "c"]


# -- config ---------------------------------------------------------------

def test_views_from_config():
    tables = {"aws": {"uri": "s3://b", "region": "us-east-1", "weight": 2, "cost_per_gb": 0.02},
              "gcs": {"uri": "gs://b", "endpoint": "https://storage.europe-west1.rep.googleapis.com"},
              "loc": {"uri": "file:///x"}}
    vs = views_from_config(tables, status={"gcs": "down"}, load={"aws": 3},
                           latency={"aws": 0.1})
    assert [v.name for v in vs] == ["aws", "gcs", "loc"]
    assert vs[0].region == "us-east-1" and vs[0].weight == 2 and vs[0].cost_per_gb == 0.02
    assert vs[0].load == 3 and vs[0].latency == 0.1
    assert vs[1].region == "europe-west1" and vs[1].status == "down"
    assert vs[2].region is None and vs[2].status == "unknown" and vs[2].order == 2


def test_draining_provider_takes_no_new_replica():
    """``omnifs migrate provider`` marks OLD draining: placement never chooses it."""
    tables = {"old": {"weight": 5}, "b": {}, "c": {}}
    vs = views_from_config(tables, draining={"old"})
    assert [(v.name, v.order) for v in vs] == [("b", 1), ("c", 2)]
    for i in range(20):
        p = place(f"/f{i}", vs, [], copies=2)
        assert sorted(p.targets) == ["b", "c"] and "old" not in p.write_now
