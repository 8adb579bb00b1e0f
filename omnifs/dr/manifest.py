"""A backup's manifest: the tree as it was, with every file's SHA-256.

Built from a consistent copy of the catalog (omnifs/catalog/portable.py), so
it carries what only the catalog knows: modes, owners, symlinks, hard links
(one entry per inode, its other names in ``links``), special files, xattrs,
sizes and times. JSON, gzip-compressed (and encrypted with the target's key)::

    {"format": "omnifs-dr-manifest", "version": 1, "id": "20261207T023000.000000Z",
     "at": 1796610600.0, "backup": "offsite", "paths": ["/"], "host": "...",
     "files": 3, "bytes_total": 123, "bytes_new": 45,
     "entries": [{"path": "/a", "kind": "dir", "mode": 16877, "uid": 0, "gid": 0,
                  "mtime_ns": ..., "atime_ns": ..., "size": 0}, ...]}

A file entry adds ``sha256``, ``size``, ``links`` and the replicas it was read
from (``sources``: [provider, key], not restored); a symlink ``target``; a
device ``rdev``; any entry ``xattrs`` ({base64 name: base64 value}).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from omnifs.catalog import ROOT_INODE, Catalog, Inode
from omnifs.errors import IntegrityError, NotFound

FORMAT = "omnifs-dr-manifest"
VERSION = 1


@dataclass
class Entry:
    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    atime_ns: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None
    rdev: int = 0
    links: list[str] = field(default_factory=list)
    xattrs: dict[str, str] = field(default_factory=dict)
    #: (provider, key) replicas of the current version, where the backup reads the bytes
    sources: list[tuple[str, str]] = field(default_factory=list)
    #: the catalog's inode id (groups hard links; not restored)
    ino: int = 0

    def as_dict(self) -> dict:
        d = {"path": self.path, "kind": self.kind, "mode": self.mode, "uid": self.uid,
             "gid": self.gid, "mtime_ns": self.mtime_ns, "atime_ns": self.atime_ns,
             "size": self.size}
        for k in ("sha256", "target"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.rdev:
            d["rdev"] = self.rdev
        if self.links:
            d["links"] = self.links
        if self.xattrs:
            d["xattrs"] = self.xattrs
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Entry:
        return cls(d["path"], d["kind"], d["mode"], d["uid"], d["gid"], d["mtime_ns"],
                   d.get("atime_ns", d["mtime_ns"]), d.get("size", 0), d.get("sha256"),
                   d.get("target"), d.get("rdev", 0), list(d.get("links", [])),
                   dict(d.get("xattrs", {})))

    def xattr_items(self) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self.xattrs.items():
            yield base64.b64decode(k), base64.b64decode(v)


@dataclass
class Manifest:
    id: str
    at: float
    backup: str
    paths: list[str]
    host: str
    entries: list[Entry]
    bytes_new: int = 0

    @property
    def files(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "file"]

    @property
    def bytes_total(self) -> int:
        return sum(e.size for e in self.files)

    def encode(self) -> bytes:
        doc = {"format": FORMAT, "version": VERSION, "id": self.id, "at": self.at,
               "backup": self.backup, "paths": self.paths, "host": self.host,
               "files": len(self.files), "bytes_total": self.bytes_total,
               "bytes_new": self.bytes_new}
        lines = [json.dumps(doc)[:-1] + ', "entries": [']
        lines += [json.dumps(e.as_dict()) + ("," if i < len(self.entries) - 1 else "")
                  for i, e in enumerate(self.entries)]
        lines.append("]}")
        return "\n".join(lines).encode()

    @classmethod
    def decode(cls, data: bytes, what: str) -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError("not a backup manifest")
            if doc.get("version", 0) > VERSION:
                raise IntegrityError(f"{what}: manifest version {doc['version']} is newer than "
                                     "this omnifs knows: upgrade omnifs")
            return cls(doc["id"], float(doc["at"]), doc["backup"], list(doc["paths"]),
                       doc.get("host", ""), [Entry.from_dict(e) for e in doc["entries"]],
                       int(doc.get("bytes_new", 0)))
        except (ValueError, KeyError, TypeError) as e:
            raise IntegrityError(f"{what}: not a readable backup manifest: {e}") from None

    def select(self, path: str) -> list[Entry]:
        """Entries at or under ``path`` ('/': all); a hard link's names outside it dropped."""
        if path == "/":
            return list(self.entries)
        out = []
        for e in self.entries:
            names = [n for n in (e.path, *e.links) if n == path or n.startswith(path + "/")]
            if names:
                out.append(_renamed(e, names))
        return out


def _renamed(e: Entry, names: list[str]) -> Entry:
    copy = Entry.from_dict(e.as_dict())
    copy.path, copy.links, copy.ino = names[0], names[1:], e.ino
    return copy


def walk(cat: Catalog, paths: list[str]) -> list[Entry]:
    """Entries for everything at or under ``paths`` in ``cat``, parents before children.

    Every directory on the way down to a covered path is included too (its
    attributes), so a restore recreates them as they were.
    """
    by_ino: dict[int, Entry] = {}
    order: list[Entry] = []

    def add(inode: Inode, path: str) -> None:
        seen = by_ino.get(inode.id)
        if seen is not None:
            if path != seen.path and path not in seen.links:
                seen.links.append(path)
            return
        e = _entry(cat, inode, path)
        by_ino[inode.id] = e
        order.append(e)

    for root in paths:
        try:
            inode = cat.ns.resolve(root)
        except NotFound:
            continue
        parts = [p for p in root.split("/") if p]
        cur = cat.ns.get(ROOT_INODE)
        assert cur is not None
        add(cur, "/")
        for i in range(len(parts)):
            cur = cat.ns.resolve("/".join(parts[:i + 1]))
            add(cur, "/" + "/".join(parts[:i + 1]))
        if inode.kind != "dir":
            continue
        stack = [(inode.id, "/" + "/".join(parts) if parts else "")]
        while stack:
            d, dpath = stack.pop()
            after = 0
            while batch := cat.ns.entries(d, after=after):
                for offset, name, child in batch:
                    cpath = f"{dpath}/{name}"
                    add(child, cpath)
                    if child.kind == "dir" and child.parent == d:
                        stack.append((child.id, cpath))
                    after = offset
    return order


def _entry(cat: Catalog, inode: Inode, path: str) -> Entry:
    e = Entry(path, inode.kind, inode.mode, inode.uid, inode.gid, inode.mtime_ns,
              inode.atime_ns, inode.size if inode.kind == "file" else 0, ino=inode.id)
    if inode.kind == "file":
        e.sha256 = inode.sha256
        e.sources = [(r.provider, r.key) for r in cat.replicas.of(inode.id)
                     if r.state == "synced" and r.version == inode.version]
    elif inode.kind == "symlink":
        e.target = inode.target
    elif inode.kind in ("chr", "blk"):
        e.rdev = inode.rdev
    for name in cat.ns.list_xattrs(inode.id):
        value = cat.ns.get_xattr(inode.id, name)
        if value is not None:
            e.xattrs[base64.b64encode(name).decode()] = base64.b64encode(value).decode()
    return e
