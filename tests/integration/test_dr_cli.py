"""``omnifs dr`` mistakes and failures reach the user as one line with the right exit status."""

from __future__ import annotations

from tests.cli import one_line_error, run, write_config


def test_dr_mistakes_are_one_line(make_settings, tmp_path):
    live = make_settings("file", name="live")
    bare = write_config(tmp_path / "bare.toml", [live])
    proc = run("dr", "backup", "--now", config=bare)
    assert proc.returncode == 2 and "no [[dr.backups]]" in one_line_error(proc)

    vault = tmp_path / "vault"
    vault.mkdir()
    cfg = write_config(tmp_path / "omnifs.toml", [live],
                       f'\n[[dr.backups]]\nname = "vault"\nuri = "file://{vault}"\n')
    proc = run("dr", "restore", "--at", "latest", "--to", str(tmp_path / "r"), config=cfg)
    assert proc.returncode == 2 and "holds none yet" in one_line_error(proc)
    proc = run("dr", "restore", "--at", "someday", "--to", str(tmp_path / "r"), config=cfg)
    assert proc.returncode == 2 and "not a time" in one_line_error(proc)
    proc = run("dr", "list", "--target", "nope", config=cfg)
    assert proc.returncode == 2 and "no [[dr.backups]] named 'nope'" in one_line_error(proc)
    proc = run("dr", "drill", "--sample", "0%", config=cfg)
    assert proc.returncode == 2 and "--sample" in one_line_error(proc)

    shared = write_config(tmp_path / "shared.toml", [live],
                          '\n[[dr.backups]]\ntarget = "live"\n')
    proc = run("dr", "list", config=shared)
    assert proc.returncode == 2 and "give it a separate prefix" in one_line_error(proc)
