"""Keep secrets and personal data out of the logs.

`RedactSecrets` is installed on every handler of settings.LOGGING, so every record, from
OpsPulse or from a library, is redacted before it is written: URL paths of chat webhooks
and URL credentials (userinfo, query values, generated path segments), platform tokens and API keys, Authorization
and token headers, one-time links (password reset, email confirmation, invitations), and
email addresses and phone numbers.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"

# Hosts whose webhook URLs carry their secret in the path.
_SECRET_PATH_HOSTS = ("hooks.slack.com", "discord.com", "discordapp.com", "outlook.office.com", "webhook.office.com")

# A path segment that looks generated (16+ characters mixing letters and digits): the
# secret of a webhook URL, or a token.
_TOKEN_SEGMENT = re.compile(r"(?<=/)(?=[^/]*[A-Za-z])(?=[^/]*\d)[A-Za-z0-9_.~%-]{16,}(?=/|$)")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_QUERY_VALUE = re.compile(r"(?<=[?&;])([^=&\s\"'<>#?;]+)=([^&\s\"'<>#;]*)")
_ONE_TIME_LINK = re.compile(
    r"(/accounts/password/reset/key/|/accounts/confirm-email/|/invitations/)[^\s\"'<>?#]+"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    # Headers and key/value pairs whose value is a credential: as text, dicts, JSON or tuples.
    (
        re.compile(
            r"(?i)([\w-]*(?:token|secret|password|passwd|signature|hmac|api[_-]?key|consumer[_-]key|authorization"
            r"|cookie)(?:b?[\"'])?(?:\s*[:=]\s*|,\s*)(?:b?[\"'])?)"
            r"(?!\[redacted\]|bearer |basic |b?[\"'])[^\"'\s,;&}\])]+"
        ),
        rf"\1{REDACTED}",
    ),
    # Shopify tokens and secrets (shpat_, shpua_, shpca_, shppa_, shpss_…), WooCommerce
    # consumer keys, OpsPulse's channel secrets.
    (re.compile(r"\b(shp[a-z]{2}|ck|cs|whsec)_[A-Za-z0-9_-]{6,}"), rf"\1_{REDACTED}"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"(?<![\w+])\+\d[\d ().-]{6,}\d\b"), "[phone]"),
    (re.compile(r"(?<![\w-])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"), "[phone]"),
]


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    path = parts.path
    if any(host == name or host.endswith("." + name) for name in _SECRET_PATH_HOSTS) and path not in ("", "/"):
        path = "/" + REDACTED
    else:
        path = _TOKEN_SEGMENT.sub(REDACTED, path)
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def redact(text: str) -> str:
    """Return `text` with secrets and personal data replaced."""
    text = _URL.sub(_redact_url, text)
    text = _QUERY_VALUE.sub(lambda match: f"{match.group(1)}={REDACTED}" if match.group(2) else match.group(0), text)
    text = _ONE_TIME_LINK.sub(lambda match: match.group(1) + REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Redact a record's message, traceback and stack before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: its handler reports it, args unshown
            record.msg, record.args = "unformattable log record", None
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keep a refused request (403, 404, …) to its one line: its traceback shows where
    Django said no, which is no fault to look into; a 500 keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info = record.exc_text = None
        return True
