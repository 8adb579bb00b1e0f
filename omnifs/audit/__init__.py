"""The audit log: every mutation and every denial, append-only and hash-chained.

* ``chain``: records, their hashes, the log's files (current and rotated),
  reading them back, ``verify`` (names the first bad record) and ``export``;
* ``log``: :class:`AuditLog`, the batched writer (a thread, so the mount's
  event loop never waits on the disk) and the one-call writer the CLI uses;
* ``checkpoint``: the HMAC key in the data dir and the signed checkpoints
  written to every store under ``.omnifs/audit/``.
"""

from .chain import AUDIT_KEY_PREFIX, VerifyResult, export, verify
from .log import AuditLog, NullAudit, open_audit

__all__ = ["AUDIT_KEY_PREFIX", "AuditLog", "NullAudit", "VerifyResult", "export", "open_audit",
           "verify"]
