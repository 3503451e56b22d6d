"""Display formatting for the dashboard: money in a given currency, counts, changes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Symbols for the currencies merchants use most; anything else is shown by its code.
CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "BRL": "R$",
    "MXN": "MX$",
    "CHF": "CHF ",
    "KRW": "₩",
}
ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW", "CLP", "VND", "ISK", "HUF", "TWD", "UGX"}
# Said instead of a comparison with a period the store's history does not cover.
NOT_ENOUGH_HISTORY = "Not enough history yet"


def format_money(amount: Decimal | int | float | None, currency: str, *, whole: bool = False) -> str:
    """Return e.g. "$1,234.50", "€12.00" or "1,234.50 SEK"; with `whole`, "$1,235"."""
    if amount is None:
        return "—"
    currency = (currency or "").upper()
    places = Decimal(1) if whole or currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    value = Decimal(amount).quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {currency}".strip()


def format_count(value: int | Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{int(value):,}"


def change_from_yesterday(current, previous, *, new: str, nothing: str, known: bool = True) -> dict[str, str]:
    """Today against yesterday as words: "+12% vs yesterday", or `new` (sales today, none
    yesterday) or `nothing` (none either day) when there is no base; with its direction.

    Not `known`: the store's history does not cover yesterday, and there is nothing to say.
    """
    if not known:
        return {"direction": "flat", "text": NOT_ENOUGH_HISTORY}
    change = percent_change(current or 0, previous or 0)
    if change is None:
        return {"direction": "up", "text": new} if current else {"direction": "flat", "text": nothing}
    if change == 0:
        return {"direction": "flat", "text": "Same as yesterday"}
    sign = "+" if change > 0 else "−"
    return {"direction": "up" if change > 0 else "down", "text": f"{sign}{abs(change)}% vs yesterday"}


def percent_change(current: Decimal | int, previous: Decimal | int) -> int | None:
    """Return the whole-percent change from `previous` to `current`, or None if there is no base."""
    if not previous:
        return None
    change = (Decimal(current) - Decimal(previous)) * 100 / Decimal(previous)
    return int(change.quantize(Decimal(1), rounding=ROUND_HALF_UP))
