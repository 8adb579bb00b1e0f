"""How fast can any pyfuse3 filesystem hand a file to a reader on this machine?

The ceiling behind bench/readpath.py's row 2: a read-only pyfuse3 + trio filesystem with
one regular file whose bytes are one ``bytes`` object in memory, each FUSE
read answered with a zero-copy slice (no cache, no store, no catalog). It is
mounted with our mount's options (``mountfs.mount.fuse_options``, read-ahead
raised with ``raise_read_ahead`` so the kernel sends 1 MiB reads, direct_io
off, same attribute block size), the page cache is dropped, and ``cat FILE >
/dev/null`` is timed. Whatever our mount does on top can only be slower.

    .venv/bin/python bench/fuse_ceiling.py --size 256 --runs 5
    .venv/bin/python bench/fuse_ceiling.py --size 256 --direct-io   # variants, not our mount's

With ``--url`` the bytes are not in memory beforehand: every open starts one
plain GET of that URL (urllib3, read into one buffer in a thread, no cache, no
catalog) and each FUSE read waits until the stream has brought its bytes. That
is the least any pyfuse3 filesystem streaming from a store must do, so it
bounds a cold read through our mount (bench/readpath.py's row 2 measures it in
the same run as ours).

Imported: ``measure(size_bytes, runs)`` serves the file from a child process
(pyfuse3 keeps global state, the caller's process stays free of it) and
returns the ``cat`` times in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like stdlib modules (copy.py): never import from it
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

MiB = 1024 * 1024
FILE_NAME = "data.bin"
FILE_INODE = 2  # pyfuse3.ROOT_INODE is 1
READY = "ready"


# -- the child: serves the file until SIGTERM/SIGINT ---------------------------------------------

class _Streamed:
    """The object at ``url`` arriving by one GET into ``buf``; readers wait for their bytes.

    One open at a time (the bench's ``cat``): every open's stream fills the same buffer.
    """

    PIECE = MiB
    POLL = 0.0003

    def __init__(self, url: str, buf: memoryview) -> None:
        import threading

        import trio

        self._trio = trio
        self.size = len(buf)
        self.buf = buf
        self.filled = 0
        self.failed = False
        threading.Thread(target=self._run, args=(url,), daemon=True).start()

    def _run(self, url: str) -> None:
        import urllib3

        try:
            r = urllib3.PoolManager().request("GET", url, preload_content=False)
            if r.status != 200:
                raise OSError(f"GET answered {r.status}")
            fp = r._fp  # http.client's response: readinto without a copy
            while self.filled < self.size:
                n = fp.readinto(self.buf[self.filled:self.filled + self.PIECE])
                if not n:
                    raise OSError("stream ended early")
                self.filled += n
        except Exception as e:  # noqa: BLE001 - reported once, readers get EIO
            print(f"fuse_ceiling stream: {e}", file=sys.stderr)
            self.failed = True

    async def until(self, need: int) -> bool:
        """Poll every 0.3 ms: the simplest wait, and the stream thread does nothing for it."""
        while self.filled < need and not self.failed:
            await self._trio.sleep(self.POLL)
        return not self.failed


def serve(mountpoint: str, size: int, *, direct_io: bool, keep_cache: bool,
          extra_options: list[str], read_ahead_kb: int | None, url: str | None = None) -> None:
    """Mount, print READY on stdout, serve until signalled, always unmount."""
    import errno
    import stat

    import pyfuse3
    import trio

    from omnifs.config import Config
    from omnifs.mountfs.mount import READ_AHEAD_KB, fuse_options, raise_read_ahead

    # with --url, the buffer every open's stream fills (made and touched now, as our
    # mount makes its buffers when it starts: 0.15 s of page faults otherwise)
    data = memoryview(bytearray(size) if url else os.urandom(size))
    streams: dict[int, _Streamed] = {}
    now_ns = time.time_ns()

    def attrs(inode: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.entry_timeout = a.attr_timeout = 300
        if inode == pyfuse3.ROOT_INODE:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFDIR | 0o755, 2, 0
        else:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o444, 1, size
        a.st_blksize = 1 << 20  # as mountfs/handler_base.py: cat reads 1 MiB at a time
        a.st_blocks = (a.st_size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = now_ns
        return a

    class Ops(pyfuse3.Operations):
        async def getattr(self, inode, ctx=None):
            if inode not in (pyfuse3.ROOT_INODE, FILE_INODE):
                raise pyfuse3.FUSEError(errno.ENOENT)
            return attrs(inode)

        async def lookup(self, parent_inode, name, ctx=None):
            if parent_inode != pyfuse3.ROOT_INODE or name != FILE_NAME.encode():
                raise pyfuse3.FUSEError(errno.ENOENT)
            return attrs(FILE_INODE)

        async def opendir(self, inode, ctx):
            return inode

        async def readdir(self, fh, start_id, token):
            if start_id == 0:
                pyfuse3.readdir_reply(token, FILE_NAME.encode(), attrs(FILE_INODE), 1)

        async def open(self, inode, flags, ctx):
            if inode != FILE_INODE:
                raise pyfuse3.FUSEError(errno.EISDIR)
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise pyfuse3.FUSEError(errno.EROFS)
            if url is None:
                return pyfuse3.FileInfo(fh=inode, direct_io=direct_io, keep_cache=keep_cache)
            fh = len(streams) + 1
            streams[fh] = _Streamed(url, data)
            return pyfuse3.FileInfo(fh=fh, direct_io=direct_io, keep_cache=keep_cache)

        async def read(self, fh, off, length):
            if url is None:
                return data[off:off + length]
            stream = streams[fh]
            end = min(off + length, size)
            if not await stream.until(end):
                raise pyfuse3.FUSEError(errno.EIO)
            return stream.buf[off:end]

        async def release(self, fh):
            streams.pop(fh, None)

    async def main() -> None:
        opts = fuse_options(Config()) | set(extra_options)
        pyfuse3.init(Ops(), mountpoint, opts)
        try:
            async with trio.open_nursery() as nursery:
                async def until_unmounted() -> None:
                    await pyfuse3.main()
                    nursery.cancel_scope.cancel()

                async def until_parent_gone() -> None:
                    """stdin is a pipe from measure(): EOF means the parent ended, however."""
                    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
                    pyfuse3.terminate()

                nursery.start_soon(until_unmounted)
                await trio.to_thread.run_sync(
                    raise_read_ahead, mountpoint, read_ahead_kb or READ_AHEAD_KB,
                    abandon_on_cancel=True)
                print(READY, flush=True)
                nursery.start_soon(until_parent_gone)
                with trio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        pyfuse3.terminate()
                        break
        finally:
            pyfuse3.close(unmount=True)

    trio.run(main)


# -- the parent: starts the child, times cat, stops the child ------------------------------------

def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def measure(size_bytes: int, runs: int, *, direct_io: bool = False, keep_cache: bool = False,
            extra_options: tuple[str, ...] = (), read_ahead_kb: int | None = None,
            url: str | None = None, before_each: Callable[[], None] | None = None) -> list[float]:
    """Seconds of ``cat FILE > /dev/null`` (page cache dropped before each) over a bare mount.

    The defaults are our mount's configuration; the keyword arguments are
    variants for comparison only, except ``url`` (stream the bytes from there,
    a new GET per open) and ``before_each`` (called instead of dropping the
    page cache before each read).
    """
    # a real path: mount_device() matches it against /proc/self/mountinfo
    mp = Path(os.path.realpath(tempfile.mkdtemp(prefix="omnifs-fuse-ceiling-")))
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve", str(mp),
            "--size-bytes", str(size_bytes)]
    if direct_io:
        argv.append("--direct-io")
    if keep_cache:
        argv.append("--keep-cache")
    for o in extra_options:
        argv += ["--option", o]
    if read_ahead_kb:
        argv += ["--read-ahead-kb", str(read_ahead_kb)]
    if url:
        argv += ["--url", url]
    # its own process group: Ctrl-C is ours to handle; it unmounts on SIGTERM or when its
    # stdin closes (we ended, however)
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, process_group=0)
    try:
        line = child.stdout.readline().strip()  # after the 'ready' line the pipe is never read
        if line != READY:
            raise RuntimeError(f"bare pyfuse3 mount did not start (exit {child.wait(timeout=30)})")
        times = []
        for _ in range(runs):
            (before_each or drop_caches)()
            t0 = time.perf_counter()
            subprocess.run(["cat", str(mp / FILE_NAME)], stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        return times
    finally:
        if child.poll() is None:
            child.stdin.close()
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
        if os.path.ismount(mp):
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], check=False)
        with contextlib.suppress(OSError):
            mp.rmdir()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="file size in MiB (default 256)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--direct-io", action="store_true", help="variant: direct_io on (not ours)")
    ap.add_argument("--keep-cache", action="store_true", help="variant: keep_cache on open")
    ap.add_argument("--option", action="append", default=[],
                    help="variant: an extra FUSE mount option, e.g. max_read=131072")
    ap.add_argument("--read-ahead-kb", type=int, default=None,
                    help="variant: bdi read_ahead_kb (ours: 4096)")
    ap.add_argument("--url", help="stream the file from this URL (one GET per open) instead "
                                  "of serving it from memory")
    ap.add_argument("--serve", metavar="MOUNTPOINT", help=argparse.SUPPRESS)
    ap.add_argument("--size-bytes", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        try:
            serve(args.serve, args.size_bytes, direct_io=args.direct_io,
                  keep_cache=args.keep_cache, extra_options=args.option,
                  read_ahead_kb=args.read_ahead_kb, url=args.url)
        except KeyboardInterrupt:
            pass
        except (OSError, RuntimeError) as e:  # one line; the parent reports the failed start
            print(f"fuse_ceiling (serving {args.serve}): {e}", file=sys.stderr)
            return 1
        return 0
    if os.geteuid() != 0:
        print("needs root (FUSE mount, drop_caches)", file=sys.stderr)
        return 2
    if args.size <= 0 or args.runs <= 0:
        print("--size and --runs must be positive", file=sys.stderr)
        return 2
    size = args.size * MiB
    try:
        times = measure(size, args.runs, direct_io=args.direct_io, keep_cache=args.keep_cache,
                        extra_options=tuple(args.option), read_ahead_kb=args.read_ahead_kb,
                        url=args.url)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"fuse_ceiling: {e}", file=sys.stderr)
        return 1
    med = statistics.median(times)
    variant = ", ".join(filter(None, ["direct_io" if args.direct_io else "",
                                      "keep_cache" if args.keep_cache else "",
                                      *args.option,
                                      f"read_ahead_kb={args.read_ahead_kb}"
                                      if args.read_ahead_kb else "",
                                      "streamed from --url" if args.url else ""]))
    variant = variant or "our mount's options"
    print(f"bare pyfuse3 read of {args.size} MiB ({variant}): median {med:.3f} s "
          f"({args.size / med:.0f} MiB/s) over {args.runs} runs "
          f"[{' '.join(f'{t:.3f}' for t in times)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
