"""The security audit log: what happened to whose sign-in, sessions and roles.

Sign-in, password, email and two-factor events come from the notification points of
django.contrib.auth and django-allauth (connected in `AccountsConfig.ready`); team
events are recorded by the actions that make them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from opspulse.accounts.models import Account, AuditEvent, AuditKind, User
from opspulse.lib.broadcast import close_session_sockets

logger = logging.getLogger("opspulse.audit")


def record_event(
    kind: AuditKind,
    *,
    user: User | None,
    request: HttpRequest | None = None,
    actor: User | None = None,
    account: Account | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent.objects.create(
        kind=kind,
        user=user if user is not None and user.pk else None,
        actor=actor,
        account=account,
        ip_address=client_ip(request),
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[:300],
        details=details,
    )
    logger.info("audit %s user=%s account=%s", kind, getattr(user, "pk", None), getattr(account, "pk", None))
    return event


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter(request).get_client_ip(request) or None
    except Exception:  # noqa: BLE001 - a missing or malformed address must not stop the event
        return request.META.get("REMOTE_ADDR") or None


def _on_login(sender, request, user, **kwargs) -> None:
    record_event(AuditKind.LOGIN, user=user, request=request)


def _on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record_event(AuditKind.LOGOUT, user=user, request=request)


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only for an existing user: a failure for an unknown address concerns no account.
    email = credentials.get("email") or credentials.get("username")
    if not email or request is None:
        return
    user = get_user_model()._default_manager.filter(email__iexact=email).first()
    if user is not None:
        record_event(AuditKind.LOGIN_FAILED, user=user, request=request)


def _on_password_changed(sender, request, user, **kwargs) -> None:
    record_event(AuditKind.PASSWORD_CHANGED, user=user, request=request)
    _close_other_sessions(user, request)


def _on_password_reset(sender, request, user, **kwargs) -> None:
    record_event(AuditKind.PASSWORD_RESET, user=user, request=request)
    _close_other_sessions(user, request)


def _on_email_changed(sender, request, user, from_email_address, to_email_address, **kwargs) -> None:
    record_event(
        AuditKind.EMAIL_CHANGED, user=user, request=request,
        from_email=getattr(from_email_address, "email", None), to_email=to_email_address.email,
    )


def _on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    record_event(AuditKind.EMAIL_CONFIRMED, user=email_address.user, request=request)


def _on_signed_up(sender, request, user, **kwargs) -> None:
    record_event(AuditKind.SIGNED_UP, user=user, request=request)


def _on_authenticator_added(sender, request, user, authenticator, **kwargs) -> None:
    kind = AuditKind.RECOVERY_CODES_GENERATED if authenticator.type == "recovery_codes" else AuditKind.MFA_ENABLED
    record_event(kind, user=user, request=request, method=authenticator.type)


def _on_authenticator_removed(sender, request, user, authenticator, **kwargs) -> None:
    if authenticator.type != "recovery_codes":
        record_event(AuditKind.MFA_DISABLED, user=user, request=request, method=authenticator.type)


def _on_authenticator_reset(sender, request, user, authenticator, **kwargs) -> None:
    record_event(AuditKind.RECOVERY_CODES_GENERATED, user=user, request=request, method=authenticator.type)


def _close_other_sessions(user: User, request: HttpRequest | None) -> None:
    """Close the dashboards of the user's other sessions, which the new password signed out."""
    from allauth.usersessions.models import UserSession

    current = request.session.session_key if request is not None and hasattr(request, "session") else None
    for session_key in UserSession.objects.filter(user=user).exclude(session_key=current).values_list(
        "session_key", flat=True
    ):
        close_session_sockets(session_key)


def connect() -> None:
    from allauth.account import signals as account_signals
    from allauth.mfa import signals as mfa_signals

    user_logged_in.connect(_on_login, dispatch_uid="opspulse-audit-login")
    user_logged_out.connect(_on_logout, dispatch_uid="opspulse-audit-logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="opspulse-audit-login-failed")
    account_signals.password_changed.connect(_on_password_changed, dispatch_uid="opspulse-audit-password")
    account_signals.password_reset.connect(_on_password_reset, dispatch_uid="opspulse-audit-reset")
    account_signals.email_changed.connect(_on_email_changed, dispatch_uid="opspulse-audit-email")
    account_signals.email_confirmed.connect(_on_email_confirmed, dispatch_uid="opspulse-audit-confirmed")
    account_signals.user_signed_up.connect(_on_signed_up, dispatch_uid="opspulse-audit-signup")
    mfa_signals.authenticator_added.connect(_on_authenticator_added, dispatch_uid="opspulse-audit-mfa-added")
    mfa_signals.authenticator_removed.connect(_on_authenticator_removed, dispatch_uid="opspulse-audit-mfa-removed")
    mfa_signals.authenticator_reset.connect(_on_authenticator_reset, dispatch_uid="opspulse-audit-mfa-reset")
