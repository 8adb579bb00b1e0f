"""Network profiles: a distance and a link, played on one machine by the faulty wrapper.

Each profile is per-request latency (one round trip, with jitter), a bandwidth
cap shared by all streams to the store, and an error rate (requests failing
with Unavailable or Throttled, as a lossy or overloaded path makes them).
docs/bench.md lists the real-world figures each one approximates. A profile
adds to whatever the store itself takes, so against local servers it stands
for the network between a client and a store.

:func:`measure` derives a profile from a real store: the round trip of small
HEAD requests (their median as latency, their spread as jitter).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass

from omnifs.errors import InvalidInput, NotFound
from omnifs.providers import Provider
from omnifs.providers.errors import Throttled, Unavailable
from omnifs.providers.faulty import FaultyProvider

MB = 1_000_000


@dataclass(frozen=True)
class NetProfile:
    name: str
    #: seconds added before each request (one round trip)
    latency: float
    #: standard deviation of that latency, seconds
    jitter: float
    #: bytes/s shared by all streams, None for no cap
    bandwidth: float | None
    #: share of requests that fail (0..1)
    error_rate: float
    #: "throttled" fails with Throttled (HTTP 503 SlowDown), the others with either kind
    throttling_only: bool = False
    #: what it stands for
    about: str = ""

    def apply(self, provider: Provider, seed: int = 1) -> FaultyProvider:
        kinds = (Throttled,) if self.throttling_only else (Unavailable, Throttled)
        return FaultyProvider(provider, latency=self.latency, jitter=self.jitter,
                              bandwidth=self.bandwidth, error_rate=self.error_rate,
                              error_types=kinds, seed=seed)

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, NetProfile] = {p.name: p for p in (
    NetProfile("lan", 0.0003, 0.0001, 1250 * MB, 0.0,
               about="a client and a store on one 10 GbE LAN"),
    NetProfile("same-region", 0.002, 0.0005, 600 * MB, 0.0,
               about="a VM and the object store of its own cloud region"),
    NetProfile("cross-region", 0.065, 0.005, 100 * MB, 0.0,
               about="two regions of one continent (us-east-1 and us-west-2)"),
    NetProfile("intercontinental", 0.150, 0.015, 25 * MB, 0.0,
               about="Europe and Asia-Pacific (eu-central-1 and ap-northeast-1)"),
    NetProfile("lossy", 0.040, 0.020, 10 * MB, 0.02,
               about="a congested or wireless path: 1-2 % packet loss seen as jitter, "
                     "retransmission stalls and failed requests"),
    NetProfile("throttled", 0.010, 0.002, 2 * MB, 0.01, throttling_only=True,
               about="a capped uplink (16 Mbit/s) to a store that answers some requests "
                     "with 503 SlowDown"),
)}


def profile(name: str) -> NetProfile:
    if name not in PROFILES:
        raise InvalidInput(f"no network profile {name!r} (profiles: {', '.join(PROFILES)})")
    return PROFILES[name]


def measure(provider: Provider, key: str = "omnifs-bench-probe", samples: int = 20) -> NetProfile:
    """A profile measured from ``samples`` HEAD round trips to ``provider``: latency is
    their median, jitter their standard deviation; no cap and no errors (a HEAD of a
    missing key is one round trip all the same)."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        with contextlib.suppress(NotFound):
            provider.head(key)
        times.append(time.perf_counter() - t0)
    return NetProfile(f"measure:{provider.name}", statistics.median(times),
                      statistics.pstdev(times), None, 0.0,
                      about=f"measured from {samples} HEAD requests to {provider.name}")
