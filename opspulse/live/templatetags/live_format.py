from __future__ import annotations

from django import template

from opspulse.live.formatting import format_count, format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    return format_money(amount, currency)


@register.filter
def count(value) -> str:
    return format_count(value)
