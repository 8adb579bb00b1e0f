"""ls/stat/cat/put/rm through the real CLI, over every provider kind."""

import hashlib
import json
import time

import pytest

from tests import servers as S
from tests.cli import one_line_error, run, write_config


@pytest.fixture
def configured(kind, make_settings, tmp_path):
    settings = make_settings(kind, name="store")
    return write_config(tmp_path / "omnifs.toml", [settings]), settings


def test_put_ls_stat_cat_rm(configured, tmp_path):
    cfg, _ = configured
    src = tmp_path / "hello world ü.txt"
    data = b"hello omnifs\n" * 1000
    src.write_bytes(data)
    run("put", str(src), "store:/dir/", config=cfg, check=True)
    key = "store:/dir/hello world ü.txt"
    ls = run("ls", "-l", "store:/dir/", config=cfg, check=True).stdout.decode()
    assert "hello world ü.txt" in ls and str(len(data)) in ls
    top = run("ls", "store:/", config=cfg, check=True).stdout.decode().split()
    assert top == ["dir/"]
    st = json.loads(run("stat", "--json", key, config=cfg, check=True).stdout)
    assert st["size"] == len(data)
    assert st["sha256"] == hashlib.sha256(data).hexdigest()
    assert abs(st["mtime"] - src.stat().st_mtime) < 1e-3
    assert run("cat", key, config=cfg, check=True).stdout == data
    assert run("cat", "--range", "6-12", key, config=cfg, check=True).stdout == b"omnifs"
    run("rm", key, config=cfg, check=True)
    err = one_line_error(run("stat", key, config=cfg))
    assert "store" in err and "hello world" in err


def test_put_from_stdin_and_rm_recursive(configured):
    cfg, _ = configured
    run("put", "-", "store:/a/b/c.bin", config=cfg, input=b"x" * 10, check=True)
    run("put", "-", "store:/a/d.bin", config=cfg, input=b"y", check=True)
    assert sorted(run("ls", "-r", "store:/a/", config=cfg, check=True).stdout.split()) == [
        b"b/c.bin", b"d.bin"]
    run("rm", "-r", "store:/a", config=cfg, check=True)
    one_line_error(run("ls", "store:/a/", config=cfg))


def test_missing_object_and_missing_bucket(configured):
    cfg, settings = configured
    err = one_line_error(run("cat", "store:/no/such/key", config=cfg))
    assert "no/such/key" in err
    if settings.uri.startswith("file://"):
        return
    bogus = settings.uri.split("://")[0] + "://omnifs-no-such-bucket-x/k"
    proc = run("ls", bogus, config=cfg)
    assert "omnifs-no-such-bucket-x" in one_line_error(proc) or proc.returncode != 0


def test_bare_uri_needs_no_config(servers, tmp_path):
    bucket = S.unique_bucket()
    S.create_bucket("s3", servers["s3"].endpoint, bucket)
    env = {"AWS_ENDPOINT_URL": servers["s3"].endpoint, "AWS_ACCESS_KEY_ID": "t",
           "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(tmp_path)}
    run("put", "-", f"s3://{bucket}/x/y.txt", input=b"bare", env=env, check=True)
    assert run("cat", f"s3://{bucket}/x/y.txt", env=env, check=True).stdout == b"bare"
    env_minio = {"MINIO_ENDPOINT": servers["s3"].endpoint, "MINIO_ACCESS_KEY": "t",
                 "MINIO_SECRET_KEY": "t", "HOME": str(tmp_path)}
    assert run("cat", f"minio://{bucket}/x/y.txt", env=env_minio, check=True).stdout == b"bare"
    local = tmp_path / "f.txt"
    local.write_bytes(b"local")
    assert run("cat", f"file://{local}", check=True).stdout == b"local"


@pytest.mark.parametrize("target", ["ftp://host/x", "nosuchname:/x", "s3://ab/x", "plain-path"])
def test_bad_uris_are_one_line(target, tmp_path):
    proc = run("ls", target, env={"HOME": str(tmp_path)})
    one_line_error(proc)
    assert proc.returncode == 2


@pytest.mark.parametrize("scheme", ["s3", "minio", "gs", "az"])
def test_unreachable_endpoint_fails_within_timeout(scheme, tmp_path):
    port = S.free_port()  # nothing listens there
    settings = S.settings_for(scheme, f"http://127.0.0.1:{port}", "omnifs-nowhere", name="gone")
    settings.timeout = 2.0
    cfg = write_config(tmp_path / "omnifs.toml", [settings])
    started = time.monotonic()
    err = one_line_error(run("ls", "gone:/", config=cfg, timeout=60))
    assert time.monotonic() - started < 30
    assert "gone" in err
    assert "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq" not in err


def test_help_and_version():
    assert run("--version", check=True).stdout.startswith(b"omnifs ")
    for cmd in ("init", "ls", "stat", "cat", "put", "rm"):
        assert b"usage: omnifs " + cmd.encode() in run(cmd, "--help", check=True).stdout


def test_init_writes_working_default(tmp_path):
    cfg = tmp_path / "conf" / "omnifs.toml"
    run("init", "--config", str(cfg), "--data-dir", str(tmp_path / "data"), check=True)
    assert cfg.stat().st_mode & 0o077 == 0
    run("put", "-", "local-a:/k.txt", input=b"round trip", config=cfg, check=True)
    assert run("cat", "local-a:/k.txt", config=cfg, check=True).stdout == b"round trip"
    err = one_line_error(run("init", "--config", str(cfg)))
    assert "--force" in err


def test_put_cp_and_sync_set_a_content_type(make_settings, tmp_path):
    """Every upload of the CLI carries the type guessed from the name (providers/base.py)."""
    s3 = make_settings("s3", name="s3")
    az = make_settings("az", name="az")
    cfg = write_config(tmp_path / "omnifs.toml", [s3, az])
    src = tmp_path / "site"
    (src / "css").mkdir(parents=True)
    (src / "index.html").write_bytes(b"<p>hi</p>")
    (src / "css" / "main.css").write_bytes(b"p { }")
    (src / "blob.no-such-extension").write_bytes(b"?")
    run("put", "-", "s3:/stdin/page.html", input=b"<p>x</p>", config=cfg, check=True)
    run("put", str(src / "index.html"), "s3:/put/latest", config=cfg, check=True)  # source's name
    run("cp", "-r", f"file://{src}", "s3:/cp", config=cfg, check=True)
    run("sync", f"file://{src}", "az:/sync", config=cfg, check=True)
    run("cp", "-r", "s3:/cp", "az:/cp", config=cfg, check=True)  # store to store keeps it

    def ctype(target: str) -> str:
        return json.loads(run("stat", "--json", target, config=cfg, check=True).stdout)[
            "content_type"]

    assert ctype("s3:/stdin/page.html") == "text/html"
    assert ctype("s3:/put/latest") == "text/html"
    for store in ("s3:/cp", "az:/sync", "az:/cp"):
        assert ctype(f"{store}/index.html") == "text/html", store
        assert ctype(f"{store}/css/main.css") == "text/css", store
        assert ctype(f"{store}/blob.no-such-extension") == "application/octet-stream", store
