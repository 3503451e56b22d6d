"""The development mailbox: every mail is kept under ./var/mail/ (EMAIL_FILE_PATH), where
the page at /dev/mail/ lists it, and announced by one line in the terminal.

Production sends through SMTP (settings.EMAIL_HOST) instead.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.urls import reverse


class DevelopmentEmailBackend(ConsoleBackend):
    """Keep each mail for /dev/mail/ and print one line about it, not the whole mail, so
    that `make demo`'s sign-in banner stays on screen."""

    def send_messages(self, email_messages) -> int:
        sent = FileBackend(file_path=str(settings.EMAIL_FILE_PATH)).send_messages(email_messages)
        # The mailbox page exists only with DEBUG on.
        where = f" — {settings.PUBLIC_URL}{reverse('dev-mailbox')}" if settings.DEBUG else ""
        with self._lock:
            for message in email_messages:
                if message.recipients():
                    self.stream.write(f"Mail to {', '.join(message.recipients())}: {message.subject}{where}\n")
            self.stream.flush()
        return sent


@dataclass(frozen=True)
class StoredMail:
    name: str
    received_at: datetime
    to: str
    subject: str
    text: str
    html: str | None


def stored_mails(limit: int = 50, folder: Path | None = None) -> list[StoredMail]:
    """The newest mails of the development mailbox, newest first (one file may hold several)."""
    folder = Path(folder or settings.EMAIL_FILE_PATH)
    if not folder.is_dir():
        return []
    mails: list[StoredMail] = []
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
        received_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        separator = "-" * 79
        for index, chunk in enumerate(reversed(path.read_text(errors="replace").split(separator))):
            if chunk.strip():
                mails.append(_parse(f"{path.stem}-{index}", received_at, chunk.strip()))
        if len(mails) >= limit:
            break
    return mails[:limit]


def _parse(name: str, received_at: datetime, raw: str) -> StoredMail:
    message = email.message_from_string(raw, policy=email.policy.default)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return StoredMail(
        name=name,
        received_at=received_at,
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
    )
