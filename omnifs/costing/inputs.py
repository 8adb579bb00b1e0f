"""What the cost engine reads: store prices, placement rules, files, the month.

Everything here comes from the config and the catalog; the decisions are
``omnifs.policy``'s.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from omnifs.policy.costs import StorePrice
from omnifs.policy.placement import allowed, rules_from_config, views_from_config
from omnifs.policy.recommend import FileRecord

from ..catalog import Catalog, StoredFile
from ..catalog.access import day_of
from ..config import Config
from ..migration.costing import price_of

#: days of read history the recommendations price the files' reads from
WINDOW_DAYS = 30


def store_prices(config: Config) -> dict[str, StorePrice]:
    """Every configured store's prices (its table's region and tier, ``[prices.NAME]``);
    a store whose provider table disables ``tiers`` takes no tier moves."""
    out = {}
    for name, s in config.providers.items():
        price = price_of(s, config.prices)
        if "tiers" in (s.extra.get("disable") or ()):
            price = replace(price, tiering=False)
        out[name] = price
    return out


def placement_rule(config: Config) -> Callable[[str, str], bool] | None:
    """``allowed(path, store)`` of the governance rules; None when there are none."""
    rules = rules_from_config(config.governance_rules)
    if not rules:
        return None
    views = views_from_config(config.provider_tables)
    cache: dict[str, frozenset[str]] = {}

    def ok(path: str, store: str) -> bool:
        names = cache.get(path)
        if names is None:
            names = cache[path] = frozenset(v.name for v in allowed(path, views, rules))
        return store in names

    return ok


@dataclass(frozen=True)
class Month:
    """The current UTC calendar month, in days since 1970-01-01."""

    first_day: int
    today: int
    label: str

    @classmethod
    def of(cls, now: float) -> Month:
        d = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
        first = d.replace(day=1)
        epoch = datetime.date(1970, 1, 1)
        return cls((first - epoch).days, (d - epoch).days, first.strftime("%Y-%m"))

    @property
    def days_so_far(self) -> int:
        return self.today - self.first_day + 1


class Paths:
    """Paths of files from their parent and name, each directory's path looked up once."""

    def __init__(self, cat: Catalog):
        self._cat = cat
        self._dirs: dict[int, str] = {}

    def of(self, f: StoredFile) -> str:
        base = self._dirs.get(f.parent)
        if base is None:
            base = self._dirs[f.parent] = self._cat.ns.path_of(f.parent) or ""
        return f"/{base}/{f.name}" if base else f"/{f.name}"


def stored_files(cat: Catalog, since_day: int) -> Iterator[tuple[str, StoredFile]]:
    """(path, file) of every file with at least one synced copy, reads from ``since_day``."""
    paths = Paths(cat)
    for f in cat.cost.files(since_day):
        if f.replicas:
            yield paths.of(f), f


def file_records(cat: Catalog, now: float | None = None,
                 skip: Callable[[int], bool] | None = None) -> Iterator[FileRecord]:
    """The engine's records: every stored file, its reads over the last :data:`WINDOW_DAYS`.

    ``skip(inode)``: files left out (a move of theirs is still queued). Straight from
    the catalog's rows (``cat.cost.rows``), each directory's path looked up once.
    """
    today = day_of(time.time() if now is None else now)
    dirs: dict[int, str] = {}
    path_of = cat.ns.path_of
    for ino, parent, name, size, mtime, last_read, last_write, reads, nbytes, replicas in (
            cat.cost.rows(today - WINDOW_DAYS + 1)):
        if not replicas or (skip is not None and skip(ino)):
            continue
        base = dirs.get(parent)
        if base is None:
            found = path_of(parent)
            base = dirs[parent] = f"/{found}/" if found else "/"
        yield FileRecord(ino, base + name, size, replicas, mtime, last_read, last_write,
                         (reads,), (nbytes,))
