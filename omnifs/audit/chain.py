"""Audit records, their hash chain, the log's files, verify and export.

A record is one line of canonical JSON (sorted keys, no spaces)::

    {"comm": "rm", "hash": "...", "op": "delete", "path": "/ledger/a", "pid": 4242,
     "prev": "...", "result": "denied EPERM", "rule": "sec-17a-4", "seq": 17,
     "source": "mount", "time": "2026-12-07T02:40:01.123456Z", "uid": 1000}

``hash`` is the SHA-256 of the record's canonical JSON without ``hash``;
``prev`` is the previous record's ``hash`` (64 zeros for the first); ``seq``
counts from 1. An edited record fails its own hash, a deleted one leaves a
gap in ``seq`` and a wrong ``prev``, reordered ones the same: :func:`verify`
names the first record where the chain breaks.

Files, in the audit folder: ``audit.log`` (being written) and rotated
``audit-<first seq>.log`` files; the chain runs on across them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GENESIS = "0" * 64
CURRENT = "audit.log"
#: where each store keeps the signed checkpoints (under the store's reserved prefix)
AUDIT_KEY_PREFIX = ".omnifs/audit/"
_ROTATED = re.compile(r"audit-(\d+)\.log\Z")


def canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def digest(record: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def seal(record: dict, seq: int, prev: str) -> tuple[bytes, str]:
    """The line for ``record`` as number ``seq`` after a record hashed ``prev``, and its hash."""
    record = {**record, "seq": seq, "prev": prev}
    record["hash"] = digest(record)
    return canonical(record) + b"\n", record["hash"]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def segments(folder: Path) -> list[Path]:
    """The log's files in chain order: rotated ones by first seq, then the current one."""
    rotated = sorted((int(m.group(1)), p) for p in folder.glob("audit-*.log")
                     if (m := _ROTATED.match(p.name)))
    out = [p for _, p in rotated]
    if (folder / CURRENT).exists():
        out.append(folder / CURRENT)
    return out


def last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (reads backwards from the end)."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, 2)
            if end == 0:
                return None
            chunk = b""
            pos = end
            while pos > 0:
                step = min(4096, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step) + chunk
                body = chunk.rstrip(b"\n")
                if b"\n" in body or pos == 0:
                    return body.rsplit(b"\n", 1)[-1]
    except FileNotFoundError:
        return None
    return None


def head(folder: Path) -> tuple[int, str]:
    """(seq, hash) of the log's last record; (0, GENESIS) for an empty log."""
    for path in reversed(segments(folder)):
        line = last_line(path)
        if line:
            rec = json.loads(line)
            return int(rec["seq"]), str(rec["hash"])
    return 0, GENESIS


def records(folder: Path) -> Iterator[tuple[Path, int, bytes]]:
    """Every line of the log in order: (file, line number from 1, bytes)."""
    for path in segments(folder):
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                yield path, n, line.rstrip(b"\n")


@dataclass
class VerifyResult:
    records: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    #: the first problem, one line naming the record; None when the chain holds
    problem: str | None = None
    #: the checkpoints compared: (store, seq) each
    checkpoints: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(folder: Path, hashes: dict[int, str] | None = None) -> VerifyResult:
    """Walk the chain; the first break is named. ``hashes`` (if given) collects seq -> hash."""
    res = VerifyResult()
    prev = GENESIS
    for path, n, line in records(folder):
        where = f"{path.name} line {n}"
        try:
            rec = json.loads(line)
            seq, rprev, rhash = int(rec["seq"]), str(rec["prev"]), str(rec["hash"])
        except (ValueError, KeyError, TypeError):
            res.problem = f"{where}: not an audit record (after seq {res.last_seq})"
            return res
        expected = res.last_seq + 1
        if digest(rec) != rhash:
            res.problem = f"record seq {seq} ({where}): its content does not match its hash " \
                          "(edited)"
        elif seq != expected:
            res.problem = (f"record seq {seq} ({where}): expected seq {expected} "
                           "(records deleted or reordered)")
        elif rprev != prev:
            res.problem = f"record seq {seq} ({where}): previous-hash link broken"
        if res.problem:
            return res
        prev = rhash
        res.records += 1
        res.last_seq, res.last_hash = seq, rhash
        if hashes is not None:
            hashes[seq] = rhash
    return res


def export(folder: Path, since: float | None = None) -> Iterator[bytes]:
    """The records (lines) whose time is at or after ``since`` (epoch seconds)."""
    cut = iso(since) if since is not None else ""
    for _, _, line in records(folder):
        if not cut:
            yield line
            continue
        try:
            t = json.loads(line).get("time", "")
        except ValueError:
            continue
        if t >= cut:
            yield line
