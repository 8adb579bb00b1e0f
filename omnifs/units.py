"""How the CLI writes sizes and counts: binary units (KiB, MiB, GiB), "1 object"."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; whole bytes below 1 KiB ('512 B')."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """'1 object', '2 objects', '0 objects'; irregular forms are given ('entry', 'entries')."""
    return f"{n} {singular if n == 1 else plural_form or singular + 's'}"
