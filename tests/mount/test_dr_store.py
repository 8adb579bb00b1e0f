"""Backups on real stores: dedup counted, encryption, pruning and drills.

The namespace is written through a real mount; backups go to a store of
their own (moto S3 or a directory).
"""

from __future__ import annotations

import hashlib
import json
import os

from omnifs.config import load_config
from omnifs.dr import backup as dr_backup
from omnifs.dr.target import Target
from omnifs.providers import ProviderSettings, open_provider
from omnifs.providers.faulty import FaultyProvider
from tests.chromium import images_loaded

from .conftest import Mounted, toml_table
from .test_dr import omnifs


class Counting(FaultyProvider):
    """Counts the content objects (under data/) written and their bytes."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.data_writes: list[tuple[str, int]] = []

    def write(self, key, stream, size=None, metadata=None, content_type=None, **cond):
        out = super().write(key, stream, size, metadata, content_type, **cond)
        if "/data/" in f"/{key}":
            self.data_writes.append((key, out.size if out.size else size or 0))
        return out


def add_backup(m: Mounted, table: str) -> None:
    with open(m.config, "a") as f:
        f.write(f"\n[[dr.backups]]\nname = \"vault\"\n{table}\n")


def test_second_backup_uploads_only_the_changed_file(make_mount, make_settings):
    m = make_mount()
    vault = make_settings("s3", name="vault")
    add_backup(m, toml_table(vault))
    files = {f"t/{i}.bin": os.urandom(3000 + i) for i in range(20)}
    files["t/same-a"] = files["t/same-b"] = b"identical content\n" * 500
    for name, data in files.items():
        (m.mp / name).parent.mkdir(exist_ok=True)
        (m.mp / name).write_bytes(data)
    cfg = load_config(m.config)
    providers = {n: m.provider(n) for n in m.names}
    counting = Counting(open_provider(vault))
    target = Target(counting, "")
    first = dr_backup.run(cfg.catalog_target(), providers, target, name="vault", paths=["/"])
    assert first.files == 22 and first.objects_new == 21  # the two identical files: once
    assert len(counting.data_writes) == 21
    assert first.bytes_new == sum(len(d) for n, d in files.items() if n != "t/same-b")

    counting.data_writes.clear()
    changed = os.urandom(4321)
    (m.mp / "t/7.bin").write_bytes(changed)
    second = dr_backup.run(cfg.catalog_target(), providers, target, name="vault", paths=["/"])
    assert len(counting.data_writes) == 1 and counting.data_writes[0][1] == len(changed)
    assert second.bytes_new == len(changed) and second.objects_new == 1
    assert second.bytes_total == first.bytes_total - len(files["t/7.bin"]) + len(changed)
    counting.close()
    out = omnifs("dr", "list", config=m.config).stdout
    assert first.id in out and second.id in out and "4.2 KiB" in out, out


def test_encrypted_backup_and_a_missing_key(make_mount, make_settings, tmp_path):
    m = make_mount()
    vault = make_settings("s3", name="vault")
    key = tmp_path / "dr.key"
    omnifs("dr", "keygen", str(key))
    add_backup(m, toml_table(vault) + f'\nkey_file = "{key}"')
    secret = b"the plans for next year\n" * 100
    (m.mp / "plans.txt").write_bytes(secret)
    omnifs("dr", "backup", "--now", config=m.config)
    store = open_provider(vault)
    sha = hashlib.sha256(secret).hexdigest()
    keys = [i.key for i in store.list("")]
    assert not any(sha in k for k in keys)  # names are HMACs, not the content's hash
    for k in keys:
        body = store.read_bytes(k)
        assert b"plans for next year" not in body and b"plans.txt" not in body
    store.close()
    out = omnifs("dr", "restore", "--at", "latest", "--to", str(tmp_path / "r"),
                 config=m.config).stdout
    assert (tmp_path / "r/plans.txt").read_bytes() == secret, out

    key.rename(tmp_path / "elsewhere")
    for args in (["dr", "list"], ["dr", "backup", "--now"],
                 ["dr", "restore", "--at", "latest", "--to", str(tmp_path / "r2")]):
        proc = omnifs(*args, config=m.config, check=False)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and "\n" not in err and "Traceback" not in err, err
        assert "backup key file" in err and "does not exist" in err, err


def test_prune_keeps_the_right_backups_and_their_content(make_mount, tmp_path):
    m = make_mount()
    vault = tmp_path / "vault"
    vault.mkdir()
    add_backup(m, f'uri = "file://{vault}"\nkeep_last = 1\ndaily = 2')
    cfg = load_config(m.config)
    providers = {n: m.provider(n) for n in m.names}
    target = Target(open_provider(cfg.dr.backups[0].settings), "")
    day = 86400.0
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % day + 3600
    # four backups: day 0 (two), day 1, day 2; each with a file of its own
    ids, contents = [], []
    for at in (t0, t0 + 7200, t0 + day, t0 + 2 * day):
        contents.append(os.urandom(2000))
        (m.mp / "f").write_bytes(contents[-1])
        ids.append(dr_backup.run(cfg.catalog_target(), providers, target, name="vault",
                                 paths=["/"], clock=lambda at=at: at).id)
    out = omnifs("dr", "prune", config=m.config).stdout
    assert "kept 2 backups, forgot 2" in out and "deleted 2 objects" in out, out
    assert [b.id for b in target.backups()] == ids[2:]
    have = target.stored_ids()
    for i, data in enumerate(contents):
        assert (hashlib.sha256(data).hexdigest() in have) == (i >= 2)
    for bid, data in zip(ids[2:], contents[2:], strict=True):
        dest = tmp_path / bid
        omnifs("dr", "restore", "--at", bid, "--to", str(dest), config=m.config)
        assert (dest / "f").read_bytes() == data
    target.provider.close()
    # into a fresh store: objects carrying what omnifs import needs
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    out = omnifs("dr", "restore", "--at", ids[2], "--path", "/f", "--to",
                 f"file://{fresh}/restored", config=m.config).stdout
    assert "restored 1 files" in out, out
    store = open_provider(ProviderSettings(name="fresh", uri=f"file://{fresh}"))
    assert store.read_bytes("restored/f") == contents[2]
    assert store.head("restored/f").sha256 == hashlib.sha256(contents[2]).hexdigest()
    store.close()


def test_a_drill_passes_then_fails_loudly_on_a_corrupted_object(make_mount, tmp_path):
    m = make_mount()
    vault = tmp_path / "vault"
    vault.mkdir()
    add_backup(m, f'uri = "file://{vault}"')
    with open(m.config, "a") as f:
        f.write('\n[dr]\nrto = "1h"\n')
    for i in range(10):
        (m.mp / f"f{i}").write_bytes(os.urandom(10000))
    omnifs("dr", "backup", "--now", config=m.config)
    html = tmp_path / "drill.html"
    out = omnifs("dr", "drill", "--report", str(html), config=m.config).stdout
    assert "drill passed: restored 10 files" in out and "RTO" in out, out
    assert images_loaded(html, tmp_path) == (1, 1)
    out = omnifs("dr", "drill", "--sample", "20%", "--report", str(tmp_path / "d.json"),
                 config=m.config).stdout
    assert "restored 2 files" in out, out
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["kind"] == "dr-drill"

    victim = next(p for p in (vault / "data").rglob("*") if p.is_file())
    body = bytearray(victim.read_bytes())
    body[100] ^= 0xFF
    victim.write_bytes(bytes(body))
    proc = omnifs("dr", "drill", "--report", str(tmp_path / "bad.md"), config=m.config,
                  check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DRILL FAILED: 1 of 10 files" in proc.stdout, proc.stdout
    assert "does not match its SHA-256" in proc.stderr, proc.stderr
    assert "FAILED" in (tmp_path / "bad.md").read_text()
    status = omnifs("status", config=m.config, check=False).stdout
    assert "last drill" in status and "FAILED" in status, status
