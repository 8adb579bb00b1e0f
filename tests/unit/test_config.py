"""Config validation: every mistake is one line naming the place and the fix."""

import os

import pytest

from omnifs.config import ConfigError, default_config_text, load_config, parse_config, parse_size


def write(tmp_path, text, mode=0o600):
    p = tmp_path / "omnifs.toml"
    p.write_text(text)
    p.chmod(mode)
    return p


def stores(data_dir):
    """The default config's two store directories, which must exist to load it."""
    for name in ("store-a", "store-b"):
        (data_dir / name).mkdir(parents=True, exist_ok=True)
    return data_dir


def test_default_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, default_config_text(stores(tmp_path / "data"))))
    assert list(cfg.providers) == ["local-a", "local-b"]
    assert cfg.copies == 2 and cfg.write_quorum == 1
    assert cfg.catalog_path() == (tmp_path / "data" / "catalog.db").resolve()


@pytest.mark.parametrize("text, needle", [
    ("[cache]\nsise = 1\n", "did you mean 'size'"),
    ("[nope]\n", "unknown section [nope]"),
    ("[providers.a]\nuri = \"ftp://x/y\"\n", "unknown URI scheme 'ftp'"),
    ("[providers.a]\nendpoint = \"http://x\"\n", "missing uri"),
    ("[providers.a]\nuri = \"s3://ab\"\n", "at least 3 characters"),
    ("[providers.a]\nuri = \"s3://abc\"\ncredentials_file = \"/nonexistent/x.json\"\n",
     "cannot read"),
    ("[cache]\nsize = \"lots\"\n", "is not a size"),
    ("[replication]\ncopies = 0\n", "at least 1"),
    ("[replication]\nwrite_quorum = 3\n", "between 1 and copies"),
    ("[replication]\nconflict = \"coin\"\n", "newest"),
    ("[replication]\ncopies = \"two\"\n", "expected a whole number"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_secrets_in_world_readable_file_refused(tmp_path):
    p = write(tmp_path, '[providers.a]\nuri = "s3://abc"\nsecret_key = "hunter2"\n', mode=0o644)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "chmod 600" in str(e.value)
    assert "hunter2" not in str(e.value)
    p.chmod(0o600)
    assert load_config(p).providers["a"].secret_key == "hunter2"
    assert "hunter2" not in repr(load_config(p).providers["a"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="omnifs init"):
        load_config(tmp_path / "absent.toml")


def test_sizes():
    assert parse_size("20GiB", "x") == 20 * 1024**3
    assert parse_size("512 MiB", "x") == 512 * 1024**2
    assert parse_size("1.5GB", "x") == 1_500_000_000
    assert parse_size(4096, "x") == 4096
    with pytest.raises(ConfigError):
        parse_size("-1GiB", "x")


def test_copies_more_than_providers():
    with pytest.raises(ConfigError, match="only 1 provider"):
        parse_config({"replication": {"copies": 2}, "providers": {"a": {"uri": "file:///tmp/a"}}})


def test_env_config_path(tmp_path, monkeypatch):
    p = write(tmp_path, default_config_text(stores(tmp_path)))
    monkeypatch.setenv("OMNIFS_CONFIG", str(p))
    monkeypatch.chdir(tmp_path.parent)
    assert load_config().path == p
    os.environ.pop("OMNIFS_CONFIG")


def test_provider_specific_options(tmp_path):
    (tmp_path / "x").mkdir()
    cfg = load_config(write(tmp_path, '[providers.a]\nuri = "file://x"\nfsync = false\n'))
    assert cfg.providers["a"].extra["fsync"] is False
    with pytest.raises(ConfigError, match="unknown key 'fsync' for a s3:// provider"):
        load_config(write(tmp_path, '[providers.a]\nuri = "s3://abc"\nfsync = false\n'))


def test_free_space_ratio(tmp_path):
    for d in ("data/store-a", "data/store-b", "x", "y"):
        (tmp_path / d).mkdir(parents=True)
    cfg = load_config(write(tmp_path, default_config_text(tmp_path / "data")))
    assert cfg.free_space_ratio == 0.1  # the default `omnifs init` writes, and the default
    assert cfg.providers["local-a"].extra["free_space_ratio"] == 0.1  # file:// stores too
    cfg = parse_config({"cache": {"free_space_ratio": 0},
                        "providers": {"a": {"uri": f"file://{tmp_path}/x"},
                                      "b": {"uri": f"file://{tmp_path}/y",
                                            "free_space_ratio": 0.3}}})
    assert cfg.free_space_ratio == 0.0
    assert cfg.providers["a"].extra["free_space_ratio"] == 0.0
    assert cfg.providers["b"].extra["free_space_ratio"] == 0.3
    assert parse_config({}).free_space_ratio == 0.1
    for bad in (1.5, -0.1, "10%", True):
        with pytest.raises(ConfigError) as e:
            parse_config({"cache": {"free_space_ratio": bad}})
        assert "free_space_ratio" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"\[providers.b\] free_space_ratio"):
        parse_config({"providers": {"b": {"uri": f"file://{tmp_path}/y",
                                          "free_space_ratio": 2}}})
    with pytest.raises(ConfigError, match="unknown key 'free_space_ratio' for a s3://"):
        parse_config({"providers": {"b": {"uri": "s3://abc", "free_space_ratio": 0.2}}})
