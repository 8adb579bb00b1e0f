"""Config mistakes about places: two providers on one place, a missing store, relative paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omnifs.config import ConfigError, load_config, parse_config
from tests.cli import one_line_error, run

AZ = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;" \
     "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"


def providers(**tables) -> dict:
    return {"replication": {"copies": 1}, "providers": tables}


@pytest.mark.parametrize("a, b", [
    ({"uri": "s3://bucket/data"}, {"uri": "s3://bucket/data"}),
    ({"uri": "s3://bucket"}, {"uri": "s3://bucket/data"}),
    ({"uri": "s3://bucket/data", "endpoint": "http://127.0.0.1:9000"},
     {"uri": "minio://bucket/data/x", "endpoint": "http://127.0.0.1:9000/"}),
    ({"uri": "gs://bucket/a/b"}, {"uri": "gs://bucket/a"}),
    ({"uri": "az://cont/p", "connection_string": AZ},
     {"uri": "az://cont/p/q", "account_url": "http://127.0.0.1:10000/devstoreaccount1"}),
])
def test_two_providers_on_one_place_are_refused(a, b):
    with pytest.raises(ConfigError) as e:
        parse_config(providers(one=a, two=b), "omnifs.toml")
    text = str(e.value)
    assert "[providers.two] and [providers.one]" in text and "\n" not in text
    assert "one copy" in text


@pytest.mark.parametrize("a, b", [
    ({"uri": "s3://bucket/data"}, {"uri": "s3://bucket/data2"}),  # siblings, not nested
    ({"uri": "s3://bucket/data"}, {"uri": "s3://other/data"}),
    ({"uri": "s3://bucket/data", "endpoint": "http://a:9000"},
     {"uri": "s3://bucket/data", "endpoint": "http://b:9000"}),
    ({"uri": "s3://bucket/data"}, {"uri": "gs://bucket/data"}),
    ({"uri": "az://cont/p", "account_url": "http://127.0.0.1:10000/one"},
     {"uri": "az://cont/p", "account_url": "http://127.0.0.1:10000/two"}),
])
def test_distinct_places_are_fine(a, b):
    assert list(parse_config(providers(one=a, two=b)).providers) == ["one", "two"]


def test_file_stores_compared_after_symlinks(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    for other in ("alias", "alias/sub", "real/sub"):
        with pytest.raises(ConfigError, match=r"\[providers.b\] and \[providers.a\]"):
            parse_config(providers(a={"uri": f"file://{tmp_path}/real"},
                                   b={"uri": f"file://{tmp_path}/{other}"}))
    (tmp_path / "real2").mkdir()
    parse_config(providers(a={"uri": f"file://{tmp_path}/real"},
                           b={"uri": f"file://{tmp_path}/real2"}))


def test_a_store_over_the_cache_or_catalog_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="share a directory"):
        parse_config({"cache": {"dir": str(tmp_path / "data" / "cache")},
                      "providers": {"a": {"uri": f"file://{tmp_path}/data"}}})
    with pytest.raises(ConfigError, match="the catalog"):
        parse_config({"catalog": {"url": f"sqlite:///{tmp_path}/s/catalog.db"},
                      "cache": {"dir": str(tmp_path / "cache")},
                      "providers": {"a": {"uri": f"file://{tmp_path}/s"}}})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc"
    (conf_dir / "stores" / "a").mkdir(parents=True)
    (conf_dir / "stores" / "b").mkdir(parents=True)
    cfg_path = write(conf_dir / "omnifs.toml", '[catalog]\nurl = "sqlite:///data/catalog.db"\n'
                     '[cache]\ndir = "cache"\n[providers.a]\nuri = "file://stores/a"\n'
                     '[providers.b]\nuri = "file://./stores/b"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path("..") / "etc" / "omnifs.toml")
    assert cfg.catalog_path() == conf_dir / "data" / "catalog.db"
    assert cfg.cache_dir == conf_dir / "cache"
    assert cfg.providers["a"].uri == f"file://{conf_dir}/stores/a"
    assert cfg.providers["b"].uri == f"file://{conf_dir}/stores/b"
    # defaults too: a config without [catalog] or [cache] keeps them beside itself
    write(cfg_path, '[providers.a]\nuri = "file://stores/a"\n')
    cfg = load_config(cfg_path)
    assert cfg.catalog_path() == conf_dir / ".omnifs-data" / "catalog.db"
    assert cfg.cache_dir == conf_dir / ".omnifs-data" / "cache"
    assert not (elsewhere / ".omnifs-data").exists()


def test_missing_store_directory_is_refused_in_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    cfg = write(tmp_path / "omnifs.toml", f'[providers.a]\nuri = "file://{tmp_path}/a"\n'
                f'[providers.b]\nuri = "file://{tmp_path}/typo"\n')
    for args in (("status",), ("mount", str(tmp_path)), ("daemon",)):
        proc = run(*args, config=cfg, timeout=60)
        err = one_line_error(proc)
        assert proc.returncode == 2
        assert f"[providers.b] uri: {tmp_path}/typo does not exist" in err, err


def test_same_directory_twice_is_refused_by_the_cli(tmp_path):
    (tmp_path / "a").mkdir()
    cfg = write(tmp_path / "omnifs.toml", f'[providers.a]\nuri = "file://{tmp_path}/a"\n'
                f'[providers.b]\nuri = "file://{tmp_path}/a/"\n')
    proc = run("mount", str(tmp_path), config=cfg, timeout=60)
    assert proc.returncode == 2 and "are the same place" in one_line_error(proc)


def test_read_only_commands_make_no_catalog(tmp_path):
    (tmp_path / "a").mkdir()
    cfg = write(tmp_path / "omnifs.toml",
                f'[catalog]\nurl = "sqlite:///{tmp_path}/data/catalog.db"\n'
                f'[cache]\ndir = "{tmp_path}/cache"\n[providers.a]\nuri = "file://{tmp_path}/a"\n')
    for args in (("status",), ("status", "--json"), ("replicas", "/x"), ("replicate", "--now")):
        proc = run(*args, config=cfg, timeout=60)
        err = one_line_error(proc)
        assert proc.returncode == 1, args
        assert f"no catalog yet at {tmp_path}/data/catalog.db" in err and "omnifs mount" in err
    proc = run("cache", "stats", config=cfg, timeout=60)
    assert proc.returncode == 1 and "no cache yet" in one_line_error(proc)
    proc = run("cache", "clear", config=cfg, timeout=60)
    assert proc.returncode == 0 and b"nothing to clear" in proc.stdout
    assert sorted(os.listdir(tmp_path)) == ["a", "omnifs.toml"]
