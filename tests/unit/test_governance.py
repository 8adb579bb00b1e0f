"""The governance rule engine (policy/governance.py) and the [governance] section's checks."""

from __future__ import annotations

import pytest

from omnifs.config import load_config
from omnifs.errors import ConfigError
from omnifs.policy.governance import (
    RuleError,
    StoreView,
    parse,
    parse_duration,
)

DAY = 86400
NOW = 1_000_000_000.0
NS = int(NOW * 1e9)


def test_durations():
    assert parse_duration("7y") == 7 * 365 * DAY
    assert parse_duration("30d") == 30 * DAY
    assert parse_duration("2s") == 2
    with pytest.raises(ValueError):
        parse_duration("7 years")


def test_invalid_rules_one_line_each_naming_index_and_key():
    with pytest.raises(RuleError) as e:
        parse([{"paths": ["/a/**"], "regions": ["eu*"]},
               {"paths": ["/b/**"], "retention": "forever"},
               {"paths": "c/**", "min_copies": -1, "colour": "red"},
               {"regions": ["eu*"]}])
    assert e.value.problems == [
        "rule 2: retention: 'forever' is not a duration; write e.g. \"7y\", \"30d\" or \"12h\"",
        "rule 3: colour: unknown key (known: classification, deny_providers, deny_regions, "
        "distinct_regions, encryption, legal_hold, min_copies, name, paths, providers, regions, "
        "retention, retention_days)",
        "rule 3: paths: 'c/**' must start with '/'",
        "rule 3: min_copies: expected a whole number >= 0, got -1",
        "rule 4: paths: give paths and/or classification",
    ]


def test_rule_without_any_requirement_is_refused():
    with pytest.raises(RuleError, match="rule 1: a rule needs one of"):
        parse([{"paths": ["/a/**"]}])


def test_worm_refuses_changes_until_retention_ends():
    gov = parse([{"paths": ["/ledger/**"], "retention": "7y", "name": "sec"}])
    changed = NS - 10 * DAY * 10**9
    for op in ("write", "truncate", "delete", "rename", "setxattr", "chmod"):
        d = gov.check_change(op, "/ledger/2026/q1.csv", born_ns=changed, now=NOW)
        assert d is not None and d.rule.label == "sec" and "WORM" in d.reason
    assert gov.check_change("delete", "/other/x", born_ns=changed, now=NOW) is None
    later = NOW + 7 * 365 * DAY
    assert gov.check_change("delete", "/ledger/2026/q1.csv", born_ns=changed, now=later) is None


def test_legal_hold_never_expires():
    gov = parse([{"paths": ["/case/**"], "legal_hold": True}])
    d = gov.check_change("delete", "/case/mail.eml", born_ns=0, now=NOW * 10)
    assert d is not None and d.rule.label == "rule 1" and d.reason == "under legal hold"


def test_classification_from_path_rule_or_xattr():
    gov = parse([{"classification": "phi", "retention_days": 2190}],
                [{"paths": ["/clinic/**"], "class": "phi"}])
    assert gov.class_of("/clinic/a") == "phi"
    assert gov.class_of("/clinic/a", b"public") == "public"  # the xattr wins
    assert gov.class_of("/home/a", b"phi") == "phi"
    assert gov.check_change("delete", "/home/a", born_ns=NS, now=NOW, cls="phi")
    assert gov.check_change("delete", "/home/a", born_ns=NS, now=NOW, cls=None) is None
    assert gov.may_protect("/anything")  # a class may come from any file's xattr


def test_paths_and_classification_both_must_match():
    gov = parse([{"paths": ["/eu/**"], "classification": "pii", "regions": ["eu*"]}])
    assert gov.rules_for("/eu/x", "pii") and not gov.rules_for("/eu/x", None)
    assert not gov.rules_for("/us/x", "pii")


def test_fast_path_skips_unprotected_paths():
    gov = parse([{"paths": [f"/p{i}/**"], "retention": "1d"} for i in range(50)])
    assert gov.may_protect("/p7/x") and not gov.may_protect("/bench/x")
    assert parse([{"paths": ["/eu/**"], "regions": ["eu*"]}]).protects is False


EU = StoreView("eu", "eu-west-1", encrypted=True)
US = StoreView("us", "us-east-1")
EU2 = StoreView("eu2", "europe-west1")
AP = StoreView("ap", "ap-south-1", encrypted=True)


def test_residency_allow_and_deny():
    gov = parse([{"paths": ["/eu/**"], "regions": ["eu*", "europe*"]},
                 {"paths": ["/x/**"], "deny_regions": ["us*"]},
                 {"paths": ["/v/**"], "providers": ["eu", "us"], "deny_providers": ["us"]}])
    stores = [EU, US, EU2, AP]
    assert [s.name for s in gov.allowed_stores("/eu/a", stores)] == ["eu", "eu2"]
    assert [s.name for s in gov.allowed_stores("/x/a", stores)] == ["eu", "eu2", "ap"]
    assert [s.name for s in gov.allowed_stores("/v/a", stores)] == ["eu"]
    assert [s.name for s in gov.allowed_stores("/free", stores)] == ["eu", "us", "eu2", "ap"]


def test_violations_copies_regions_encryption():
    gov = parse([{"paths": ["/**"], "min_copies": 2, "distinct_regions": 2, "encryption": True}])
    kinds = sorted(v.kind for v in gov.violations("/f", [US]))
    assert kinds == ["copies", "encryption", "regions"]
    assert gov.violations("/f", [EU, AP]) == []
    assert gov.extra_homes("/f", [EU], [EU, US, EU2, AP]) == ["ap"]


def test_extra_homes_reach_distinct_regions_first():
    gov = parse([{"paths": ["/**"], "min_copies": 3, "distinct_regions": 2}])
    assert gov.extra_homes("/f", [EU], [EU, EU2, US]) == ["eu2", "us"]


def test_config_names_file_section_rule_and_key(tmp_path):
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text('[[governance.rules]]\npaths = ["/a/**"]\nlegal_hold = "yes"\n'
                   '[[governance.rules]]\npaths = ["/b/**"]\nmin_copies = 2\nencryption = 1\n')
    with pytest.raises(ConfigError) as e:
        load_config(str(cfg))
    lines = str(e.value).splitlines()
    assert lines == [f"{cfg}: [[governance.rules]] rule 1: legal_hold: expected true or "
                     "false, got 'yes'",
                     f"{cfg}: [[governance.rules]] rule 2: encryption: expected true or false, "
                     "got 1"]


def test_config_audit_on_with_rules(tmp_path):
    cfg = tmp_path / "omnifs.toml"
    cfg.write_text('[[governance.rules]]\npaths = ["/a/**"]\nretention = "1d"\n'
                   '[governance.audit]\nflush_interval = 0.1\n')
    gov = load_config(str(cfg)).governance
    assert gov.audit and gov.flush_interval == 0.1 and gov.engine.protects
