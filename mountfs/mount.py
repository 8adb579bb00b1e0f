"""Mount lifecycle: open the catalog and stores, recover, serve, unmount cleanly.

Order at start: catalog (migrations) -> import when the catalog is new ->
recovery (orphans, unfinished uploads) -> ``pyfuse3.init`` -> raise the bdi
read-ahead so the kernel asks for 1 MiB reads -> once the mount point answers a
stat, report readiness (to the background parent, and to systemd as READY=1).
SIGTERM/SIGINT end ``pyfuse3.main``; dirty files are published, then the
kernel mount is removed (``pyfuse3.close(unmount=True)``), so no stale mount
is left behind.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyfuse3
import trio

from omnifs import sd_notify
from omnifs.catalog import Catalog
from omnifs.config import Config
from omnifs.mounts import mount_at
from omnifs.providers import metered, open_provider
from omnifs.providers.errors import InvalidInput
from omnifs.usage_log import Source, usage_log

from . import fallocate, metrics
from .operations import Operations
from .reader import ReadVia
from .stores import Stores

log = logging.getLogger("omnifs.mount")

#: kernel read-ahead for the mount: 1 MiB FUSE reads need at least 1024
READ_AHEAD_KB = 4096


#: what a FUSE option value may hold (pyfuse3 passes options as ASCII; ',' separates them)
_PLAIN = re.compile(r"[A-Za-z0-9/._+:@=~-]+")


def source_name(config: Config) -> str:
    """The mount's source in ``mount``/``findmnt``/``df``: its config file, as in /etc/fstab.

    ``omnifs status --config "$(findmnt -no SOURCE /mnt/data)"`` then asks about
    the right mount. Without a config file, or for a path FUSE options cannot
    carry, it is ``omnifs``.
    """
    if config.path is None:
        return "omnifs"
    path = os.path.abspath(config.path)
    return path if _PLAIN.fullmatch(path) else "omnifs"


def fuse_options(config: Config) -> set[str]:
    opts = set(pyfuse3.default_options)  # default_permissions
    opts |= {f"fsname={source_name(config)}", "subtype=omnifs"}
    if config.allow_other:
        opts.add("allow_other")
    return opts


def mount_device(mountpoint: str) -> str | None:
    """'major:minor' of the mount at ``mountpoint``, from /proc/self/mountinfo (no stat).

    ``mountpoint`` must already be a real path: resolving it once mounted asks
    the mount itself, which deadlocks if its request loop is not serving yet.
    """
    found = mount_at(mountpoint)
    return found.device if found else None


def raise_read_ahead(mountpoint: str, kb: int = READ_AHEAD_KB) -> bool:
    """Raise the kernel's read-ahead for the mount; call once its request loop serves.

    The kernel lowers read-ahead to what the FUSE INIT reply allows when it
    processes that reply, so a value written before then is lost. Any request
    waits for INIT to finish, so a stat of the mount point orders the write after it.
    """
    dev = mount_device(mountpoint)
    if dev is None:
        return False
    try:
        os.stat(mountpoint)
        Path(f"/sys/class/bdi/{dev}/read_ahead_kb").write_text(str(kb))
    except OSError as e:
        log.info("cannot raise read_ahead_kb for %s: %s", mountpoint, e)
        return False
    return True


def is_stale_mount(mountpoint: str) -> bool:
    """A FUSE mount whose process died answers ENOTCONN."""
    try:
        os.stat(mountpoint)
    except OSError as e:
        return e.errno == 107  # ENOTCONN
    return False


def clear_stale_mount(mountpoint: str) -> None:
    if is_stale_mount(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the soft limit now in force.

    Why: every cached block a reader holds is a map of its cache file, and
    Python's ``mmap`` keeps a descriptor per map (open handles x read-ahead
    window); the usual soft limit of 1024 would turn a busy mount's cache
    hits into EMFILE and refetches.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError) as e:
            log.info("cannot raise the open files limit from %d: %s", soft, e)
    return soft


def open_stores(config: Config) -> Stores:
    if not config.providers:
        raise InvalidInput("no providers configured: add a [providers.NAME] table")
    return Stores({name: open_provider(s) for name, s in config.providers.items()})


def build_operations(config: Config, catalog: Catalog, stores: Stores, *,
                     writeback: bool = False, read_via: ReadVia | None = None) -> Operations:
    """The filesystem a mount serves, before any kernel is involved.

    A new catalog is first filled from what the stores already hold. The
    mount serves the result through pyfuse3; the kernel-free tests
    (tests/ops) call its handlers directly.
    """
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    if catalog.get_meta("imported") is None:
        from omnifs.importer import import_stores

        import_stores(catalog, stores.by_name, config)
    # `[mount] writeback = true` in config, or --writeback on the command line
    return Operations(config, catalog, stores, writeback=writeback or config.writeback,
                      read_via=read_via)


async def start_background(ops: Operations, nursery: trio.Nursery) -> None:
    """Start the filesystem's own tasks in ``nursery``, the ones no FUSE request runs.

    Cached copies of published files, uploads that outlive their close,
    write-back uploads and retries of failed closes, flushes of the access statistics.
    """
    nursery.start_soon(ops.written.run)
    nursery.start_soon(ops.coherence.run)  # other mounts' changes into this one's caches
    await nursery.start(ops.publisher.run)  # uploads that outlive their close
    nursery.start_soon(ops.run_uploads)  # write-back, and retries of failed closes
    nursery.start_soon(ops.access_log.run)  # access statistics to the catalog, every few seconds
    nursery.start_soon(metrics.sample_loop, ops.config)  # for `omnifs metrics compare`


def serve(config: Config, mountpoint: str, *, ready: Callable[[], None] | None = None,
          debug: bool = False, writeback: bool = False, read_via: ReadVia | None = None,
          usage_source: Source | None = None) -> int:
    """Mount and serve until unmounted or signalled; returns an exit status.

    ``read_via`` wraps the providers reads go to (mountfs/reader.py; tests slow a store);
    ``usage_source`` counts the store requests recorded in the catalog (omnifs/usage_log.py).
    """
    mp = os.path.abspath(mountpoint)
    if not os.path.isdir(mp):
        clear_stale_mount(mp)
        if not os.path.isdir(mp):
            raise InvalidInput(f"mount point {mountpoint} is not a directory (create it first)")
    # resolved before mounting: afterwards resolving it would ask this very mount
    mp = os.path.realpath(mp)
    raise_open_files_limit()
    metrics.timing = metered.enabled(config.metrics.enabled)
    catalog = Catalog(config.catalog_target())
    stores = open_stores(config)
    usage = usage_log(catalog.target, usage_source)  # store requests to the catalog
    endpoint = None
    try:
        ops = build_operations(config, catalog, stores, writeback=writeback, read_via=read_via)
        endpoint = metrics.serve_metrics(ops, config)
        trio.run(_main, ops, mp, config, ready, debug)
    finally:
        usage.close()
        if endpoint is not None:
            endpoint.close()
        stores.close()
        catalog.close()
    return 0


async def _main(ops: Operations, mp: str, config: Config,
                ready: Callable[[], None] | None, debug: bool) -> None:
    await ops.recover()
    pyfuse3.init(ops, mp, fuse_options(config) | ({"debug"} if debug else set()))
    unmounted = False
    try:
        async with trio.open_nursery() as nursery:
            fallocate.install(ops.fallocate, nursery)  # before the first request is read
            nursery.start_soon(_serve_until_unmounted, nursery)
            nursery.start_soon(_on_signals)
            await start_background(ops, nursery)
            # abandoned if cancelled: a signal during startup must not wait on it
            await trio.to_thread.run_sync(raise_read_ahead, mp, abandon_on_cancel=True)
            await trio.to_thread.run_sync(os.stat, mp, abandon_on_cancel=True)  # it answers
            if ready is not None:
                ready()
            sd_notify.notify(f"READY=1\nSTATUS=mounted at {mp}")
    except BaseException:
        sd_notify.notify("STOPPING=1")
        await ops.shutdown()
        pyfuse3.close(unmount=True)
        unmounted = True
        raise
    finally:
        if not unmounted:
            sd_notify.notify("STOPPING=1")
            await ops.shutdown()
            pyfuse3.close(unmount=True)


async def _serve_until_unmounted(nursery: trio.Nursery) -> None:
    """pyfuse3.main returns on terminate() or when the kernel unmounts (umount)."""
    await pyfuse3.main()
    nursery.cancel_scope.cancel()


async def _on_signals() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for _ in signals:
            pyfuse3.terminate()
            return
