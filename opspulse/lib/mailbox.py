"""The development mailbox: every mail is printed to the terminal and kept under
./var/mail/ (EMAIL_FILE_PATH), where the page at /dev/mail/ lists it.

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


class DevelopmentEmailBackend(ConsoleBackend):
    def send_messages(self, email_messages) -> int:
        sent = super().send_messages(email_messages)
        FileBackend(file_path=str(settings.EMAIL_FILE_PATH)).send_messages(email_messages)
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
