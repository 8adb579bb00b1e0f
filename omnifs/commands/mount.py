"""``omnifs mount/umount/import/replicas/replicate``: the mount and its catalog.

``mount`` runs in the background by default: it starts itself again with
``--foreground`` in a new session and waits until that child reports the
mount ready (through a pipe), so the shell gets its prompt back only when the
mount point can be used.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from omnifs.errors import InvalidInput, OmnifsError
from omnifs.processes import alive, mount_processes

ORDER = 30

#: seconds the background parent waits for the mount to become ready
READY_TIMEOUT = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mount", help="mount the namespace at MOUNTPOINT",
                       description="Mount the omnifs namespace (FUSE). Runs in the background "
                                   "unless --foreground; stop it with `omnifs umount`.")
    p.add_argument("mountpoint")
    p.add_argument("--foreground", "-f", action="store_true",
                   help="stay attached; Ctrl-C or SIGTERM unmounts")
    p.add_argument("--writeback", action="store_true",
                   help="close returns once the file is staged on local disk and uploads "
                        "follow in the background (fsync still waits for the upload); a "
                        "kill -9 loses nothing, a lost local disk loses unuploaded files; "
                        "`[mount] writeback = true` in the config does the same")
    p.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log", metavar="FILE", help="background mode: where the mount logs "
                   "(default: CACHE_DIR/mount.log)")
    p.set_defaults(func=cmd_mount)

    p = sub.add_parser("umount", help="unmount MOUNTPOINT", description="Unmount cleanly.")
    p.add_argument("mountpoint")
    p.set_defaults(func=cmd_umount)

    p = sub.add_parser("import", help="build the catalog from what the stores hold",
                       description="Into an empty catalog: restore the newest catalog snapshot "
                                   "the stores hold (checked; an older one if it is damaged), "
                                   "then settle it with the objects. Then add every object the "
                                   "catalog does not know (files already known are kept).")
    p.add_argument("--no-snapshot", action="store_true",
                   help="ignore catalog snapshots: build from the objects alone")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("replicas", help="show where a file's replicas are",
                       description="PATH: a file inside a mount, or a path in the namespace.")
    p.add_argument("path")
    p.set_defaults(func=cmd_replicas)

    p = sub.add_parser("replicate", help="run queued replication work",
                       description="Drain pending replicate/move/delete work in the foreground.")
    p.add_argument("--now", action="store_true", required=True,
                   help="run it now in this process (the daemon runs it continuously)")
    p.add_argument("path", nargs="?", help="only work for files under this namespace path")
    p.set_defaults(func=cmd_replicate)


def _config(args):
    from omnifs.config import load_config

    return load_config(args.config)


def cmd_mount(args) -> int:
    cfg = _config(args)
    mp = args.mountpoint
    from mountfs.mount import clear_stale_mount, serve

    clear_stale_mount(mp)
    if os.path.ismount(mp):
        raise InvalidInput(f"{mp} is already a mount point; `omnifs umount {mp}` first")
    if not os.path.isdir(mp):
        raise InvalidInput(f"mount point {mp} is not a directory (mkdir it first)")
    if args.foreground:
        ready = None
        if args.ready_fd is not None:
            fd = args.ready_fd

            def ready() -> None:
                os.write(fd, b"ok\n")
                os.close(fd)
        elif sys.stderr.isatty():
            def ready() -> None:
                print(f"omnifs: mounted at {mp}; Ctrl-C to unmount", file=sys.stderr)
        return serve(cfg, mp, ready=ready, debug=args.debug, writeback=args.writeback)
    return _background(args, cfg)


def _background(args, cfg) -> int:
    r, w = os.pipe()
    log_path = Path(args.log) if args.log else cfg.cache_dir / "mount.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "omnifs"]
    if cfg.path is not None:
        argv += ["--config", str(Path(cfg.path).resolve())]
    if args.debug:
        argv.append("--debug")
    argv += ["mount", os.path.abspath(args.mountpoint), "--foreground", "--ready-fd", str(w)]
    if args.writeback:
        argv.append("--writeback")
    with open(log_path, "ab") as logf:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                 pass_fds=(w,), start_new_session=True)
    os.close(w)
    deadline = time.monotonic() + READY_TIMEOUT
    got = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], 0.2)
        if ready:
            got = os.read(r, 16)
            break
        if child.poll() is not None:
            break
    os.close(r)
    if got.startswith(b"ok"):
        print(f"omnifs: mounted at {args.mountpoint} (pid {child.pid}); "
              f"stop with `omnifs umount {args.mountpoint}`")
        return 0
    if child.poll() is None:
        child.terminate()
    last = _last_line(log_path)
    raise OmnifsError(f"mount failed: {last}" if last else "mount failed (see the log "
                      f"{log_path})")


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].removeprefix("omnifs: error: ") if lines else ""


#: seconds `omnifs umount` waits for the mount process to finish its work and exit
EXIT_TIMEOUT = 600.0


def cmd_umount(args) -> int:
    """Unmount, then wait for the mount's process to exit.

    Why wait: after the kernel lets go of the mount point, the process still
    publishes files left dirty, finishes write-back uploads and caches files
    just written. Returning before that would let a script's next step (a
    new mount, a shutdown, a copy of the cache) race it, as
    ``umount.s3ql`` also refuses to.
    """
    mp = os.path.abspath(args.mountpoint)
    pids = mount_processes(mp)
    proc = subprocess.run(["fusermount3", "-u", mp], check=False, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "busy" in err.lower():
            raise OmnifsError(f"{args.mountpoint} is busy: a process still uses it "
                              f"(see `fuser -vm {args.mountpoint}`); close it and retry")
        if "not found" in err.lower() or "not mounted" in err.lower():
            raise InvalidInput(f"{args.mountpoint} is not mounted")
        raise OmnifsError(f"umount {args.mountpoint}: {err.splitlines()[-1] if err else 'failed'}")
    deadline = time.monotonic() + 30
    while os.path.ismount(mp) and time.monotonic() < deadline:
        time.sleep(0.05)
    _wait_for_exit(pids, EXIT_TIMEOUT)
    return 0


def _wait_for_exit(pids: list[int], timeout: float) -> None:
    start = time.monotonic()
    told = False
    while pids := [p for p in pids if alive(p)]:
        waited = time.monotonic() - start
        if waited > timeout:
            raise OmnifsError(f"unmounted, but the mount process ({', '.join(map(str, pids))}) "
                              f"is still finishing after {timeout:.0f} s; it goes on in the "
                              "background")
        if not told and waited > 2:
            told = True
            print(f"omnifs: unmounted; waiting for the mount process ({', '.join(map(str, pids))})"
                  " to finish its uploads", file=sys.stderr)
        time.sleep(0.05)


def cmd_import(args) -> int:
    from mountfs.mount import open_stores
    from omnifs.catalog import Catalog
    from omnifs.importer import import_stores

    cfg = _config(args)
    cat = Catalog(cfg.catalog_path())
    stores = open_stores(cfg)
    try:
        res = import_stores(cat, stores.by_name, cfg, snapshots=not args.no_snapshot,
                            progress=lambda m: print(f"omnifs: {m}", file=sys.stderr))
    finally:
        stores.close()
        cat.close()
    if res.snapshot:
        print(f"restored {_n(res.restored, 'file')} from snapshot {res.snapshot}: "
              f"{res.updated} updated from newer objects, {res.renamed} renamed, "
              f"{_n(res.missing, 'replica')} missing")
    print(f"imported {_n(res.files, 'file')}, {_n(res.dirs, 'directory marker')}; "
          f"{res.skipped} already known or skipped; {_n(res.stale, 'stale replica')}; "
          f"{_n(res.queued, 'copy', 'copies')} queued")
    if res.lost:
        shown = ", ".join(res.lost_paths[:5]) + (", ..." if res.lost > 5 else "")
        print(f"omnifs: {_n(res.lost, 'file')} with no copy in any store (kept, unreadable): "
              f"{shown}", file=sys.stderr)
        return 1
    return 1 if res.errors else 0


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def cmd_replicas(args) -> int:
    try:
        text = os.getxattr(args.path, "user.omnifs.replicas").decode()
    except OSError:
        text = None
    if text is None:
        from mountfs.operations import format_replicas
        from omnifs.catalog import Catalog

        cfg = _config(args)
        cat = Catalog(cfg.catalog_path())
        try:
            inode = cat.resolve(args.path)
            if inode.kind != "file":
                raise InvalidInput(f"{args.path} is a {inode.kind}, not a file")
            text = format_replicas(cat, inode)
        finally:
            cat.close()
    sys.stdout.write(text or "no replicas\n")
    return 0


def cmd_replicate(args) -> int:
    from mountfs.mount import open_stores
    from omnifs.cached_content import open_cache
    from omnifs.catalog import Catalog
    from omnifs.replication import drain

    cfg = _config(args)
    cat = Catalog(cfg.catalog_path())
    stores = open_stores(cfg)
    cache = open_cache(cfg)
    tty = sys.stderr.isatty()

    def progress(n: int, total: int, item) -> None:
        if tty:
            print(f"\romnifs: {n}/{total} {item.kind:<9}", end="", file=sys.stderr, flush=True)

    try:
        res = drain(cat, stores.by_name, path=args.path, progress=progress, cache=cache)
        left = cat.pending_count()
    finally:
        if cache is not None:
            cache.close()
        stores.close()
        cat.close()
    if tty:
        print(file=sys.stderr)
    print(f"done {res.done}, failed {res.failed}, waiting {res.deferred}; {left} left in the queue")
    if res.errors:
        print(f"omnifs: first error: {res.errors[0]}", file=sys.stderr)
    return 0 if not res.failed else 1
