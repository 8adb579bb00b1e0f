"""Mount scenarios: the same workloads through a real FUSE mount over each provider.

Per provider (and repeat) one mount serves every mount scenario of the run: the
files of every cell are written straight to the store under a fresh prefix (not
timed), each cell in a directory of its own, then a private config (catalog,
cache, one copy) names that prefix and ``omnifs mount`` mounts it (a new catalog
is filled from what the store holds). Each cell then runs its workload in its
directory; no cell reads another's files, so every read starts from an empty
cache. Then the mount is unmounted and the prefix deleted. Workloads
(``workload``):

* ``seq-read``: each operation reads one whole file in 1 MiB reads;
* ``random-read``: each operation is one 4 KiB ``pread`` at a seeded offset (the files
  are opened before the clock starts);
* ``ls-l``: each operation is one ``ls -l`` of the directory of ``files`` files;
* ``untar``: each operation is one ``tar -x`` of ``files`` files of ``size`` bytes
  into a fresh directory of the mount (every close waits for its upload).

Client CPU is the mount process's CPU time plus this process's during the cell;
peak RSS is the mount process's high-water mark (VmHWM) at the cell's end. Network
profiles do not apply: the mount is another process.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omnifs.errors import OmnifsError
from omnifs.units import human_bytes

from .payload import Payload
from .results import Row
from .runner import HELPERS, Sample, Subject, clean, summarize
from .scenario import Scenario

_SETTINGS_KEYS = ("endpoint", "region", "access_key", "secret_key", "connection_string",
                  "account_url", "credentials_file", "timeout")
READ_SIZE = 4096
#: a workload's operation kind in the results
OP_KIND = {"seq-read": "read", "random-read": "pread", "ls-l": "ls-l", "untar": "untar"}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _config(work: Path, subject: Subject, prefix: str) -> Path:
    s = subject.store.settings
    uri = s.uri + ("" if s.uri.endswith("/") else "/") + (subject.root + prefix).strip("/")
    lines = [f"[catalog]\nurl = {_toml(f'sqlite:///{work}/catalog.db')}",
             f"[cache]\ndir = {_toml(work / 'cache')}\nsize = \"1GiB\"",
             "[replication]\ncopies = 1\nwrite_quorum = 1",
             f"[providers.bench]\nuri = {_toml(uri)}"]
    for key in _SETTINGS_KEYS:
        value = getattr(s, key)
        if value is not None:
            lines.append(f"{key} = {_toml(value)}")
    lines += [f"{k} = {_toml(v)}" for k, v in s.extra.items()]
    cfg = work / "omnifs.toml"
    cfg.write_text("\n".join(lines) + "\n")
    cfg.chmod(0o600)
    return cfg


class Mount:
    """``omnifs mount --foreground`` as a child of this process, over ``cfg`` at ``mp``."""

    def __init__(self, cfg: Path, mp: Path, timeout: float = 120):
        self.mp = mp
        self.log = cfg.parent / "mount.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "omnifs", "--config", str(cfg), "mount", str(mp),
                 "--foreground"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not os.path.ismount(mp):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                tail = (self.log.read_text(errors="replace").strip().splitlines()
                        or ["no output"])[-1]
                raise OmnifsError(f"the mount for the mount scenario did not come up: {tail}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if os.path.ismount(self.mp):
            subprocess.run(["fusermount3", "-u", str(self.mp)], check=False,
                           capture_output=True)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            subprocess.run(["fusermount3", "-u", "-z", str(self.mp)], check=False,
                           capture_output=True)


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _proc_hwm(pid: int) -> int:
    try:
        m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def _files(s: Scenario, size: int) -> list[str]:
    return [f"d/f{i:06d}" for i in range(s.files)]


def _tarball(s: Scenario, size: int, work: Path) -> Path:
    rng = random.Random(s.seed)
    path = work / f"{s.name}-{size}.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(s.files):
            info = tarfile.TarInfo(f"t/d{i // 100:03d}/f{i:06d}")
            info.size, info.mtime = size, 1_700_000_000
            tar.addfile(info, io.BytesIO(rng.randbytes(size)))
    return path


def _ops(s: Scenario, size: int, mp: Path, work: Path,
         opened: list[int]) -> Callable[[int], tuple[str, int]]:
    """The workload's operation number ``n``: (kind, bytes moved); file descriptors it keeps
    open are added to ``opened``."""
    names = _files(s, size)
    rng = random.Random(s.seed)
    if s.workload == "seq-read":
        def seq(n: int) -> tuple[str, int]:
            total = 0
            with open(mp / names[n % len(names)], "rb", buffering=0) as f:
                while chunk := f.read(1024 * 1024):
                    total += len(chunk)
            return "read", total
        return seq
    if s.workload == "random-read":
        # the files are opened once, before the clock starts: each operation is one pread
        fds = {name: os.open(mp / name, os.O_RDONLY) for name in names}
        opened.extend(fds.values())
        offsets = [(fds[names[rng.randrange(len(names))]],
                    rng.randrange(max(size - READ_SIZE, 1))) for _ in range(4096)]

        def rand(n: int) -> tuple[str, int]:
            fd, offset = offsets[n % len(offsets)]
            return "pread", len(os.pread(fd, READ_SIZE, offset))
        return rand
    if s.workload == "ls-l":
        def ls(n: int) -> tuple[str, int]:
            subprocess.run(["ls", "-l", str(mp / "d")], check=True, stdout=subprocess.DEVNULL)
            return "ls-l", 0
        return ls
    tarball = _tarball(s, size, work)

    def untar(n: int) -> tuple[str, int]:
        target = mp / f"untar-{n}"
        target.mkdir()
        subprocess.run(["tar", "-C", str(target), "-xf", str(tarball)], check=True)
        return "untar", s.files * size
    return untar


def _phase(op: Callable[[int], tuple[str, int]], kind: str, first: int, count: int | None,
           duration: float | None, concurrency: int) -> list[Sample]:
    lock = threading.Lock()
    taken = first
    last = None if count is None else first + count
    deadline = None if duration is None else time.perf_counter() + duration
    out: list[Sample] = []

    def worker() -> None:
        nonlocal taken
        while True:
            with lock:
                if (last is not None and taken >= last) or \
                        (deadline is not None and time.perf_counter() >= deadline):
                    return
                n = taken
                taken += 1
            t0 = time.perf_counter()
            try:
                done, nbytes = op(n)
                sample: Sample = (done, time.perf_counter() - t0, None, nbytes)
            except (OSError, subprocess.CalledProcessError) as e:
                sample = (kind, time.perf_counter() - t0, f"{kind} {n}: {e}", 0)
            with lock:
                out.append(sample)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _measure(s: Scenario, subject: Subject, cell: Path, work: Path, pid: int, size: int,
             concurrency: int, repeat: int) -> Row:
    """One cell of ``s`` in the directory ``cell`` of the mount whose process is ``pid``."""
    opened: list[int] = []
    try:
        op = _ops(s, size, cell, work, opened)
        if s.warmup:
            _phase(op, OP_KIND[s.workload], 0, s.warmup, None, concurrency)
        cpu0, mcpu0 = resource.getrusage(resource.RUSAGE_SELF), _proc_cpu(pid)
        t0 = time.perf_counter()
        samples = _phase(op, OP_KIND[s.workload], s.warmup, s.count, s.duration, concurrency)
        seconds = time.perf_counter() - t0
        cpu1, mcpu1 = resource.getrusage(resource.RUSAGE_SELF), _proc_cpu(pid)
    finally:
        for fd in opened:
            os.close(fd)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime) + (mcpu1 - mcpu0)
    return Row(provider=subject.label, scheme=subject.store.location.scheme, size=size,
               concurrency=concurrency, repeat=repeat, cpu_seconds=cpu, peak_rss=_proc_hwm(pid),
               **summarize(samples, seconds))


def _cell_dir(s: Scenario, size: int, concurrency: int) -> str:
    return f"{s.name}/{size}-{concurrency}"


def run_mounts(plans: list[Scenario], subjects: list[Subject], run_id: str, repeats: int,
               progress: Callable[[str], None] | None = None) -> dict[str, list[Row]]:
    """Every mount scenario of ``plans``, provider after provider, with one mount per
    provider and repeat: each cell's files (its own directory, so the cache is cold for
    them) are written to the store before the mount starts and imports them."""
    rows: dict[str, list[Row]] = {s.name: [] for s in plans}
    for repeat in range(repeats):
        for subject in subjects:
            prefix = f"omnifs-bench/{run_id}/{repeat}/"
            base = f"{subject.root}{prefix}"
            work = Path(tempfile.mkdtemp(prefix="omnifs-bench-mount-"))
            mp = work / "mnt"
            mp.mkdir()
            mount = None
            try:
                if subject.store.location.scheme == "file":  # a file:// store's root must exist
                    Path(subject.store.location.path, base).mkdir(parents=True, exist_ok=True)
                writes = [(f"{base}{_cell_dir(s, size, c)}/{name}", size, s.seed)
                          for s in plans if s.workload != "untar" for size, c in s.cells()
                          for name in _files(s, size)]
                store = subject.store
                with ThreadPoolExecutor(HELPERS) as pool:
                    list(pool.map(lambda w, st=store: st.write(w[0], Payload(w[1], w[2]), w[1]),
                                  writes))
                mount = Mount(_config(work, subject, prefix), mp)
                for s in plans:
                    for size, concurrency in s.cells():
                        cell = mp / _cell_dir(s, size, concurrency)
                        cell.mkdir(parents=True, exist_ok=True)
                        row = _measure(s, subject, cell, work, mount.pid, size, concurrency,
                                       repeat)
                        rows[s.name].append(row)
                        if progress:
                            progress(f"{s.name} {subject.label} {human_bytes(size)} "
                                     f"c={concurrency} r={repeat}: {row.ops_per_s:.1f} ops/s, "
                                     f"{row.mb_per_s:.2f} MB/s, p99 "
                                     f"{row.latency.p99 * 1000:.1f} ms, {row.errors} errors")
            finally:
                if mount is not None:
                    mount.close()
                clean(subject.store, base)
                shutil.rmtree(work, ignore_errors=True)
    return rows
