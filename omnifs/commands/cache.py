"""cache stats, cache clear: the mount's local block cache.

Reads ``[cache] dir``/``size``/``block_size`` from the config, so it looks at
the same directory a mount of that config uses (the mount may be running:
diskcache is safe across processes). Staging files of unsaved writes live
beside the blocks (``dir/staging``) and are never touched here.
"""

from __future__ import annotations

import argparse
import json

from ..config import load_config

ORDER = 35


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="the local block cache: stats, clear")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    s = csub.add_parser("stats", help="size, entries, hit ratio, evictions, limit")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_stats)
    c = csub.add_parser("clear", help="drop every cached block (staged writes are kept)")
    c.add_argument("--keep-counters", action="store_true",
                   help="keep the hit/miss/eviction counters")
    c.set_defaults(func=cmd_clear)
    # the CLI adds --config after first-level commands only; accept it after the action too
    for action in (s, c):
        action.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                            help="config file (see `omnifs --help`)")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _open(args):
    """The config's block cache; on a full disk, after giving back the spare room first.

    Opening the cache writes to its index, so ``stats`` and ``clear`` need a
    little room: the spare files the mount keeps (providers/diskspace.py).
    """
    from omnifs.blockcache import BlockCache
    from providers.diskspace import spare_files

    cfg = load_config(args.config)
    if cfg.cache_dir.is_dir():
        for spare in spare_files(cfg.catalog_path(), cfg.cache_dir):
            spare.release_if_low()
    return cfg, BlockCache.for_config(cfg)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_stats(args) -> int:
    from mountfs.replicas import SNAPSHOT_NAME, load_snapshot
    from mountfs.staging import held_on_disk

    cfg, cache = _open(args)
    try:
        st = cache.stats()
    finally:
        cache.close()
    staged = held_on_disk(cfg.cache_dir)
    measured = load_snapshot(cfg.cache_dir / SNAPSHOT_NAME)
    if args.json:
        out = st.as_dict()
        out["staging"] = staged
        out["readahead_blocks"] = cfg.cache_readahead
        out["providers"] = (measured or {}).get("providers", [])
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    ratio = "-" if st.hit_ratio is None else f"{st.hit_ratio * 100:.1f}%"
    pct = (st.size + staged) / st.limit * 100 if st.limit else 0.0
    print(f"cache:     {st.directory}")
    print(f"size:      {_size(st.size + staged)} of {_size(st.limit)} ({pct:.1f}%): "
          f"blocks {_size(st.size)}, staging {_size(staged)}")
    print(f"entries:   {st.entries} blocks of up to {_size(st.block_size)}; "
          f"read-ahead {cfg.cache_readahead} blocks")
    print(f"hits:      {st.hits}  misses: {st.misses}  hit ratio: {ratio}")
    print(f"evictions: {st.evictions}  corrupt entries dropped: {st.corrupt}")
    for p in (measured or {}).get("providers", []):
        lat = "-" if p["latency_ms"] is None else f"{p['latency_ms']:.1f} ms"
        tput = "-" if p["throughput_mib_s"] is None else f"{p['throughput_mib_s']:.1f} MiB/s"
        print(f"read from {p['provider']}: latency {lat}, throughput {tput}, "
              f"{p['requests']} requests, {p['errors']} errors, {p['hedges']} hedged")
    return 0


def cmd_clear(args) -> int:
    cfg, cache = _open(args)
    try:
        removed = cache.clear(reset_counters=not args.keep_counters)
    finally:
        cache.close()
    print(f"cleared {removed} blocks from {cfg.cache_dir}")
    return 0
