from __future__ import annotations

from django import template

from opspulse.lib.formatting import format_count, format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    return format_money(amount, currency)


@register.filter
def count(value) -> str:
    return format_count(value)


# The longest figure of each size class that app.css fits to its card's width.
FIGURE_LENGTHS = (7, 9, 11, 13, 16)


@register.filter
def figure_chars(value) -> str:
    """Return the size class of a figure by its length: the first of FIGURE_LENGTHS it fits, or "more"."""
    length = len(str(value))
    return next((str(limit) for limit in FIGURE_LENGTHS if length <= limit), "more")
