"""Governance at the mount: the changes a rule refuses, and the audit record of every change.

:class:`MountGuard` is asked by the handlers before a change to an existing
file (write or ``O_TRUNC`` open, truncate, unlink, rename, xattr change,
chmod/chown) and refuses it with EPERM while a WORM ``retention`` or a
``legal_hold`` rule covers the file (docs/governance.md). A new file that
no store may hold is refused earlier with EACCES (``Placer.check``). Both
kinds of denial, and every change the mount makes, become audit records.

Cheap by construction: with no protecting rule nothing is looked up; else
one combined regex of the rules' globs decides for most paths before any
catalog query for the class xattr. Audit records are queued in memory and
written by the audit log's own thread (:mod:`omnifs.audit.log`).
"""

from __future__ import annotations

import errno
import logging
import time
from typing import TYPE_CHECKING

import pyfuse3

from omnifs.audit import open_audit
from omnifs.audit.checkpoint import publisher
from omnifs.catalog import Catalog, Inode
from omnifs.policy.governance import CLASS_XATTR

from .stores import Stores

if TYPE_CHECKING:
    from omnifs.config import Config

log = logging.getLogger(__name__)


class MountGuard:
    def __init__(self, config: Config, catalog: Catalog, stores: Stores):
        self.cat = catalog
        self.gov = config.governance.engine
        self.audit = open_audit(config, "mount",
                                publisher(lambda: [stores[n] for n in stores.order]))
        #: epoch seconds retention is measured against
        self.clock = time.time

    def path(self, ino: int) -> str:
        return "/" + (self.cat.ns.path_of(ino) or "")

    def child(self, parent: int, name: str) -> str:
        base = self.cat.ns.path_of(parent) or ""
        return f"/{base}/{name}" if base else f"/{name}"

    def record(self, op: str, path: str | None, ctx, *, ino: int | None = None, rule: str = "",
               result: str = "ok") -> None:
        """One audit record (``path`` None: looked up from ``ino``)."""
        if not self.audit.enabled:
            return
        if path is None:
            path = self.path(ino) if ino is not None else "?"
        self.audit.record(op, path, uid=getattr(ctx, "uid", None), pid=getattr(ctx, "pid", None),
                          rule=rule, result=result)

    def check(self, op: str, inode: Inode, ctx, path: str | None = None) -> None:
        """Refuse (EPERM, audited) ``op`` on ``inode`` while a protecting rule covers it."""
        gov = self.gov
        if not gov.protects:
            return
        if inode.kind == "dir":
            if op in ("rename", "delete"):
                for fid, sub in self.cat.ns.files_under(inode.id):
                    child = self.cat.ns.get(fid)
                    if child is not None:
                        self.check(op, child, ctx, "/" + sub.strip("/"))
            return
        if path is None:
            path = self.path(inode.id)
        if not gov.may_protect(path):
            return
        xattr = self.cat.ns.get_xattr(inode.id, CLASS_XATTR) if gov.class_protects else None
        denial = gov.check_change(op, path, born_ns=inode.birth_ns, now=self.clock(),
                                  cls=gov.class_of(path, xattr))
        if denial is None:
            return
        log.info("governance: %s %s refused: %s (%s)", op, path, denial.rule.label, denial.reason)
        self.record(op, path, ctx, rule=denial.rule.label, result="denied EPERM")
        raise pyfuse3.FUSEError(errno.EPERM)

    def denied_placement(self, path: str, ctx) -> None:
        """A new file no store may hold: audited here, EACCES from the caller's error."""
        rules = [r.label for r in self.gov.rules_for(path) if r.residency] or ["residency"]
        self.record("create", path, ctx, rule=",".join(rules), result="denied EACCES")

    def close(self) -> None:
        self.audit.close()
