"""``omnifs mount/umount/import/replicas/replicate``: the mount and its catalog.

``mount`` runs in the background by default: it starts itself again with
``--foreground`` in a new session and waits until that child reports the
mount ready (through a pipe), so the shell gets its prompt back only when the
mount point can be used. The child runs as ``python -P -m omnifs`` with this
omnifs's directory on PYTHONPATH: the same code as the parent, whatever
folders the current directory holds.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from omnifs.errors import InvalidInput, NotFound, OmnifsError
from omnifs.mounts import FSTYPE, canonical, mount_at, omnifs_mount_containing
from omnifs.printable import escape_controls
from omnifs.private import tighten, tighten_owned
from omnifs.processes import alive, mount_processes
from omnifs.units import plural

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

    p = sub.add_parser("replicas", help="show where a file's replicas are (every file under "
                                        "a directory)",
                       description="PATH: a file or directory inside a mount, or a path in the "
                                   "namespace. For a directory: each file under it with its "
                                   "replicas, then how many files have how many current copies.")
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
    from omnifs.mountfs.mount import clear_stale_mount, serve

    clear_stale_mount(mp)
    if os.path.ismount(mp):
        raise InvalidInput(f"{mp} is already a mount point; `omnifs umount {mp}` first")
    if not os.path.isdir(mp):
        raise InvalidInput(f"mount point {mp} is not a directory (mkdir it first)")
    _refuse_mount_over_own_files(cfg, mp)
    if args.ready_fd is None:  # the background child finds what its parent tightened
        tighten_owned(cfg, skip=[mp])
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


def _refuse_mount_over_own_files(cfg, mountpoint: str) -> None:
    """The mount point may not hold, or lie in, the directories the mount itself writes.

    A store, the cache or the catalog under the mount point would be written
    through the mount by the mount (a deadlock); a mount point inside a store
    would be listed as the store's content.
    """
    from omnifs.private import owned_paths

    mp = os.path.realpath(mountpoint)
    trees, files = owned_paths(cfg)
    for path in (*trees, *files[:1]):
        real = os.path.realpath(path)
        if real == mp or real.startswith(mp.rstrip("/") + "/"):
            raise InvalidInput(f"{path} is inside the mount point {mountpoint}: omnifs would "
                               "write it through itself; mount somewhere else")
    for path in trees[1:]:  # the stores
        real = os.path.realpath(path).rstrip("/")
        if mp.startswith(real + "/"):
            raise InvalidInput(f"mount point {mountpoint} is inside the store {path}: mount "
                               "somewhere else")


def child_command() -> tuple[list[str], dict[str, str]]:
    """``python -P -m omnifs`` running this very omnifs, and its environment.

    ``-P`` keeps the current directory off ``sys.path``: a folder named
    ``omnifs`` there (a clone in ~/omnifs) would be imported instead.
    PYTHONPATH names the directory this omnifs was imported from (a source
    checkout stays itself), unless it is a site directory already on the path.
    """
    import site

    import omnifs

    root = str(Path(omnifs.__file__).resolve().parent.parent)
    env = dict(os.environ)
    sites = {str(Path(p).resolve()) for p in [*site.getsitepackages(),
                                               site.getusersitepackages()]}
    if root not in sites:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-P", "-m", "omnifs"], env


def _background(args, cfg) -> int:
    r, w = os.pipe()
    log_path = Path(args.log) if args.log else cfg.cache_dir / "mount.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv, env = child_command()
    if cfg.path is not None:
        argv += ["--config", str(Path(cfg.path).resolve())]
    if args.debug:
        argv.append("--debug")
    argv += ["mount", os.path.abspath(args.mountpoint), "--foreground", "--ready-fd", str(w)]
    if args.writeback:
        argv.append("--writeback")
    with open(log_path, "ab") as logf:
        tighten([], [log_path])  # a --log file from before may be wider; it holds file names
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                 pass_fds=(w,), start_new_session=True, env=env)
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
    mp = canonical(args.mountpoint)
    mounted = mount_at(mp)
    if mounted is None:
        raise InvalidInput(f"{args.mountpoint} is not mounted")
    if mounted.fstype != FSTYPE:
        raise InvalidInput(f"{args.mountpoint} is not an omnifs mount (it is {mounted.fstype}); "
                           "use umount")
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
    from omnifs.catalog import Catalog
    from omnifs.importer import import_stores
    from omnifs.mountfs.mount import open_stores

    cfg = _config(args)
    cat = Catalog(cfg.catalog_target())
    stores = open_stores(cfg)
    try:
        res = import_stores(cat, stores.by_name, cfg, snapshots=not args.no_snapshot,
                            progress=lambda m: print(f"omnifs: {m}", file=sys.stderr))
    finally:
        stores.close()
        cat.close()
    if res.snapshot:
        print(f"restored {plural(res.restored, 'file')} from snapshot {res.snapshot}: "
              f"{res.updated} updated from newer objects, {res.renamed} renamed, "
              f"{plural(res.missing, 'replica')} missing")
    print(f"imported {plural(res.files, 'file')}, {plural(res.dirs, 'directory marker')}; "
          f"{res.skipped} already known or skipped; {plural(res.stale, 'stale replica')}; "
          f"{plural(res.queued, 'copy', 'copies')} queued")
    if res.lost:
        shown = ", ".join(res.lost_paths[:5]) + (", ..." if res.lost > 5 else "")
        print(f"omnifs: {plural(res.lost, 'file')} with no copy in any store (kept; only a "
              f"local cache may still hold their bytes): {shown}", file=sys.stderr)
        return 1
    return 1 if res.errors else 0


def cmd_replicas(args) -> int:
    """One file's replicas; for a directory, every file's, then a count of current copies."""
    from omnifs.catalog import Catalog
    from omnifs.mountfs.xattrs import XATTR_REPLICAS, format_replicas

    path = args.path
    if os.path.exists(path) and omnifs_mount_containing(path) is not None:
        if not os.path.isdir(path):
            sys.stdout.write(os.getxattr(path, XATTR_REPLICAS).decode() or "no replicas\n")
            return 0
        return _print_tree(path, _tree_in_mount(path, XATTR_REPLICAS))

    from omnifs.catalog.backend import describe

    cfg = _config(args)
    cat = Catalog(cfg.catalog_target(), create=False)
    try:
        try:
            inode = cat.ns.resolve(path)
        except NotFound:
            if os.path.exists(path):
                raise InvalidInput(f"{path} is neither inside an omnifs mount nor a path in "
                                   f"the namespace of {describe(cfg.catalog_target())}") from None
            raise
        if inode.kind == "file":
            sys.stdout.write(format_replicas(cat, inode) or "no replicas\n")
            return 0
        if inode.kind != "dir":
            raise InvalidInput(f"{path} is a {inode.kind}: it has no replicas")
        base = cat.ns.path_of(inode.id) or ""
        tree = [(name[len(base):].lstrip("/"), format_replicas(cat, child))
                for ino, name in sorted(cat.ns.files_under(inode.id), key=lambda f: f[1])
                if (child := cat.ns.get(ino)) is not None]
    finally:
        cat.close()
    return _print_tree(path, tree)


def _tree_in_mount(directory: str, xattr: bytes) -> list[tuple[str, str]]:
    """(path relative to ``directory``, replicas text) of every file under it, through the mount."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            try:
                text = os.getxattr(full, xattr, follow_symlinks=False).decode()
            except OSError:  # a symlink, or gone meanwhile: it has no replicas of its own
                continue
            found.append((os.path.relpath(full, directory), text))
    return found


