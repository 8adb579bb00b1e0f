"""audit: the tamper-evident audit log (omnifs/audit/): ``verify``, ``export``, ``checkpoint``.

``verify`` walks the local hash chain (every file, rotated ones included)
and compares it with the signed checkpoint each store holds under
``.omnifs/audit/``: an edit, a deletion or a reordering names the first bad
record, and a log deleted or cut short is caught by the stores' checkpoints.
Exit 0 when everything holds, 1 otherwise.

This module also records the CLI's own mutating commands (``record_command``,
called by ``main``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

from ..audit import export, open_audit, verify
from ..audit.checkpoint import CHECKPOINT_KEY, compare, load_key, publisher
from ..config import Config, load_config
from ..errors import InvalidInput, OmnifsError
from ..governance_config import audit_dir
from ..policy.governance import parse_duration

ORDER = 61

#: commands that change data or governance: the CLI records them in the audit log
MUTATING = {"put", "rm", "cp", "sync", "migrate", "import", "replicate", "gov", "load", "cost"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the audit log: verify the chain, export records",
                       description="The hash-chained audit log of every change and denial.")
    s = p.add_subparsers(dest="audit_command", metavar="STEP", required=True)
    v = s.add_parser("verify", help="check the chain and the stores' checkpoints",
                     description="Exit 0 when the chain holds and matches every store's "
                                 "checkpoint; else name the first bad record.")
    v.add_argument("--local", action="store_true",
                   help="only the local chain (do not read the stores' checkpoints)")
    v.set_defaults(func=cmd_verify)
    e = s.add_parser("export", help="records as JSON lines",
                     description="Print the audit records (JSON lines), oldest first.")
    e.add_argument("--since", metavar="WHEN",
                   help="an ISO time (2026-12-07 or 2026-12-07T02:00:00Z) or an age (12h, 7d)")
    e.add_argument("--format", choices=("jsonl",), default="jsonl")
    e.set_defaults(func=cmd_export)
    c = s.add_parser("checkpoint", help="write a signed checkpoint to every store now")
    c.set_defaults(func=cmd_checkpoint)


def _providers(cfg: Config):
    from omnifs.providers import open_provider

    return [open_provider(s) for s in cfg.providers.values()]


def _folder(cfg: Config):
    folder = audit_dir(cfg.catalog_file())
    if not folder.exists():
        raise InvalidInput(f"no audit log at {folder} (is [governance.audit] enabled?)")
    return folder


def cmd_verify(args) -> int:
    cfg = load_config(args.config)
    folder = audit_dir(cfg.catalog_file())
    hashes: dict[int, str] = {}
    res = verify(folder, hashes)
    if not res.ok:
        print(f"audit log broken: {res.problem}")
        return 1
    checked = ""
    if not args.local:
        from omnifs.providers import NotFound

        found: dict[str, bytes | None] = {}
        for p in _providers(cfg):
            try:
                found[p.name] = p.read_bytes(CHECKPOINT_KEY)
            except NotFound:
                found[p.name] = None
            finally:
                p.close()
        if not any(found.values()) and res.records == 0:
            raise InvalidInput(f"no audit records at {folder} and no checkpoint in any store")
        matched, problem = compare(load_key(folder.parent), found, hashes, res.last_seq)
        if problem:
            print(f"audit log broken: {problem}")
            return 1
        missing = [n for n, d in found.items() if d is None]
        checked = f"; checkpoints match on {len(matched)} store(s)" + (
            f" (none yet on {', '.join(missing)})" if missing else "")
    print(f"audit log intact: {res.records} records, last seq {res.last_seq}{checked}")
    return 0


def parse_since(text: str, now: float | None = None) -> float:
    try:
        return (now if now is not None else time.time()) - parse_duration(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--since {text!r}: expected an ISO time (2026-12-07T02:00:00Z) "
                           "or an age (12h, 7d)") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def cmd_export(args) -> int:
    cfg = load_config(args.config)
    since = parse_since(args.since) if args.since else None
    out = sys.stdout.buffer
    for line in export(_folder(cfg), since):
        out.write(line + b"\n")
    out.flush()
    return 0


def cmd_checkpoint(args) -> int:
    cfg = load_config(args.config)
    providers = _providers(cfg)
    try:
        log = open_audit(cfg, "cli", publisher(lambda: providers), threaded=False)
        if not log.enabled:
            raise InvalidInput("the audit log is off ([governance.audit] enabled = false)")
        try:
            written = log.checkpoint()
        except OSError as e:
            raise OmnifsError(str(e)) from None
    finally:
        for p in providers:
            p.close()
    print("checkpoint written to every store" if written else "the log is empty: nothing to "
          "checkpoint")
    return 0


def record_command(args, status: int) -> None:
    """One audit record for a mutating CLI command (never fails the command)."""
    if getattr(args, "command", None) not in MUTATING:
        return
    try:
        cfg = load_config(getattr(args, "config", None))
        log = open_audit(cfg, "cli", threaded=False)
        log.record(args.command, " ".join(sys.argv[2:])[:1000], uid=os.getuid(), pid=os.getpid(),
                   result="ok" if status == 0 else f"exit {status}")
        log.flush()
    except Exception:  # noqa: BLE001 - no config or no log: nothing to record
        pass
