"""Mails about the team: each rendered from a subject, a text and an HTML template."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from opspulse.accounts.models import Invitation, Role


def send_invitation(invitation: Invitation, *, accept_url: str) -> None:
    context = {
        "invitation": invitation,
        "account_name": invitation.account.name,
        "inviter": _display_name(invitation.invited_by),
        "role": ("an " if invitation.role == Role.ADMIN else "a ") + invitation.get_role_display().lower(),
        "accept_url": accept_url,
        "expires_at": invitation.expires_at,
    }
    prefix = getattr(settings, "ACCOUNT_EMAIL_SUBJECT_PREFIX", "")
    subject = prefix + " ".join(render_to_string("accounts/email/invitation_subject.txt", context).split())
    mail = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("accounts/email/invitation_message.txt", context),
        to=[invitation.email],
    )
    mail.attach_alternative(render_to_string("accounts/email/invitation_message.html", context), "text/html")
    mail.send()


def _display_name(user) -> str:
    if user is None:
        return "A teammate"
    return f"{user.name} ({user.email})" if user.name else user.email
