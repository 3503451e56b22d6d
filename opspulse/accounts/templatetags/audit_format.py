"""How the audit log page shows an event: who, a one-line summary, the device."""

from __future__ import annotations

from django import template
from ua_parser import parse as ua_parse

from opspulse.accounts.models import AuditEvent, AuditKind

register = template.Library()


@register.filter
def audit_who(event: AuditEvent) -> str:
    person = event.user or event.actor
    if person is not None:
        return person.email
    if event.kind == AuditKind.STORE_DISCONNECTED:
        return "The platform"  # the app was uninstalled from the shop's side
    return "Deleted user" if event.kind not in (AuditKind.MEMBER_INVITED, AuditKind.INVITATION_REVOKED) else "—"


@register.filter
def audit_summary(event: AuditEvent) -> str:
    """A line about the event from its details; only the keys known to be safe to show."""
    d = event.details or {}
    kind = event.kind
    if kind == AuditKind.ROLE_CHANGED:
        return f"from {d.get('from', '?')} to {d.get('to', '?')}"
    if kind == AuditKind.MEMBER_INVITED:
        return f"{d.get('email', '')} as {d.get('role', '')}" + (" (sent again)" if d.get("resent") else "")
    if kind == AuditKind.INVITATION_REVOKED:
        return f"{d.get('email', '')} as {d.get('role', '')}"
    if kind == AuditKind.MEMBER_JOINED:
        return f"as {d.get('role', '')}" + (f", invited by {d['invited_by']}" if d.get("invited_by") else "")
    if kind in (AuditKind.MEMBER_REMOVED, AuditKind.MEMBER_LEFT):
        return f"was {d['role']}" if d.get("role") else ""
    if kind == AuditKind.ACCOUNT_RENAMED:
        return f"from “{d.get('from', '')}” to “{d.get('to', '')}”"
    if kind == AuditKind.ACCOUNT_DELETED:
        return d.get("account_name", "")
    if kind == AuditKind.EMAIL_CHANGED:
        return f"to {d['to_email']}" if d.get("to_email") else ""
    if kind in (AuditKind.MFA_ENABLED, AuditKind.MFA_DISABLED):
        return {"totp": "authenticator app", "recovery_codes": "recovery codes"}.get(d.get("method", ""), "")
    if kind == AuditKind.WALLBOARD_LINK_CREATED:
        label = f"“{d['label']}” " if d.get("label") else ""
        expiry = f"expires {d['expires_at'][:16].replace('T', ' ')} UTC" if d.get("expires_at") else "never expires"
        return f"{label}for {d.get('store', '')}, {expiry}"
    if kind == AuditKind.WALLBOARD_LINK_REVOKED:
        return (f"“{d['label']}” " if d.get("label") else "") + f"for {d.get('store', '')}"
    if kind in (AuditKind.CHANNEL_ADDED, AuditKind.CHANNEL_CHANGED, AuditKind.CHANNEL_REMOVED):
        where = f"for {d['store']}" if d.get("store") else "for every store"
        change = f", {d['change']}" if d.get("change") else ""
        return f"{d.get('channel_kind', '')} “{d.get('name', '')}” to {d.get('host', '?')} {where}{change}"
    if kind == AuditKind.DATA_EXPORT_DOWNLOADED:
        return f"request {d.get('data_request', '')} of {d.get('store', '')}"
    if kind in (AuditKind.STORE_CONNECTED, AuditKind.STORE_DISCONNECTED, AuditKind.STORE_DELETED):
        return " ".join(part for part in (d.get("store", ""), d.get("reason", "")) if part)
    if kind == AuditKind.SESSION_ENDED:
        return f"session from {d['ended_session_ip']}" if d.get("ended_session_ip") else ""
    return ""


@register.filter
def short_user_agent(user_agent: str) -> str:
    """Return e.g. "Firefox on Mac OS X" for a User-Agent header, or its start if unknown."""
    if not user_agent:
        return ""
    parsed = ua_parse(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent and parsed.user_agent.family != "Other" else ""
    system = parsed.os.family if parsed.os and parsed.os.family != "Other" else ""
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    return user_agent[:40] + ("…" if len(user_agent) > 40 else "")
