"""The mount works inside the sandbox its systemd unit gives it.

There is no systemd to start units on the test machines, so the unit's
process-level restrictions are applied here the way systemd applies them and
the mount is driven through them: the capability bounding set and
NoNewPrivileges (util-linux ``setpriv``), and a seccomp filter built from the
unit's SystemCallFilter= (its groups expanded by ``systemd-analyze
syscall-filter``), RestrictAddressFamilies=, RestrictNamespaces= and
MemoryDenyWriteExecute= (libseccomp's Python binding, ``python3-seccomp``).
DevicePolicy= (a cgroup rule) is not reproduced.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "omnifs-mount@.service"
SYSTEM_PYTHON = "/usr/bin/python3"


def _have_seccomp() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True,
                          check=False).returncode == 0


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the unit runs as root"),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("setpriv") is None,
                       reason="needs systemd-analyze and setpriv"),
    pytest.mark.skipif(not _have_seccomp(), reason="needs python3-seccomp (apt-get install "
                                                   "python3-seccomp)"),
]

#: run by the system Python: load the filter described in argv[1], then exec argv[2:]
LAUNCHER = r"""
import errno, json, os, sys
import seccomp
spec = json.loads(sys.argv[1])
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(spec["errno"]))
A, ALLOW = seccomp.Arg, seccomp.ALLOW
special = {"socket", "clone", "clone3", "unshare", "setns", "mmap", "mprotect",
           "pkey_mprotect", "shmat"}
for name in spec["allow"]:
    if name not in special:
        try:
            f.add_rule(ALLOW, name)
        except (RuntimeError, ValueError):
            pass  # not a system call on this architecture (the *_time64 family)
for family in spec["families"]:
    f.add_rule(ALLOW, "socket", A(0, seccomp.EQ, family))
NS = 0x7E020080  # CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}
f.add_rule(ALLOW, "clone", A(0, seccomp.MASKED_EQ, NS if spec["no_ns"] else 0, 0))
if spec["no_ns"]:
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # what systemd does: glibc falls back
else:
    for name in ("clone3", "unshare", "setns"):
        f.add_rule(ALLOW, name)
W, X = 2, 4
if spec["mdwe"]:
    for prot in (0, W, X):
        f.add_rule(ALLOW, "mmap", A(2, seccomp.MASKED_EQ, W | X, prot))
    for name in ("mprotect", "pkey_mprotect"):
        f.add_rule(ALLOW, name, A(2, seccomp.MASKED_EQ, X, 0))
    f.add_rule(ALLOW, "shmat", A(2, seccomp.MASKED_EQ, 0o100000, 0))
else:
    for name in ("mmap", "mprotect", "pkey_mprotect", "shmat"):
        f.add_rule(ALLOW, name)
os.umask(int(spec["umask"], 8))
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def service_settings(path: Path) -> dict[str, list[str]]:
    """[Service] key -> every value it is given, in order."""
    out: dict[str, list[str]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def expand(name: str) -> set[str]:
    """System calls of ``@group`` (nested groups included) or of one call."""
    if not name.startswith("@"):
        return {name}
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, check=True).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            calls |= expand(word)
    return calls


def allowed_calls(filters: list[str]) -> set[str]:
    """systemd's rule: an allow list starts from @default; ~lines then take calls away."""
    allowed: set[str] = set()
    for i, value in enumerate(filters):
        deny = value.startswith("~")
        names = set().union(*(expand(n) for n in value.lstrip("~").split()))
        if i == 0 and not deny:
            allowed |= expand("@default")
        allowed = allowed - names if deny else allowed | names
    return allowed


