"""Signed checkpoints of the audit chain, kept in every store.

A checkpoint names the log's last record (seq and hash) and when it was
taken, signed with HMAC-SHA256 under a key kept in the data dir
(``audit.key``, mode 0600, made on first use). It is written to each store as
``.omnifs/audit/checkpoint.json``, so a local log that was deleted, cut short
or rewritten no longer matches what the stores hold.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .chain import AUDIT_KEY_PREFIX, canonical

if TYPE_CHECKING:
    from omnifs.providers import Provider

CHECKPOINT_KEY = AUDIT_KEY_PREFIX + "checkpoint.json"


def load_key(data_dir: Path) -> bytes:
    """The HMAC key, made (32 random bytes, 0600) the first time."""
    path = data_dir / "audit.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
        return key
    except ValueError:
        raise ValueError(f"{path}: not an audit key (64 hex digits)") from None


def sign(key: bytes, seq: int, head_hash: str, now: float | None = None) -> bytes:
    body = {"seq": seq, "hash": head_hash, "time": now if now is not None else time.time(),
            "host": socket.gethostname()}
    body["hmac"] = hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    return canonical(body)


def check(key: bytes, data: bytes) -> dict:
    """A checkpoint's fields; ValueError when it is not one or its signature is wrong."""
    try:
        body = json.loads(data)
        mac = body.pop("hmac")
        int(body["seq"])
        str(body["hash"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("not an audit checkpoint") from None
    want = hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, want):
        raise ValueError("bad signature (not made with this data dir's audit key)")
    return body


def publisher(providers: Callable[[], Iterable[Provider]]) -> Callable[[bytes], None]:
    """A ``publish`` for :class:`~omnifs.audit.log.AuditLog`: the checkpoint to every store.

    Every store is tried; one that failed makes the call raise (after the others).
    """
    def publish(data: bytes) -> None:
        failed = []
        for p in providers():
            try:
                p.write_bytes(CHECKPOINT_KEY, data, content_type="application/json")
            except Exception as e:  # noqa: BLE001 - the others still get theirs
                failed.append(f"{p.name}: {e}")
        if failed:
            raise OSError("checkpoint not written to " + "; ".join(failed))

    return publish


def compare(key: bytes, found: dict[str, bytes | None], hashes: dict[int, str],
            last_seq: int) -> tuple[list[tuple[str, int]], str | None]:
    """The stores' checkpoints against the local chain (``hashes``: seq -> hash).

    Returns the checkpoints that matched, (store, seq) each, and the first problem.
    """
    matched: list[tuple[str, int]] = []
    for store, data in found.items():
        if data is None:
            continue
        try:
            body = check(key, data)
        except ValueError as e:
            return matched, f"checkpoint on {store}: {e}"
        seq, want = int(body["seq"]), str(body["hash"])
        if seq > last_seq:
            return matched, (f"checkpoint on {store} names record seq {seq} but the local log "
                             f"ends at seq {last_seq}: records were deleted")
        if hashes.get(seq) != want:
            return matched, (f"record seq {seq}: its hash differs from the checkpoint on "
                             f"{store} (the log was rewritten)")
        matched.append((store, seq))
    return matched, None
