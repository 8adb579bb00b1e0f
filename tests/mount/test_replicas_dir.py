"""``omnifs replicas DIR``: every file under a directory, then how many current copies each has."""

from __future__ import annotations

from tests.mount.conftest import omnifs


def test_replicas_of_a_directory_in_the_mount(mnt):
    (mnt.mp / "d" / "sub").mkdir(parents=True)
    (mnt.mp / "d" / "a.txt").write_text("a")
    (mnt.mp / "d" / "sub" / "b.txt").write_text("b")
    (mnt.mp / "d" / "link").symlink_to("a.txt")
    (mnt.mp / "elsewhere.txt").write_text("c")
    out = omnifs("replicas", str(mnt.mp / "d"), config=mnt.config).stdout.splitlines()
    assert out[0] == "a.txt" and out[1].startswith("  ") and "synced" in out[1]
    assert "sub/b.txt" in out and "elsewhere.txt" not in "\n".join(out)
    assert out[-1] == f"2 files under {mnt.mp / 'd'}: 2 with 1 current copy"
    mnt.replicate()
    out = omnifs("replicas", str(mnt.mp / "d"), config=mnt.config).stdout.splitlines()
    assert out[-1] == f"2 files under {mnt.mp / 'd'}: 2 with 2 current copies"
    # a namespace path answers the same from the catalog, mount or not
    mnt.umount()
    out = omnifs("replicas", "/d/sub", config=mnt.config).stdout.splitlines()
    assert out[0] == "b.txt" and out[-1] == "1 file under /d/sub: 1 with 2 current copies"
    (mnt.mp / "empty").mkdir()
    out = omnifs("replicas", str(mnt.mp / "empty"), config=mnt.config, check=False)
    assert out.returncode == 2 and "neither inside an omnifs mount" in out.stderr
