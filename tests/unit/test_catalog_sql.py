"""No SQL outside the catalog package: every query is a named method of a catalog part.

The catalog (``omnifs/catalog/``) is the one API to the database; a
PostgreSQL catalog must be able to replace exactly it. So the code outside it
(the core, the mount, the daemon, providers, policy, the benchmarks) holds no
SQL text, runs no ``.execute`` and opens no ``sqlite3`` connection. Tests are
not scanned: they prepare broken or locked databases on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the code that must not hold SQL (relative to the repository root)
SCANNED = ("omnifs", "mountfs", "daemon", "providers", "policy", "bench", "scripts")
#: the catalog package, where SQL belongs
CATALOG = ROOT / "omnifs" / "catalog"

#: reviewed exceptions: path -> why it is no catalog SQL
ALLOWED = {
    "omnifs/blockcache.py": "queries diskcache's own Cache table through its _sql hook",
    "providers/diskspace.py": "recognises SQLite's 'disk is full' error to answer ENOSPC; "
                              "providers may not import the catalog",
}

#: statements as they start in a string literal (upper case: prose rarely shouts)
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|"
                 r"DELETE\s+FROM|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)|ALTER\s+TABLE|DROP\s+TABLE|"
                 r"PRAGMA\s+\w+|BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)|VACUUM\s+INTO)\b")
EXECUTE = {"execute", "executemany", "executescript"}


def findings(source: str) -> list[str]:
    """What in ``source`` is SQL or runs it, one line each."""
    out = []
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                    ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings and SQL.search(node.value)):
            out.append(f"{node.lineno}: SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values
                           if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL.search(text):
                out.append(f"{node.lineno}: SQL text {text[:60]!r}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in EXECUTE):
            out.append(f"{node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
            out.append(f"{node.lineno}: import sqlite3")
        elif isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            out.append(f"{node.lineno}: from sqlite3 import ...")
    return out


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if CATALOG in path.parents:
                continue
            files.append(path)
    return files


def test_no_sql_outside_the_catalog():
    found = {}
    for path in scanned_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED:
            continue
        hits = findings(path.read_text())
        if hits:
            found[rel] = hits
    assert not found, ("SQL outside omnifs/catalog/ (make it a method of a catalog part): "
                       f"{found}")


def test_the_scan_sees_sql_and_leaves_prose_alone():
    assert sorted(findings('db.execute("SELECT x FROM t")')) == [
        "1: .execute(...)", "1: SQL text 'SELECT x FROM t'"]
    assert findings('q = f"UPDATE work SET state = {s!r} WHERE id = ?"')
    assert findings('q = "DELETE FROM replicas WHERE inode = ?"')
    assert findings("import sqlite3")
    assert findings('"""SELECT names FROM the catalog: a docstring."""') == []
    assert findings('log.info("select a replica from the list")') == []
    assert len(scanned_files()) > 50  # the scan reaches the code it guards


def test_the_allowed_files_exist():
    for rel in ALLOWED:
        assert (ROOT / rel).is_file(), f"{rel} is gone: drop it from ALLOWED"
