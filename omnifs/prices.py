"""Price tables: what a store charges for storage, requests, retrieval and egress.

The tables are dated, versioned TOML files shipped in ``omnifs/price_tables/``
(``aws-s3``, ``gcs``, ``azure-blob``), one per cloud, holding list prices per
region and storage tier. A provider's ``[prices.NAME]`` table in omnifs.toml
overrides them: negotiated rates, or an S3-compatible store (MinIO, ``file://``)
whose storage, requests and egress are your own and cost nothing by default.

Every price is a :class:`~decimal.Decimal` in the table's currency; request
prices are normalised to one request (tables publish them per 1,000 or, for
Azure, per 10,000). A GB is 2^30 bytes, as the three clouds bill it. The cost
price records and the cost arithmetic live in the pure :mod:`omnifs.policy.costs`;
they are re-exported here so ``from omnifs.prices import StorePrice`` keeps working.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from omnifs.policy.costs import (  # noqa: F401  (re-exported: the records' old home)
    PriceError,
    PriceTable,
    RegionPrice,
    StorePrice,
    TierPrice,
)

from .errors import ConfigError, InvalidInput

#: URI scheme -> the shipped table its store is priced by; None: your own store, free
SCHEME_TABLES: dict[str, str | None] = {
    "s3": "aws-s3", "gs": "gcs", "az": "azure-blob", "minio": None, "file": None,
}
TABLES = ("aws-s3", "gcs", "azure-blob")

_TOP = {"version": str, "effective": date, "currency": str, "source": str,
        "request_unit": int, "list_page_size": int, "default_region": str,
        "default_tier": str, "regions": dict}
_REGION = {"continent": str, "egress_internet_per_gb": float,
           "egress_same_continent_per_gb": float, "egress_other_continent_per_gb": float,
           "tiers": dict}
_TIER = {"storage_per_gb_month": float, "retrieval_per_gb": float,
         "retrieval_requests": float, "min_storage_days": int, "write_requests": float,
         "read_requests": float, "list_requests": float}
#: the per-request keys, which tables price per ``request_unit`` requests
_REQUEST_KEYS = ("retrieval_requests", "write_requests", "read_requests", "list_requests")


@dataclass(frozen=True)
class PriceOverride:
    """A ``[prices.NAME]`` table: which table/region/tier, and prices replacing its own."""

    table: str | None = None
    region: str | None = None
    tier: str | None = None
    #: price key -> value; request keys here are per 1,000 requests (see OVERRIDE_KEYS)
    prices: dict[str, Decimal] = field(default_factory=dict)


#: ``[prices.NAME]`` keys and their types; request prices are per 1,000 requests
OVERRIDE_KEYS: dict[str, type | tuple[type, ...]] = {
    "table": str, "region": str, "tier": str,
    **{k: (int, float) for k in _TIER if k not in _REQUEST_KEYS},
    **{k.replace("_requests", "_per_1000"): (int, float) for k in _REQUEST_KEYS},
    **{k: (int, float) for k in _REGION if k.startswith("egress_")},
    "list_page_size": int,
}


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known keys: {', '.join(sorted(known))})"


def _is(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and value >= 0
    if kind is int:
        return isinstance(value, int) and value >= 0
    return isinstance(value, kind)


_KINDS = {str: "a string", int: "a whole number >= 0", float: "a price >= 0",
          date: "a date (2025-01-01)", dict: "a table"}


def _checked(data: dict, schema: dict, where: str) -> dict:
    """``data`` with every key of ``schema`` present and of its type, and no other key."""
    for key in data:
        if key not in schema:
            raise InvalidInput(f"{where}: unknown key {key!r}{_suggest(key, schema)}")
    for key, kind in schema.items():
        if key not in data:
            raise InvalidInput(f"{where}: missing key {key!r}")
        if not _is(data[key], kind):
            raise InvalidInput(f"{where}: {key} must be {_KINDS[kind]}, got {data[key]!r}")
    return data


def _dec(value) -> Decimal:
    """A TOML number as the Decimal it was written as (0.0004, not 0.000400000000000000019)."""
    return Decimal(str(value))


def parse_table(name: str, data: dict, where: str) -> PriceTable:
    """Validate a price table's TOML data; errors name ``where`` (the file) and the key."""
    top = _checked(data, _TOP, where)
    if top["request_unit"] < 1 or top["list_page_size"] < 1:
        raise InvalidInput(f"{where}: request_unit and list_page_size must be at least 1")
    unit = Decimal(top["request_unit"])
    regions: dict[str, RegionPrice] = {}
    for rname, rdata in top["regions"].items():
        rwhere = f"{where}: [regions.{rname}]"
        if not isinstance(rdata, dict):
            raise InvalidInput(f"{rwhere} must be a table")
        r = _checked(rdata, _REGION, rwhere)
        tiers: dict[str, TierPrice] = {}
        for tname, tdata in r["tiers"].items():
            twhere = f"{where}: [regions.{rname}.tiers.{tname}]"
            if not isinstance(tdata, dict):
                raise InvalidInput(f"{twhere} must be a table")
            t = _checked(tdata, _TIER, twhere)
            prices: dict[str, Any] = {
                k: (v if k == "min_storage_days" else
                    _dec(v) / unit if k in _REQUEST_KEYS else _dec(v))
                for k, v in t.items()}
            tiers[tname] = TierPrice(**prices)
        if not tiers:
            raise InvalidInput(f"{rwhere}: no tiers")
        regions[rname] = RegionPrice(
            continent=r["continent"], tiers=tiers,
            **{k: _dec(v) for k, v in r.items() if k.startswith("egress_")})
    if top["default_region"] not in regions:
        raise InvalidInput(f"{where}: default_region {top['default_region']!r} has no "
                           f"[regions.{top['default_region']}] table")
    if any(top["default_tier"] not in r.tiers for r in regions.values()):
        raise InvalidInput(f"{where}: default_tier {top['default_tier']!r} is missing from "
                           "a region's tiers")
    return PriceTable(name=name, version=top["version"], effective=top["effective"],
                      currency=top["currency"], source=top["source"],
                      list_page_size=top["list_page_size"],
                      default_region=top["default_region"],
                      default_tier=top["default_tier"], regions=regions)


