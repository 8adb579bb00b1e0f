"""The virtual extended attribute every file on the mount shows: its replicas.

Kept apart from the FUSE handlers so that ``omnifs replicas`` reads a
catalog without loading pyfuse3.
"""

from __future__ import annotations

from omnifs.catalog import Catalog, Inode

#: the read-only virtual xattr listing a file's replicas
XATTR_REPLICAS = b"user.omnifs.replicas"


def format_replicas(cat: Catalog, inode: Inode) -> str:
    """One line per replica: provider, state, version (and 'current' when it matches)."""
    lines = []
    for r in sorted(cat.replicas.of(inode.id), key=lambda r: r.provider):
        current = "current" if r.version == inode.version else "old"
        lines.append(f"{r.provider} {r.state} v{r.version} {current} {r.key}")
    return "\n".join(lines) + ("\n" if lines else "")
