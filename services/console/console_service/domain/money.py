"""Money and shares as a person reads them: integer fen shown as yuan, fractions as percent."""

from __future__ import annotations

from decimal import Decimal


def yuan(fen: int | None) -> str:
    """`1234567` fen → `¥12,345.67`; negative amounts (returns exceeding sales) → `-¥12.30`."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def yuan_number(fen: int | None) -> Decimal | None:
    """Fen as a yuan amount with two decimals, for CSV cells and charts (exact, no float)."""
    if fen is None:
        return None
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def percent(value: float | None, digits: int = 1) -> str:
    """`0.8537` → `85.4%`; no value (nothing to divide by) → `—`."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


def fen_of(text: str) -> int:
    """The fen of a shown amount (`¥12,345.67`, `-¥0.50`): the inverse of `yuan`."""
    cleaned = text.strip().replace(",", "").replace("¥", "")
    negative = cleaned.startswith("-")
    whole, _, cents = cleaned.lstrip("-").partition(".")
    fen = int(whole or "0") * 100 + int((cents + "00")[:2])
    return -fen if negative else fen