def read_table(path: str | Path) -> PriceTable:
    """Load and validate a price table file; one InvalidInput line on any mistake."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read price table: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path}: not valid TOML: {e}") from None
    return parse_table(path.stem, data, str(path))


@cache
def load_table(name: str) -> PriceTable:
    """A shipped table by name ("aws-s3", "gcs", "azure-blob")."""
    if name not in TABLES:
        raise InvalidInput(f"no price table {name!r}{_suggest(name, TABLES)}")
    ref = resources.files("omnifs") / "price_tables" / f"{name}.toml"
    with resources.as_file(ref) as path:
        return read_table(path)


def _pick(choices, wanted: str, what: str, where: str) -> str:
    """``wanted`` among ``choices``, matched without regard to case."""
    for c in choices:
        if c.lower() == wanted.lower():
            return c
    raise InvalidInput(f"{where}: no {what} {wanted!r}{_suggest(wanted, choices)}")


_FREE_TIER = TierPrice(Decimal(0), Decimal(0), Decimal(0), 0, Decimal(0), Decimal(0),
                       Decimal(0))


def store_price(scheme: str, region: str | None = None, tier: str | None = None,
                override: PriceOverride | None = None, name: str = "") -> StorePrice:
    """The prices of one store: its scheme's table at ``region``/``tier``, then ``override``.

    ``region`` and ``tier`` default to the override's, then the table's defaults. A
    store with no table (``minio://``, ``file://``, or ``table = "none"``) costs
    nothing unless the override names prices. ``name`` (the provider) labels errors
    and such a store's network.
    """
    if scheme not in SCHEME_TABLES:
        raise InvalidInput(f"no prices for URI scheme {scheme!r}{_suggest(scheme, SCHEME_TABLES)}")
    o = override or PriceOverride()
    table_name = SCHEME_TABLES[scheme] if o.table is None else o.table
    where = f"prices of {name or scheme}"
    if table_name in (None, "none"):
        base = StorePrice(
            cloud=f"own:{name or scheme}", region=o.region or region or "", continent="",
            tier=o.tier or tier or "", tier_price=_FREE_TIER,
            egress_internet_per_gb=Decimal(0), egress_same_continent_per_gb=Decimal(0),
            egress_other_continent_per_gb=Decimal(0), list_page_size=1000, provenance="own")
    else:
        table = load_table(table_name)
        wanted = o.region or region or table.default_region
        if wanted.lower() not in (r.lower() for r in table.regions):
            raise InvalidInput(
                f"{where} ({table.name}): no region {wanted!r} in the price table (it has "
                f"{', '.join(table.regions)}); set region in [prices.{name or 'NAME'}] to the "
                "nearest one")
        rname = _pick(table.regions, wanted, "region", where)
        r = table.regions[rname]
        tname = _pick(r.tiers, o.tier or tier or table.default_tier, "tier",
                      f"{where} ({table.name} {rname})")
        # a store priced by another scheme's table (MinIO "like S3") is on its own network
        cloud = table.name if SCHEME_TABLES[scheme] == table.name else f"own:{name or scheme}"
        base = StorePrice(
            cloud=cloud, region=rname, continent=r.continent, tier=tname,
            tier_price=r.tiers[tname], egress_internet_per_gb=r.egress_internet_per_gb,
            egress_same_continent_per_gb=r.egress_same_continent_per_gb,
            egress_other_continent_per_gb=r.egress_other_continent_per_gb,
            list_page_size=table.list_page_size, tiers=r.tiers, currency=table.currency,
            provenance=f"{table.name} {table.version} ({table.effective.isoformat()})")
    return _overridden(base, o)


def _overridden(base: StorePrice, o: PriceOverride) -> StorePrice:
    if not o.prices:
        return base
    tier_changes: dict[str, Any] = {}
    store_changes: dict[str, Any] = {}
    for key, value in o.prices.items():
        if key.endswith("_per_1000"):
            tier_changes[key.replace("_per_1000", "_requests")] = value / 1000
        elif key == "min_storage_days":
            tier_changes[key] = int(value)
        elif key == "list_page_size":
            store_changes[key] = int(value)
        elif key in _TIER:
            tier_changes[key] = value
        else:
            store_changes[key] = value
    tier_price = replace(base.tier_price, **tier_changes)
    return replace(base, tier_price=tier_price, tiers={**base.tiers, base.tier: tier_price},
                   provenance=f"{base.provenance} + override", **store_changes)


def parse_price_overrides(section: dict, source: str,
                          providers: dict[str, str] | None = None) -> dict[str, PriceOverride]:
    """Validate omnifs.toml's ``[prices.NAME]`` tables (one per provider) into overrides.

    Every mistake is one ConfigError line naming the file, the table and the key.
    ``providers``: the configured providers' URI schemes by name; a table for another
    name is refused, and a region or tier its table lacks is found here.
    """
    out: dict[str, PriceOverride] = {}
    for name, table in section.items():
        where = f"{source}: [prices.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table (one per provider)")
        if providers is not None and name not in providers:
            raise ConfigError(f"{where}: no provider {name!r} in [providers]"
                              f"{_suggest(name, providers)}")
        for key, value in table.items():
            if key not in OVERRIDE_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, OVERRIDE_KEYS)}")
            kinds = OVERRIDE_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, kinds):
                want = "a string" if kinds is str else (
                    "a whole number" if kinds is int else "a number")
                raise ConfigError(f"{where}: {key} must be {want}, got {value!r}")
            if isinstance(value, (int, float)) and value < 0:
                raise ConfigError(f"{where}: {key} must not be negative, got {value!r}")
        if "table" in table and table["table"] not in (*TABLES, "none"):
            raise ConfigError(f"{where}: table must be one of "
                              f"{', '.join(repr(t) for t in (*TABLES, 'none'))}, "
                              f"got {table['table']!r}")
        prices = {k: _dec(v) for k, v in table.items() if k not in ("table", "region", "tier")}
        out[name] = PriceOverride(table=table.get("table"), region=table.get("region"),
                                  tier=table.get("tier"), prices=prices)
        if providers is not None:
            try:  # a region or tier the table lacks is a config mistake, found now
                store_price(providers[name], override=out[name], name=name)
            except InvalidInput as e:
                raise ConfigError(f"{source}: [prices.{name}] {e}") from None
    return out
