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
from ..errors import OmnifsError
from ..units import human_bytes, plural

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
    """The config and its block cache; None when nothing made one yet (nor will this).

    On a full disk, the spare room the mount keeps is given back first: opening
    the cache writes to its index (providers/diskspace.py).
    """
    from omnifs.blockcache import BlockCache
    from omnifs.providers.diskspace import spare_files

    cfg = load_config(args.config)
    if not (cfg.cache_dir / "blocks").is_dir():
        return cfg, None
    for spare in spare_files(cfg.catalog_file(), cfg.cache_dir):
        spare.release_if_low()
    return cfg, BlockCache.for_config(cfg)


def cmd_stats(args) -> int:
    from omnifs.mountfs.replicas import SNAPSHOT_NAME, load_snapshot
    from omnifs.mountfs.staging import held_on_disk

    cfg, cache = _open(args)
    if cache is None:
        raise OmnifsError(f"no cache yet at {cfg.cache_dir}: a mount makes it "
                          "(`omnifs mount MOUNTPOINT`)")
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
    print(f"size:      {human_bytes(st.size + staged)} of {human_bytes(st.limit)} ({pct:.1f}%): "
          f"blocks {human_bytes(st.size)}, staging {human_bytes(staged)}")
    print(f"entries:   {plural(st.entries, 'block')} of up to {human_bytes(st.block_size)}; "
          f"read-ahead {plural(cfg.cache_readahead, 'block')}")
    print(f"hits:      {st.hits}  misses: {st.misses}  hit ratio: {ratio}")
    print(f"evictions: {st.evictions}  corrupt entries dropped: {st.corrupt}")
    for p in (measured or {}).get("providers", []):
        lat = "-" if p["latency_ms"] is None else f"{p['latency_ms']:.1f} ms"
        tput = "-" if p["throughput_mib_s"] is None else f"{p['throughput_mib_s']:.1f} MiB/s"
        print(f"read from {p['provider']}: latency {lat}, throughput {tput}, "
              f"{plural(p['requests'], 'request')}, {plural(p['errors'], 'error')}, "
              f"{p['hedges']} hedged")
    return 0


def cmd_clear(args) -> int:
    cfg, cache = _open(args)
    if cache is None:
        print(f"nothing to clear: no cache at {cfg.cache_dir}")
        return 0
    try:
        removed = cache.clear(reset_counters=not args.keep_counters)
    finally:
        cache.close()
    print(f"cleared {plural(removed, 'block')} from {cfg.cache_dir}")
    return 0