def sandbox_argv(settings: dict[str, list[str]]) -> list[str]:
    caps = settings["CapabilityBoundingSet"][-1].split()
    assert settings.get("NoNewPrivileges") == ["yes"]
    families = [getattr(socket, f) for f in settings["RestrictAddressFamilies"][-1].split()]
    spec = {"allow": sorted(allowed_calls(settings["SystemCallFilter"])),
            "errno": getattr(errno, settings["SystemCallErrorNumber"][-1]),
            "families": families, "no_ns": settings.get("RestrictNamespaces") == ["yes"],
            "mdwe": settings.get("MemoryDenyWriteExecute") == ["yes"],
            "umask": settings["UMask"][-1]}
    bounding = "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    return ["setpriv", "--no-new-privs", "--bounding-set", bounding, "--inh-caps", "-all",
            SYSTEM_PYTHON, "-c", LAUNCHER, json.dumps(spec)]


def test_the_mount_serves_under_its_units_restrictions(make_mount, tmp_path):
    settings = service_settings(UNIT)
    m = make_mount(mount=False)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT),
           "NOTIFY_SOCKET": str(tmp_path / "notify"), "PYTHONUNBUFFERED": "1"}
    argv = [*sandbox_argv(settings), sys.executable, "-P", "-m", "omnifs", "mount", str(m.mp),
            "--foreground", "--config", str(m.config)]
    proc = subprocess.Popen(argv, cwd="/", env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        try:
            ready = notify.recv(4096).decode()
        except TimeoutError:
            proc.kill()
            raise AssertionError(proc.communicate()[1].decode()) from None
        assert ready.startswith("READY=1"), ready
        status = Path(f"/proc/{proc.pid}/status").read_text()
        cap_eff = int(next(ln for ln in status.splitlines() if ln.startswith("CapEff")).split()[1],
                      16)
        assert cap_eff == 1 << 21, hex(cap_eff)  # CAP_SYS_ADMIN alone
        assert "Seccomp:\t2" in status and "NoNewPrivs:\t1" in status
        # ordinary use: create, write, read, rename, hard link, xattr, list, delete
        (m.mp / "d").mkdir()
        (m.mp / "d" / "f").write_bytes(b"x" * 5_000_000)
        os.rename(m.mp / "d" / "f", m.mp / "d" / "g")
        os.link(m.mp / "d" / "g", m.mp / "h")
        os.setxattr(m.mp / "h", "user.k", b"v")
        assert (m.mp / "d" / "g").read_bytes() == b"x" * 5_000_000
        assert sorted(os.listdir(m.mp)) == ["d", "h"]
        assert b"synced" in os.getxattr(m.mp / "h", "user.omnifs.replicas")
        os.unlink(m.mp / "h")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err and b"Operation not permitted" not in err, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    assert not os.path.ismount(m.mp)
    # what it wrote is private (UMask=0077)
    cache = m.root / "cache"
    assert oct(os.stat(cache / "staging").st_mode & 0o777) == "0o700"
    assert m.homes("d/g")  # uploaded before the mount returned


def test_the_sandbox_refuses_what_the_unit_refuses(tmp_path):
    """The harness above is meaningful: outside what the unit allows, calls fail."""
    probe = (
        "import ctypes, errno, os, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def unshare():\n"
        "    if libc.unshare(0x20000) != 0:\n        raise OSError(ctypes.get_errno(), 'unshare')\n"
        "def code(f):\n"
        "    try:\n        f()\n    except OSError as e:\n        return e.errno\n    return 0\n"
        f"open({str(tmp_path / 'f')!r}, 'w').close()\n"
        f"print(code(lambda: os.chown({str(tmp_path / 'f')!r}, 1, 1)))\n"
        "print(code(lambda: socket.sethostname('x')))\n"
        "print(code(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)))\n"
        "print(code(unshare))\n"
        f"print(code(lambda: os.stat({str(tmp_path)!r})))\n"
    )
    argv = [*sandbox_argv(service_settings(UNIT)), sys.executable, "-c", probe]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    chown, hostname, packet, unshare, ok = map(int, proc.stdout.split())
    assert chown == hostname == unshare == errno.EPERM and packet != 0 and ok == 0
    assert oct(os.stat(tmp_path / "f").st_mode & 0o777) == "0o600"  # UMask=0077
