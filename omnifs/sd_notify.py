"""sd_notify without a dependency: one datagram to $NOTIFY_SOCKET.

systemd's Type=notify services say READY=1 once they serve, WATCHDOG=1 more
often than WatchdogSec, and STOPPING=1 when draining. Outside systemd the
variable is unset and every call is a cheap no-op, so neither the daemon nor
the mount needs to know how it was started. It lives in the core because
both use it and they never import each other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(message: str, *, env: dict[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. "READY=1"); True when a socket was there to receive it."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WatchdogSec, or None when not watched."""
    env = env if env is not None else os.environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.1)
    except ValueError:
        return None
