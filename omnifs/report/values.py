"""How report values read: the one place a unit becomes text (Markdown and HTML share it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from omnifs.units import human_bytes, human_duration

from . import Value

#: a unit that is a currency code ("USD", "EUR")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: money is shown to 0.0001, the rounding of omnifs.policy.costs
MONEY_PLACES = Decimal("0.0001")
NONE = "—"


def is_money(unit: str) -> bool:
    return bool(_CURRENCY.match(unit))


def _number(v: float | int | Decimal) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}"
    return f"{v:,.4g}" if isinstance(v, float) else str(v)


def format_value(value: Value, unit: str = "", *, in_column: bool = False) -> str:
    """``value`` in ``unit`` as a reader wants it (see omnifs.report for the units).

    ``in_column``: money without its currency, which the column's title carries.
    """
    if value is None:
        return NONE
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "bytes":
        return human_bytes(float(value))
    if unit == "bytes/s":
        return f"{human_bytes(float(value))}/s"
    if unit == "seconds":
        return human_duration(float(value))
    if unit == "time":
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if unit == "percent":
        return f"{float(value):.1f} %"
    if is_money(unit):
        amount = Decimal(str(value)).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)
        return str(amount) if in_column else f"{amount} {unit}"
    return _number(value)


def axis_value(value: float, unit: str) -> str:
    """A tick label: like :func:`format_value`, shorter where it can be."""
    if is_money(unit):
        return f"{value:.4g}"
    if unit in ("bytes", "bytes/s", "seconds"):
        return format_value(value, unit)
    return f"{value:.4g}"


def unit_suffix(unit: str) -> str:
    """What a column title adds for ``unit``: " (USD)" for money; nothing for the others,
    whose values say their unit."""
    return f" ({unit})" if is_money(unit) else ""
