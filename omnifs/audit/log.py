"""The audit log's writer: batched, off the caller's thread, appended under a file lock.

:meth:`AuditLog.record` only appends a tuple to a queue, so a FUSE handler
pays well under a microsecond; a writer thread turns the queue into sealed
records every ``flush_interval`` seconds (0.5 by default) and appends them
with one ``write`` and one ``fsync`` under an exclusive ``flock`` (the mount,
the daemon and CLI commands share one chain). Durability: a record is on
disk within ``flush_interval`` of its change, and at once when the log is
closed; a crash (or kill -9) of the process loses at most the records of the
last interval, never a record already written, and never breaks the chain.
The command name of a process (``/proc/PID/comm``) is read when the record
is made (a short-lived ``rm`` is gone by the time the batch is written) and
remembered per pid for ``COMM_TTL`` seconds, so a ``tar x`` pays one read.

Past ``rotate_size`` the current file is renamed ``audit-<first seq>.log``;
the next record still carries the last one's hash. Every
``checkpoint_interval`` seconds (and at close), when the log grew, a signed
checkpoint goes to ``publish`` (the stores).
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .chain import CURRENT, head, iso, seal
from .checkpoint import load_key, sign

if TYPE_CHECKING:
    from omnifs.config import Config

log = logging.getLogger(__name__)

#: seconds a pid's command name is reused without reading /proc again
COMM_TTL = 1.0


def command_name(pid: int | None) -> str:
    if not pid:
        return "?"
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


class NullAudit:
    """Audit off: every call does nothing."""

    enabled = False

    def record(self, op: str, path: str, **kw) -> None:
        return None

    def flush(self) -> None:
        return None

    def checkpoint(self) -> bool:
        return False

    def close(self) -> None:
        return None


class AuditLog:
    """The writer; see the module docstring. ``threaded=False`` writes at :meth:`flush` only."""

    enabled = True

    def __init__(self, folder: Path, source: str, *, flush_interval: float = 0.5,
                 rotate_size: int = 64 * 1024**2, checkpoint_interval: float = 300.0,
                 publish: Callable[[bytes], None] | None = None, key_dir: Path | None = None,
                 threaded: bool = True):
        self.folder = folder
        self.source = source
        self.flush_interval = flush_interval
        self.rotate_size = rotate_size
        self.checkpoint_interval = checkpoint_interval
        self.publish = publish
        self.key_dir = key_dir or folder.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._queue: collections.deque[tuple] = collections.deque()
        self._comms: dict[int, tuple[str, float]] = {}
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointed: tuple[int, str] | None = None
        self._checkpoint_at = time.monotonic()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="omnifs-audit", daemon=True)
            self._thread.start()

    def record(self, op: str, path: str, *, uid: int | None = None, pid: int | None = None,
               comm: str | None = None, rule: str = "", result: str = "ok") -> None:
        now = time.time()
        if comm is None and pid:
            known = self._comms.get(pid)
            if known is None or now - known[1] > COMM_TTL:
                if len(self._comms) > 4096:
                    self._comms.clear()
                known = self._comms[pid] = (command_name(pid), now)
            comm = known[0]
        self._queue.append((now, uid, pid, comm, op, path, rule, result))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self._safe_flush()
            if time.monotonic() - self._checkpoint_at >= self.checkpoint_interval:
                self._safe_checkpoint()

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except OSError as e:  # kept queued: the next interval tries again
            log.warning("audit log %s: cannot append: %s", self.folder, e)

    def _safe_checkpoint(self) -> None:
        self._checkpoint_at = time.monotonic()
        try:
            self.checkpoint()
        except Exception as e:  # noqa: BLE001 - a store down must not stop the audit
            log.warning("audit checkpoint: %s", e)

    def flush(self) -> None:
        """Seal and append everything queued (one write and one fsync)."""
        with self._write_lock:
            if not self._queue:
                return
            batch = []
            while self._queue:
                batch.append(self._queue.popleft())
            try:
                self._append(batch)
            except BaseException:
                self._queue.extendleft(reversed(batch))
                raise

    def _append(self, batch: list[tuple]) -> None:
        lockfd = os.open(self.folder / "audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lockfd, fcntl.LOCK_EX)
            seq, prev = head(self.folder)
            lines = []
            for t, uid, pid, comm, op, path, rule, result in batch:
                seq += 1
                line, prev = seal({"time": iso(t), "source": self.source, "uid": uid,
                                   "pid": pid, "comm": comm, "op": op, "path": path,
                                   "rule": rule, "result": result}, seq, prev)
                lines.append(line)
            current = self.folder / CURRENT
            fd = os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(lines))
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size >= self.rotate_size:
                self._rotate(current)
        finally:
            os.close(lockfd)

    def _rotate(self, current: Path) -> None:
        with current.open("rb") as f:
            first = int(json.loads(f.readline())["seq"])
        os.rename(current, self.folder / f"audit-{first:012d}.log")
        dfd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def checkpoint(self) -> bool:
        """Send a signed checkpoint of the head to ``publish`` when the log grew since."""
        if self.publish is None:
            return False
        now = head(self.folder)
        if now == self._checkpointed or now[0] == 0:
            return False
        self.publish(sign(load_key(self.key_dir), *now))
        self._checkpointed = now
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._safe_flush()
        self._safe_checkpoint()


def open_audit(config: Config, source: str, publish: Callable[[bytes], None] | None = None,
               *, threaded: bool = True) -> AuditLog | NullAudit:
    """The audit log ``config`` asks for (``[governance.audit]``), or a NullAudit."""
    from omnifs.governance_config import audit_dir

    gov = config.governance
    if not gov.audit:
        return NullAudit()
    catalog = config.catalog_file()
    return AuditLog(audit_dir(catalog), source, flush_interval=gov.flush_interval,
                    rotate_size=gov.rotate_size, checkpoint_interval=gov.checkpoint_interval,
                    publish=publish, key_dir=catalog.parent, threaded=threaded)
