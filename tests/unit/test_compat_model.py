"""The compatibility model: declared cells, overlays of probe findings, rendering."""

from __future__ import annotations

import dataclasses
import json

import pytest

from omnifs import compat, fallbacks
from omnifs.config import load_config
from omnifs.errors import ConfigError
from omnifs.providers import SCHEMES, ProviderSettings
from omnifs.providers.capabilities import (
    CONFIG,
    DECLARED,
    DEGRADED,
    EMULATOR,
    FEATURE_IDS,
    PROBED,
    QUIRKS,
    SUPPORTED,
    UNSUPPORTED,
    Cell,
    CompatTable,
    Finding,
    disabled_features,
    forced_off,
    overlay,
    server_product,
    yes,
)
from omnifs.providers.probe import ProbeReport
from omnifs.providers.registry import open_provider, provider_class


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_store_declares_every_feature(scheme):
    table = provider_class(scheme).compat
    assert table is not None
    assert [f for f, _ in table] == list(FEATURE_IDS)
    for _, cell in table:
        assert cell.source == DECLARED
        assert cell.status == SUPPORTED or cell.fallback, "a lacking cell names its fallback"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_declared_cells_agree_with_runtime_capabilities(scheme):
    cls = provider_class(scheme)
    caps, table = cls.capabilities, cls.compat
    assert (table.cell("copy_same_bucket").status == SUPPORTED) == caps.server_side_copy
    assert (table.cell("storage_classes").status != UNSUPPORTED) == bool(caps.tiers)
    assert dict(table.cell("key_limits").limits)["max_key_bytes"] == caps.max_key_bytes
    assert dict(table.cell("user_metadata").limits)["max_bytes"] == caps.max_metadata_bytes
    for algo in caps.native_checksums:
        assert algo in table.cell("checksums").notes
    assert (table.cell("checksums").status == UNSUPPORTED) == (not caps.native_checksums)
    assert (table.cell("conditional_writes").status != UNSUPPORTED) == caps.conditional_writes


def test_a_table_missing_a_feature_is_refused():
    with pytest.raises(ValueError, match="missing"):
        CompatTable("x", {"range_reads": yes()})
    with pytest.raises(ValueError, match="bad cell"):
        Cell("maybe")


def test_a_probe_confirming_a_cell_marks_it_probed():
    cell = overlay(yes("doc"), Finding("range_reads", SUPPORTED, "read back"), None)
    assert (cell.status, cell.source, cell.notes) == (SUPPORTED, PROBED, "doc; read back")


def test_an_emulator_lacking_a_feature_does_not_change_the_clouds_cell():
    cell = overlay(yes("ifGenerationMatch"),
                   Finding("conditional_writes", UNSUPPORTED, "overwrote"),
                   "gcp-storage-emulator")
    assert (cell.status, cell.source) == (SUPPORTED, EMULATOR)
    assert "gcp-storage-emulator here: unsupported (overwrote)" in cell.notes


def test_a_real_store_lacking_a_feature_changes_the_cell_and_names_the_fallback():
    cell = overlay(yes(), Finding("conditional_writes", UNSUPPORTED, "overwrote"), None)
    assert (cell.status, cell.source) == (UNSUPPORTED, PROBED)
    assert "catalog" in cell.fallback


def test_server_headers_name_the_product():
    assert server_product("s3", "Werkzeug/3.1.9 Python/3.11.7") == ("moto", True)
    assert server_product("az", "Azurite-Blob/3.37.0") == ("Azurite", True)
    assert server_product("gs", "BaseHTTP/0.6 Python/3.11.7") == ("gcp-storage-emulator", True)
    assert server_product("s3", "AmazonS3") == ("Amazon S3", False)
    assert server_product("az", "Werkzeug/3.1.9") == (None, False)
    assert server_product("s3", None) == (None, False)


def test_quirks_name_known_features_and_say_what_to_do():
    for q in QUIRKS:
        assert q.feature in FEATURE_IDS or q.feature in ("credentials", "api_version")
        assert q.behaviour and q.workaround and q.versions


