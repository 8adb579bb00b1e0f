"""``omnifs compat`` and its probes against the real local servers.

What each probe finds is what these servers really do: moto refuses a
create-only PUT but stores an upload with a wrong Content-MD5; the GCS
emulator refuses the wrong MD5 but ignores ifGenerationMatch; Azurite refuses
an overwrite but lists no version ids; a local directory has exclusive create
only. The emulators' shortcomings stay apart from the clouds' cells.
"""

from __future__ import annotations

import json

import pytest

from omnifs import compat
from omnifs.providers.capabilities import (
    DEGRADED,
    EMULATOR,
    PROBED,
    SUPPORTED,
    UNSUPPORTED,
)
from omnifs.providers.probe import MAX_REQUESTS, PROBE_PREFIX, probe
from tests.cli import one_line_error, run, write_config

#: kind -> (product, its API version is reported, feature -> status the probe finds)
EXPECTED = {
    "s3": ("moto", False, {"conditional_writes": SUPPORTED, "checksums": DEGRADED,
                           "user_metadata": DEGRADED, "versioning": SUPPORTED}),
    "minio": ("moto", False, {"conditional_writes": SUPPORTED, "checksums": DEGRADED,
                              "user_metadata": DEGRADED, "versioning": SUPPORTED}),
    "gs": ("gcp-storage-emulator", False, {"conditional_writes": UNSUPPORTED,
                                           "checksums": SUPPORTED, "user_metadata": DEGRADED,
                                           "versioning": SUPPORTED, "object_lock": DEGRADED}),
    "az": ("Azurite", True, {"conditional_writes": SUPPORTED, "checksums": SUPPORTED,
                             "user_metadata": DEGRADED, "versioning": DEGRADED,
                             "object_lock": UNSUPPORTED}),
    "file": (None, False, {"conditional_writes": DEGRADED, "checksums": UNSUPPORTED,
                           "user_metadata": SUPPORTED}),
}
ALWAYS = ("range_reads", "copy_same_bucket", "key_limits", "listing")


def test_probes_find_what_the_server_does_and_clean_up(kind, provider):
    product, api_version, found = EXPECTED[kind]
    report = probe(provider)
    assert report.skipped == []
    assert report.product == product
    assert report.emulator == (product is not None)
    assert (report.api_version is not None) == api_version
    assert 0 < report.requests <= MAX_REQUESTS
    got = {f.feature: f.status for f in report.findings}
    assert got == {**dict.fromkeys(ALWAYS, SUPPORTED), **found}
    assert list(provider.list(PROBE_PREFIX)) == []


def test_an_emulators_shortcoming_is_kept_apart_from_the_cloud(make_provider):
    gs = make_provider("gs")
    col = compat.probed("gs", gs, probe(gs))
    cell = col.cells["conditional_writes"]
    assert (cell.status, cell.source) == (SUPPORTED, EMULATOR)
    assert "gcp-storage-emulator here: unsupported" in cell.notes
    assert col.cells["range_reads"].source == PROBED
    assert any(q.feature == "conditional_writes" for q in col.quirks)


def test_emulators_without_retention_locks_say_so_not_the_cloud(make_provider):
    """Azurite implements no immutability policy, the GCS emulator keeps no object hold: the
    cell keeps the cloud's status, the notes say what the emulator did (`gov apply` leaves
    those stores' retention to omnifs, docs/governance.md)."""
    for kind, said in (("az", "Azurite here: unsupported (Set Blob Immutability Policy "
                               "answered: not implemented)"),
                       ("gs", "gcp-storage-emulator here: degraded (an object hold "
                              "(temporaryHold) is accepted but not kept)")):
        p = make_provider(kind)
        cell = compat.probed(kind, p, probe(p)).cells["object_lock"]
        assert (cell.status, cell.source) == (SUPPORTED, EMULATOR)
        assert said in cell.notes
        assert list(p.list(PROBE_PREFIX)) == []


def test_cli_declared_matrix_needs_no_config():
    proc = run("compat", "s3", "gs", "--format", "json", check=True)
    stores = json.loads(proc.stdout)["stores"]
    assert [s["name"] for s in stores] == ["s3", "gs"]
    assert stores[0]["cells"]["checksums"]["source"] == "declared"
    assert run("compat", "az", check=True).stdout.decode().startswith("# Provider compat")


def test_cli_probes_configured_stores(make_settings, tmp_path):
    conf = write_config(tmp_path / "omnifs.toml", [make_settings("az", name="blob"),
                                                   make_settings("file", name="disk")])
    proc = run("compat", "--probe", "--format", "json", config=conf, check=True)
    blob, disk = json.loads(proc.stdout)["stores"]
    assert blob["probe"]["product"] == "Azurite"
    assert blob["cells"]["versioning"]["source"] == EMULATOR
    assert disk["cells"]["range_reads"]["source"] == PROBED
    md = run("compat", "--probe", "blob", config=conf, check=True).stdout.decode()
    assert "Azurite-Blob/" in md and "known differences of Azurite" in md


@pytest.mark.parametrize("args,message", [
    (("compat", "--probe", "s3"), "--probe needs a store"),
    (("compat", "nosuch"), "not a provider, URI or scheme"),
])
def test_cli_bad_input_is_one_line(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in one_line_error(proc)


def test_cli_exit_1_when_a_probe_cannot_run(make_settings, tmp_path):
    settings = make_settings("s3", name="gone")
    settings.uri = "s3://omnifs-no-such-bucket-21"
    conf = write_config(tmp_path / "omnifs.toml", [settings])
    proc = run("compat", "--probe", "gone", config=conf)
    assert proc.returncode == 1
    assert "some probes could not run on gone" in proc.stderr.decode()
    assert "Probes that could not run" in proc.stdout.decode()


def test_cli_shows_abilities_disabled_by_config_with_their_fallback(make_settings, tmp_path):
    conf = write_config(tmp_path / "omnifs.toml", [make_settings("s3", name="ceph")],
                        'disable = ["conditional_writes", "server_side_copy"]\n')
    md = run("compat", "--probe", "ceph", config=conf, check=True).stdout.decode()
    row = next(x for x in md.splitlines() if x.startswith("| conditional writes"))
    assert "no (disabled by config)" in row
    cells = json.loads(run("compat", "ceph", "--format", "json", config=conf,
                           check=True).stdout)["stores"][0]["cells"]
    for feature in ("conditional_writes", "copy_same_bucket", "copy_cross_region"):
        assert (cells[feature]["status"], cells[feature]["source"]) == ("unsupported", "config")
        assert cells[feature]["notes"] == "disabled by config" and cells[feature]["fallback"]
    assert cells["checksums"]["source"] == "declared"  # the rest as the store declares it
    conf.write_text(conf.read_text().replace("conditional_writes", "conditional_write"))
    proc = run("compat", config=conf)
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        f"omnifs: error: {conf}: [providers.ceph] disable: unknown capability 'conditional_write' "
        "(did you mean 'conditional_writes'?)")
