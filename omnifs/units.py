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


def human_duration(seconds: float) -> str:
    """0.25 -> '0.25 s', 75 -> '1 min 15 s', 7260 -> '2 h 1 min', 90000 -> '1 d 1 h'."""
    if seconds < 59.5:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    whole = round(seconds)
    d, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    parts = [(d, "d"), (h, "h"), (m, "min"), (s, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return " ".join(f"{n} {u}" for n, u in parts[first:first + 2] if n) or "0 s"
