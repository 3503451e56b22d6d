"""Password rules beyond Django's four validators (length, similarity, common, numeric)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

# Argon2 takes passphrases of any length; the cap only keeps a request from making the
# server hash megabytes.
MAX_PASSWORD_LENGTH = 1024
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qwertzuiop", "1234567890")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class MaximumLengthValidator:
    def validate(self, password: str, user: object = None) -> None:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                f"This password is too long: at most {MAX_PASSWORD_LENGTH} characters.", code="password_too_long"
            )

    def get_help_text(self) -> str:
        return f"At most {MAX_PASSWORD_LENGTH} characters; long passphrases are welcome."


class RepetitivePasswordValidator:
    """Refuse passwords that are one short run repeated or a keyboard or alphabet sequence.

    Such passwords ("aaaaaaaa", "abcabcabc", "qwertyuiop", "98765432") top every list of
    breached passwords, whatever their length.
    """

    def validate(self, password: str, user: object = None) -> None:
        if looks_breached(password):
            raise ValidationError(
                "This password is a repeated pattern or a keyboard sequence, the kind found first in "
                "breached-password lists. Try a few unrelated words.",
                code="password_repetitive",
            )

    def get_help_text(self) -> str:
        return "Your password can’t be a repeated pattern or a keyboard sequence."


def looks_breached(password: str) -> bool:
    lowered = password.lower()
    if len(set(lowered)) <= 3:
        return True
    for size in range(1, len(lowered) // 2 + 1):
        unit = lowered[:size]
        if unit * (len(lowered) // size) + unit[: len(lowered) % size] == lowered:
            return True
    return _is_sequence(lowered)


def _is_sequence(lowered: str) -> bool:
    for line in (*KEYBOARD_ROWS, ALPHABET):
        for candidate in (line, line[::-1]):
            if len(lowered) >= 4 and lowered in candidate * 2:
                return True
    return False
