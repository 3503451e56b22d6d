"""OpsPulse's hooks into django-allauth's sign-in and session handling."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from django.http import HttpRequest

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind
from opspulse.lib import crypto
from opspulse.lib.broadcast import close_session_sockets


class AccountAdapter(DefaultAccountAdapter):
    def logout(self, request: HttpRequest) -> None:
        """Sign out, and close this session's open dashboards along with it."""
        session_key = request.session.session_key
        super().logout(request)
        if session_key:
            close_session_sockets(session_key)


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    def end_sessions(self, sessions) -> None:
        """End the sessions, and close their open dashboards in every web process."""
        for session in sessions:
            session.end()
            close_session_sockets(session.session_key)
            record_event(
                AuditKind.SESSION_ENDED, user=session.user, request=self.request,
                ended_session_ip=session.ip, ended_session_user_agent=session.user_agent[:200],
            )


class MFAAdapter(DefaultMFAAdapter):
    """Two-factor secrets (the TOTP key, the recovery codes' seed) are encrypted at rest
    with the same key ring as the stores' credentials."""

    associated_data = "mfa-authenticator"

    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text, associated_data=self.associated_data)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text, associated_data=self.associated_data)