def _print_tree(directory: str, tree: list[tuple[str, str]]) -> int:
    by_copies: dict[int, int] = {}
    for name, text in tree:
        print(escape_controls(name))
        current = 0
        for line in text.splitlines():
            print(f"  {escape_controls(line)}")
            fields = line.split()
            current += len(fields) > 3 and fields[1] == "synced" and fields[3] == "current"
        by_copies[current] = by_copies.get(current, 0) + 1
    if not tree:
        print(f"no files under {directory}")
        return 0
    counts = ", ".join(f"{n} with {plural(k, 'current copy', 'current copies')}"
                       for k, n in sorted(by_copies.items(), reverse=True))
    print(f"{plural(len(tree), 'file')} under {directory}: {counts}")
    return 0


def cmd_replicate(args) -> int:
    from omnifs.cached_content import open_cache
    from omnifs.catalog import Catalog
    from omnifs.dr.versions import keeper_for
    from omnifs.mountfs.mount import open_stores
    from omnifs.replication import drain

    cfg = _config(args)
    keep = keeper_for(cfg.dr)  # [dr] keep_versions_for: before any store is touched
    cat = Catalog(cfg.catalog_target(), create=False)  # no catalog: nothing was ever queued
    stores = open_stores(cfg)
    cache = open_cache(cfg)
    tty = sys.stderr.isatty()

    def progress(n: int, total: int, item) -> None:
        if tty:
            print(f"\romnifs: {n}/{total} {item.kind:<9}", end="", file=sys.stderr, flush=True)

    try:
        res = drain(cat, stores.by_name, path=args.path, progress=progress, cache=cache,
                    keep=keep)
        left = cat.work.pending_count()
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