def _columns():
    probe = ProbeReport(server="Azurite-Blob/3.37.0", api_version="2026-06-06",
                        product="Azurite", emulator=True, requests=20,
                        findings=[Finding("versioning", DEGRADED, "no version ids")])
    col = compat.declared("az", "az")
    col.cells["versioning"] = overlay(col.cells["versioning"], probe.findings[0], "Azurite")
    col.probe = probe
    col.quirks = tuple(q for q in QUIRKS if q.store == "Azurite")
    return [col, compat.declared("file", "file")]


def test_markdown_has_a_row_per_feature_and_a_column_per_store():
    text = compat.render_matrix(_columns(), "md")
    assert "| feature | az | file |" in text
    assert "| object versioning | yes (emulator) | no (declared) |" in text
    assert "Azurite-Blob/3.37.0; Azurite (emulator); API version 2026-06-06" in text
    assert "max\\_part\\_bytes=3.9 GiB" in text
    assert "known differences of Azurite" in text
    assert text == compat.render_matrix(_columns(), "md")  # deterministic


def test_json_keeps_every_cell_and_the_limits_as_numbers():
    data = json.loads(compat.render_matrix(_columns(), "json"))
    az, local = data["stores"]
    assert list(az["cells"]) == sorted(FEATURE_IDS)
    assert az["cells"]["multipart"]["limits"]["max_parts"] == 50000
    assert az["cells"]["versioning"]["source"] == EMULATOR
    assert az["probe"]["api_version"] == "2026-06-06"
    assert local["probe"] is None and local["sdks"] == []
    assert az["sdks"][0].startswith("azure-storage-blob ")


def test_forced_off_changes_one_provider_only(tmp_path):
    p = open_provider(ProviderSettings(name="f", uri=f"file://{tmp_path}"))
    other = open_provider(ProviderSettings(name="g", uri=f"file://{tmp_path}"))
    forced_off(p, "server_side_copy", "checksums", "tiers")
    assert not p.capabilities.server_side_copy
    assert other.capabilities.server_side_copy
    with pytest.raises(ValueError, match="cannot force off"):
        forced_off(p, "versioning")


def _config(tmp_path, disable) -> str:
    (tmp_path / "store").mkdir()
    text = (f'[catalog]\nurl = "sqlite:///{tmp_path}/c.db"\n[providers.disk]\n'
            f'uri = "file://{tmp_path}/store"\ndisable = {json.dumps(disable)}\n')
    (tmp_path / "omnifs.toml").write_text(text)
    return str(tmp_path / "omnifs.toml")


def test_disable_in_config_turns_abilities_off_for_every_feature(tmp_path):
    cfg = load_config(_config(tmp_path, ["conditional_writes", "server_side_copy"]))
    p = open_provider(cfg.providers["disk"])
    plain = open_provider(ProviderSettings(name="disk", uri=cfg.providers["disk"].uri))
    assert plain.capabilities.conditional_writes and plain.capabilities.server_side_copy
    assert p.capabilities == dataclasses.replace(  # the rest as the store has it
        plain.capabilities, conditional_writes=False, server_side_copy=False)
    assert fallbacks.write_check(p, True, None).compare_first
    assert not fallbacks.copies_in_store(p)
    col = compat.declared("disk", "file", ("conditional_writes", "server_side_copy"))
    cell = col.cells["conditional_writes"]
    assert (cell.status, cell.source, cell.notes) == (UNSUPPORTED, CONFIG, "disabled by config")
    assert cell.fallback.startswith("the catalog-side check")
    assert all(col.cells[f].source == CONFIG for f in disabled_features(["server_side_copy"]))
    text = compat.render_matrix([col], "md")
    assert "| conditional writes (If-None-Match / If-Match / generation) | " \
           "no (disabled by config) |" in text
    assert json.loads(compat.render_matrix([col], "json"))["stores"][0]["cells"][
        "copy_same_bucket"]["source"] == "config"


@pytest.mark.parametrize("value, message", [
    (["conditional_write"], "[providers.disk] disable: unknown capability "
                            "'conditional_write' (did you mean 'conditional_writes'?)"),
    (["versioning"], "unknown capability 'versioning' (known: server_side_copy, "),
    ("tiers", "[providers.disk] disable: expected a list, got str 'tiers'"),
    ([1], "disable: expected a list of names"),
])
def test_a_bad_disable_is_one_line_naming_file_section_and_key(tmp_path, value, message):
    path = _config(tmp_path, value)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: [providers.disk]")
    assert message in str(e.value) and "\n" not in str(e.value)
