"""What a benchmark will cost on real clouds, from the shared price tables, before it runs.

Counted per provider: the data set's PUTs, every warm-up and measured
operation of the scenario's seeded sequence (reads: GET, HEAD; writes: PUT,
COPY, and a multipart upload's parts plus its start and end; lists: one
per page of the data set), the clean-up's LIST, the bytes read back out of
the cloud (internet egress) and the bytes stored for an hour. A scenario
bounded by a duration is counted at :data:`ASSUMED_RATE` operations per second
per thread, and a mount scenario by the blocks its mount reads: estimates, said
as such. Local stores (``file://``, or an endpoint on
this machine) cost nothing and need no confirmation.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from omnifs.config import Config
from omnifs.policy.costs import egress_cost, request_cost, rounded, storage_cost
from omnifs.prices import store_price

from .plan import counted
from .runner import READS, Subject
from .scenario import Scenario

#: operations per second per thread assumed for a scenario bounded by a duration
ASSUMED_RATE = 50
#: the mount's cache block (Config.cache_block_size): one GET per block read
BLOCK = 4 * 1024 * 1024
HOUR = Decimal(1) / Decimal(720)


@dataclass(frozen=True)
class Estimate:
    provider: str
    requests: int
    egress_bytes: int
    cost: Decimal
    currency: str
    #: False when the scenario's duration makes the count a guess
    exact: bool


def is_local(subject: Subject) -> bool:
    """A store on this machine: ``file://`` or an endpoint on a loopback address."""
    settings = subject.store.settings
    if subject.store.location.scheme == "file":
        return True
    endpoint = settings.endpoint or settings.account_url or ""
    if not endpoint and settings.connection_string:
        for part in settings.connection_string.split(";"):
            if part.lower().startswith("blobendpoint="):
                endpoint = part.split("=", 1)[1]
    host = urlsplit(endpoint).hostname if endpoint else None
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def estimate(s: Scenario, subject: Subject, config: Config, repeats: int) -> Estimate:
    name = subject.store.name
    price = store_price(subject.store.location.scheme, subject.store.settings.region,
                        override=config.prices.get(name), name=name)
    reads = writes = lists = 0
    egress = stored = 0
    exact = s.count is not None and s.kind == "objects"
    page = max(price.list_page_size, 1)
    for size, concurrency in s.cells() if s.kind == "objects" else ():
        n = s.warmup + (s.count if s.count is not None
                        else int(s.duration or 0) * ASSUMED_RATE * concurrency)
        ops = counted(s, size, concurrency, n)
        parts = -(-size // (16 * 1024 * 1024))
        data_set = s.objects if READS & set(ops) else 0
        writes += data_set + ops.get("put", 0) + ops.get("copy", 0) \
            + ops.get("multipart", 0) * (parts + 2)
        reads += ops.get("get", 0) + ops.get("range_get", 0) + ops.get("head", 0)
        lists += ops.get("list", 0) * -(-s.objects // page) + 1
        egress += ops.get("get", 0) * size + ops.get("range_get", 0) * min(s.range, size)
        stored = max(stored, (data_set + ops.get("put", 0) + ops.get("multipart", 0)
                              + ops.get("copy", 0)) * size)
    for size, concurrency in s.cells() if s.kind == "mount" else ():
        n = s.warmup + (s.count if s.count is not None
                        else int(s.duration or 0) * ASSUMED_RATE * concurrency)
        blocks = -(-size // BLOCK)
        if s.workload == "untar":
            writes += s.files * n
            stored = max(stored, s.files * n * size)
        else:
            # the files are written once; a read workload's mount reads each block of a
            # file at most once per cell (its cache keeps it); ls -l reads none
            writes += s.files
            lists += -(-s.files // page) + 1
            stored = max(stored, s.files * size)
            if s.workload != "ls-l":
                reads += s.files * blocks
                egress += s.files * size
    reads, writes, lists, egress = (v * repeats for v in (reads, writes, lists, egress))
    tier = price.tier_price
    cost = (request_cost(tier, reads=reads, writes=writes, lists=lists)
            + egress_cost(price, None, egress) + storage_cost(tier, stored, HOUR))
    return Estimate(subject.label, reads + writes + lists, egress, rounded(cost),
                    price.currency, exact)
