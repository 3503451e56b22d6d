"""The sessions page names each session by a hash of its key, never the key itself."""

from __future__ import annotations

from django import template

from opspulse.lib.broadcast import session_hash

register = template.Library()


@register.filter
def session_reference(session) -> str:
    return session_hash(session.session_key)
