from __future__ import annotations

from decimal import Decimal

import pytest

from opspulse.lib.formatting import format_money, percent_change


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("1234.5"), "USD", "$1,234.50"),
        (Decimal("12"), "EUR", "€12.00"),
        (Decimal("1999.6"), "JPY", "¥2,000"),
        (Decimal("-5"), "GBP", "-£5.00"),
        (Decimal("10"), "SEK", "10.00 SEK"),
        (None, "USD", "—"),
    ],
    ids=["usd_case", "eur_case", "zero_decimal_case", "negative_case", "unknown_symbol_case", "none_case"],
)
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected


def test_percent_change_has_no_value_without_a_base():
    assert percent_change(Decimal("10"), Decimal("0")) is None
    assert percent_change(Decimal("150"), Decimal("100")) == 50
