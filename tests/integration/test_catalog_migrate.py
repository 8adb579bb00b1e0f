"""``omnifs catalog migrate``: a SQLite catalog moved to PostgreSQL and back, verified."""

from __future__ import annotations

import stat

from omnifs.catalog import ROOT_INODE, Catalog
from omnifs.catalog.engine_copy import counts, tree_checksum
from omnifs.cli import main
from omnifs.work import Replicate, enqueue

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


def fill(cat: Catalog) -> None:
    """A tree with what a real one holds: dirs, files, a hard link, xattrs, symlinks,
    replicas, history, queued work, and a child whose parent has the larger id."""
    moved = cat.ns.create(ROOT_INODE, "early", DIR, 0, 0)
    for d in range(3):
        parent = cat.ns.create(ROOT_INODE, f"d{d}", DIR, 1000, 1000)
        for i in range(40):
            f = cat.ns.create(parent.id, f"f{i}.txt", FILE, 1000, 1000, size=i,
                              sha256=f"{i:064x}", version=1)
            cat.replicas.set(f.id, "one", f"d{d}/f{i}.txt", 1, "synced", "etag")
            cat.replicas.set(f.id, "two", f"d{d}/f{i}.txt", 1, "pending")
            cat.replicas.add_version(f.id, 1, f"{i:064x}", i, f.mtime_ns)
            enqueue(cat.work, Replicate(inode=f.id, provider="two"))
    late = cat.ns.create(ROOT_INODE, "late", DIR, 0, 0)
    cat.ns.move_entry(moved.id, late.id, "early")
    f0 = cat.ns.resolve("d0/f0.txt")
    cat.ns.add_link(f0.id, late.id, "hard")
    cat.ns.set_xattr(f0.id, b"user.tag", b"\x00\xffbinary")
    cat.ns.create(ROOT_INODE, "ln", stat.S_IFLNK | 0o777, 0, 0, target="d0/f1.txt")
    cat.set_meta("imported", "1")


def test_sqlite_to_postgresql_and_back_verified(postgres, tmp_path, capsys):
    src_path = tmp_path / "catalog.db"
    src = Catalog(src_path)
    fill(src)
    want_counts, want_sum = counts(src), tree_checksum(src)
    cid = src.catalog_id()
    src.close()
    url = postgres.database("migrate")
    assert main(["catalog", "migrate", "--from", f"sqlite:///{src_path}", "--to", url]) == 0
    assert "tree checksum" in capsys.readouterr().err
    pg = Catalog(url)
    assert counts(pg) == want_counts and tree_checksum(pg) == want_sum
    assert pg.catalog_id() == cid and pg.ns.resolve("late/early").kind == "dir"
    assert pg.ns.get_xattr(pg.ns.resolve("d0/f0.txt").id, b"user.tag") == b"\x00\xffbinary"
    assert len(pg.work.claim("w", limit=1000)) == 120
    # the id sequences moved past the copied ids: a new file gets a new inode number
    fresh = pg.ns.create(ROOT_INODE, "new", FILE, 0, 0)
    assert fresh.id > max(i.id for i in pg.ns.children(ROOT_INODE) if i.name != "new")
    pg.close()

    # a non-empty destination is refused in one line, unless --force
    assert main(["catalog", "migrate", "--from", f"sqlite:///{src_path}", "--to", url]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a catalog" in err and "--force" in err and "\n" not in err

    # and back to SQLite
    back = tmp_path / "back.db"
    assert main(["catalog", "migrate", "--from", url, "--to", f"sqlite:///{back}"]) == 0
    again = Catalog(back)
    assert again.ns.resolve("new").kind == "file"
    assert again.ns.count_inodes() == want_counts["inodes"] + 1
    again.close()


def test_bad_places_are_one_line_errors(tmp_path, capsys):
    assert main(["catalog", "migrate", "--from", "mysql://x", "--to",
                 f"sqlite:///{tmp_path}/b.db"]) == 2
    assert "--from: sqlite:///PATH or postgresql://" in capsys.readouterr().err
    assert main(["catalog", "migrate", "--from", f"sqlite:///{tmp_path}/none.db", "--to",
                 f"sqlite:///{tmp_path}/b.db"]) == 1
    assert "no catalog yet" in capsys.readouterr().err
    assert main(["catalog", "migrate", "--from", f"sqlite:///{tmp_path}/b.db", "--to",
                 "postgresql://nobody:secret@127.0.0.1:1/db"]) != 0
    err = capsys.readouterr().err
    assert "secret" not in err and len(err.strip().splitlines()) == 1
