"""The ``[daemon]`` table: every key, its default, and one-line errors.

``omnifs.config`` keeps ``[daemon]`` as a free-form table so this package can
own its keys; they are validated here, when the daemon starts or reloads,
with the same one-line style as the rest of the config.

Keys (all optional; times in seconds):

=====================  =======  ==================================================
key                    default  meaning
=====================  =======  ==================================================
workers                4        replication work items executed at once
per_provider           4        concurrent transfers to/from one provider
probe_interval         2.0      seconds between health probes of each provider
probe_timeout          3.0      a probe slower than this counts as a failure (and one
                                with no answer at all marks the store down at once)
lost_after             3600     a provider down this long is declared lost and its
                                replicas are recreated on the others
reconcile_interval     300      seconds between scrubs of every store: one listing
                                compared with the catalog (0 = off)
scrub_verify_bytes     0        bytes per store and interval the scrub reads back
                                and hashes, least recently verified first
                                (a size: "1GiB"; 0 = off)
lease                  300      a claimed item whose worker vanished is re-claimed
                                after this long (kill -9 recovery)
retry_base             1.0      first retry delay; doubles per attempt (with jitter)
retry_max              300      longest retry delay
max_attempts           20       a work item failing this often is parked as failed
drain_timeout          30       on SIGTERM, how long in-flight work may finish
idle_poll              0.5      seconds between queue polls when it was empty
snapshot_interval      900      a changing catalog is snapshotted to every store at
                                least this often (0 = the daemon takes none)
snapshot_quiet         10       ... and once it has not changed for this long after a
                                change (the end of a burst; 0 = only the interval)
snapshot_keep          5        snapshots kept in each store
=====================  =======  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from omnifs.config import parse_size
from omnifs.errors import ConfigError


@dataclass(frozen=True)
class DaemonSettings:
    workers: int = 4
    per_provider: int = 4
    probe_interval: float = 2.0
    probe_timeout: float = 3.0
    lost_after: float = 3600.0
    reconcile_interval: float = 300.0
    scrub_verify_bytes: int = 0
    lease: float = 300.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    max_attempts: int = 20
    drain_timeout: float = 30.0
    idle_poll: float = 0.5
    snapshot_interval: float = 900.0
    snapshot_quiet: float = 10.0
    snapshot_keep: int = 5


_MINIMUM = {"workers": 1, "per_provider": 1, "probe_interval": 0.05, "probe_timeout": 0.05,
            "lost_after": 0.0, "reconcile_interval": 0.0, "lease": 1.0, "retry_base": 0.0,
            "retry_max": 0.0, "max_attempts": 1, "drain_timeout": 0.0, "idle_poll": 0.01,
            "snapshot_interval": 0.0, "snapshot_quiet": 0.0, "snapshot_keep": 1}


#: keys that take a size ("1GiB") as well as a number of bytes
_SIZES = frozenset({"scrub_verify_bytes"})


def parse_daemon(table: dict, source: str = "config") -> DaemonSettings:
    """Validate ``Config.daemon``; raise ConfigError with one line naming the key."""
    known = {f.name: f.type for f in fields(DaemonSettings)}
    values: dict = {}
    for key, value in table.items():
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else \
                f" (known keys: {', '.join(sorted(known))})"
            raise ConfigError(f"{source}: unknown key {key!r} in [daemon]{hint}")
        if key in _SIZES:
            values[key] = parse_size(value, f"{source}: [daemon] {key}")
            continue
        want_int = known[key] in (int, "int")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                want_int and not isinstance(value, int)):
            kind = "a whole number" if want_int else "a number of seconds"
            raise ConfigError(f"{source}: [daemon] {key}: expected {kind}, got {value!r}")
        if value < _MINIMUM[key]:
            raise ConfigError(f"{source}: [daemon] {key} must be at least {_MINIMUM[key]}")
        values[key] = int(value) if want_int else float(value)
    return DaemonSettings(**values)
