"""daemon, status: run the background replication daemon; show what it sees.

``omnifs status`` reads what the daemon last published in the catalog file
(provider health) plus the work queue; when no daemon has published for a
minute it probes each provider itself, so the answer is never stale.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..catalog import Catalog
from ..config import load_config
from ..dr import state as dr_state
from ..private import tighten_owned
from ..processes import DAEMON_KEY, WORKER_PREFIX, recorded_alive, workers_from
from ..scrub import last_scrubs
from ..snapshot import last_taken
from ..units import human_bytes, plural

ORDER = 40

#: a health row older than this means no daemon is running
STALE_AFTER = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("daemon", help="run replication, health probes, failover and /metrics "
                                      "in the foreground (systemd: omnifs-daemon.service)")
    p.set_defaults(func=cmd_daemon)

    p = sub.add_parser("status", help="provider health, work queue, replication lag, "
                                      "under-replicated files, cache use")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def cmd_daemon(args) -> int:
    import logging

    from omnifs.daemon.main import run

    config = load_config(args.config)
    if not getattr(args, "debug", False):
        logging.getLogger("omnifs").setLevel(logging.INFO)
    tighten_owned(config)
    return run(config)


def _probe(provider) -> dict:
    from omnifs.daemon.health import probe_once
    from omnifs.providers import OmnifsError

    start = time.monotonic()
    try:
        probe_once(provider)
    except OmnifsError as e:
        return {"status": "down", "p50": None, "p95": None, "error_rate": 1.0,
                "error": str(e).splitlines()[0]}
    finally:
        provider.close()
    took = time.monotonic() - start
    return {"status": "healthy", "p50": took, "p95": took, "error_rate": 0.0}


def gather(config) -> dict:
    """Everything ``status`` shows, as one dict (the --json output)."""
    from omnifs.providers import open_provider

    catalog = Catalog(config.catalog_target(), create=False)  # a read-only command makes no catalog
    try:
        c = catalog
        failed = c.work.failed_count()
        by_kind = c.work.pending_by_kind()
        queue = {"depth": c.work.pending_count(), "failed": failed, "by_kind": by_kind,
                 "oldest_pending_age": c.work.oldest_pending_age()}
        files = c.ns.count_files()
        under = c.replicas.under_replicated(config.copies)
        staged = c.ns.staged_count()
        rows = c.health.verdicts()  # the catalog exists here: it was just opened
        owner = c.get_meta(DAEMON_KEY)
        workers = workers_from(c.meta_items(WORKER_PREFIX), time.time())
        scrubs = last_scrubs(c)
        snap = last_taken(c)
        dr = dr_state.status(c, config.dr, time.time(), config.copies)
    finally:
        catalog.close()
    now = time.time()
    fresh = {n: r for n, r in rows.items() if now - r.updated_at < STALE_AFTER}
    providers: dict[str, dict] = {}
    to_probe = [n for n in config.providers if n not in fresh]
    if to_probe:
        with ThreadPoolExecutor(max_workers=len(to_probe)) as pool:
            futures = {n: pool.submit(_probe, open_provider(config.providers[n]))
                       for n in to_probe}
            for n, f in futures.items():
                providers[n] = f.result() | {"source": "probe"}
    for n, r in fresh.items():
        if n in config.providers:
            providers[n] = {"status": r.status, "p50": r.p50, "p95": r.p95,
                            "error_rate": r.error_rate, "down_since": r.down_since,
                            "source": "daemon", "age": now - r.updated_at}
    ordered = {n: providers[n] for n in config.providers if n in providers}
    from omnifs.mountfs.replicas import mount_read_stats

    return {
        "dr": dr,
        "daemon": ("running" if recorded_alive(owner, bool(fresh))
                   or any(w["alive"] for w in workers) else "not running"),
        # every daemon process on the queue, on any host: its heartbeat and items done
        "workers": [w for w in workers if w["alive"]],
        "providers": ordered,
        "queue": queue,
        "files": files,
        "copies": config.copies,
        "under_replicated": under,
        # the last scrub of each store (the daemon's, or `omnifs check --repair`'s)
        "scrubs": {n: scrubs[n] for n in config.providers if n in scrubs},
        # the newest catalog snapshot the daemon wrote to the stores (what rebuilds the tree)
        "snapshot": snap,
        # written through a mount, not yet on write_quorum stores (uploaded once one answers)
        "staged": staged,
        "cache": _cache_use(config.cache_dir, config.cache_size),
        # what the mount measured on real reads (latency, throughput per provider)
        "mount_reads": mount_read_stats(config.cache_dir, max_age=None),
    }


def snapshot_line(snap: dict | None, now: float) -> str:
    """'12 s ago on aws, gcs (1,234 entries)' (the newest catalog snapshot, for people)."""
    if not snap:
        return "none yet (the daemon writes one once the tree has changed)"
    line = (f"{_ago(now - snap['at'])} ago on {', '.join(snap['stored'])} "
            f"({plural(snap['inodes'], 'entry', 'entries')})")
    if snap.get("failed"):
        line += f"; not on {', '.join(snap['failed'])}"
    return line


def scrub_line(last: dict, now: float) -> str:
    """'2 min ago: 290 replicas by size, 2 missing' (one store's last scrub, for people)."""
    when = last.get("finished") or last.get("started") or now
    head = f"{_ago(now - when)} ago"
    if last.get("root_missing"):
        return f"{head}: {last.get('error')}; its {last.get('claims', 0)} replicas are lost"
    if last.get("error"):
        return f"{head}: not listed: {last['error']}"
    found = ", ".join(f"{n} {kind}" for kind, n in (last.get("problems") or {}).items() if n)
    verified = (f", {last['verified']} read back ({human_bytes(last.get('verified_bytes', 0))})"
                if last.get("verified") else "")
    return (f"{head}: {last.get('claims', 0)} replicas by {last.get('method', '-')}"
            f"{verified}, {found or 'clean'}")


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cache_use(directory: Path, limit: int) -> dict:
    used = 0
    if directory.is_dir():
        for root, _dirs, names in os.walk(directory):
            for name in names:
                with contextlib.suppress(OSError):
                    used += os.lstat(os.path.join(root, name)).st_blocks * 512
    return {"dir": str(directory), "used": used, "limit": limit}


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def cmd_status(args) -> int:
    config = load_config(args.config)
    info = gather(config)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"daemon: {info['daemon']}")
    workers = info["workers"]
    if len(workers) > 1 or (workers and workers[0]["host"] != socket.gethostname()):
        print(f"workers: {len(workers)} ({sum(w['done'] for w in workers)} items done)")
        for w in workers:
            print(f"  {w['worker']}  {w['done']} done, {w['failed']} failed, "
                  f"heard {_ago(time.time() - w['heartbeat'])} ago")
    width = max([len(n) for n in info["providers"]] + [8])
    print(f"{'provider':<{width}}  {'health':<9} {'p50':>8} {'p95':>8} {'errors':>7}")
    for name, p in info["providers"].items():
        print(f"{name:<{width}}  {p['status']:<9} {_ms(p['p50']):>8} {_ms(p['p95']):>8} "
              f"{p['error_rate'] * 100:>6.1f}%" + (f"  {p['error']}" if p.get("error") else ""))
    q = info["queue"]
    age = q["oldest_pending_age"]
    lag = "none" if age is None else f"{age:.1f} s"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(q["by_kind"].items()))
    print(f"work queue: {q['depth']} pending" + (f" ({kinds})" if kinds else "")
          + f", {q['failed']} failed; oldest pending: {lag}")
    print(f"files: {info['files']}, under-replicated: {info['under_replicated']} "
          f"(copies = {info['copies']})")
    if info["staged"]:
        n = info["staged"]
        print(f"{plural(n, 'file')} staged, waiting for a store")
    if info["scrubs"]:
        print("last scrub of each store:")
        for name, last in info["scrubs"].items():
            print(f"  {name:<{width}}  {scrub_line(last, time.time())}")
    print(f"catalog snapshot: {snapshot_line(info['snapshot'], time.time())}")
    cache = info["cache"]
    print(f"cache: {human_bytes(cache['used'])} of {human_bytes(cache['limit'])} in "
          f"{cache['dir']}")
    if info["mount_reads"]:
        print("measured by the mount's reads:")
        for r in info["mount_reads"]:
            print(f"  {r['provider']:<{width}}  latency {r['latency_ms'] or 0:.0f} ms, "
                  f"{r['throughput_mib_s'] or 0:.1f} MiB/s over "
                  f"{plural(r['requests'], 'request')}, {plural(r['errors'], 'error')}, "
                  f"{r['hedges']} hedged")
    if info["dr"] is not None:
        print("\n".join(dr_state.status_lines(info["dr"], time.time())))
    return 0
