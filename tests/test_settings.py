"""Production settings refuse to start without their secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.processes import ROOT


def start_production(code: str = "import django; django.setup()", **env: str) -> subprocess.CompletedProcess:
    secrets = {
        "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "EMAIL_HOST", "PUBLIC_URL", "SHOPIFY_CLIENT_ID", "DEBUG",
    }
    clean = {k: v for k, v in os.environ.items() if k not in secrets}
    clean.update(OPSPULSE_ENV="production", DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_production_refuses_to_start_without_secret_key():
    result = start_production()

    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_production_refuses_to_start_without_field_keys():
    result = start_production(SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set in production" in result.stderr


def test_production_starts_with_its_keys():
    from opspulse.lib.crypto import generate_key_entry

    result = start_production(
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse",
        ALLOWED_HOSTS="app.opspulse.example",
        EMAIL_HOST="smtp.opspulse.example",
    )

    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_a_mail_server():
    from opspulse.lib.crypto import generate_key_entry

    result = start_production(
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse",
        ALLOWED_HOSTS="app.opspulse.example",
    )

    assert result.returncode != 0
    assert "EMAIL_HOST must be set in production" in result.stderr


def test_production_settings_secure_cookies_and_transport():
    from opspulse.lib.crypto import generate_key_entry

    result = start_production(
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse",
        ALLOWED_HOSTS="app.opspulse.example",
        EMAIL_HOST="smtp.opspulse.example",
        code=(
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
            "s.EMAIL_BACKEND, *s.CONTENT_SECURITY_POLICY['DIRECTIVES']['frame-ancestors'])"
        ),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True", "True", "True", "31536000", "django.core.mail.backends.smtp.EmailBackend", "'none'",
    ]


def test_production_with_the_shopify_app_needs_its_public_https_address():
    from opspulse.lib.crypto import generate_key_entry

    keys = dict(
        SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse", ALLOWED_HOSTS="app.opspulse.example",
        EMAIL_HOST="smtp.opspulse.example", SHOPIFY_CLIENT_ID="app-id", SHOPIFY_CLIENT_SECRET="app-secret",
    )

    refused = start_production(**keys)
    started = start_production(**keys, PUBLIC_URL="https://app.opspulse.example")

    assert refused.returncode != 0 and "PUBLIC_URL must be the https://" in refused.stderr
    assert started.returncode == 0, started.stderr


def test_production_refuses_to_start_with_debug_on():
    """DEBUG in production would show tracebacks with settings to visitors, and the
    development mailbox with every reset link."""
    from opspulse.lib.crypto import generate_key_entry

    keys = dict(
        SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse", ALLOWED_HOSTS="app.opspulse.example",
        EMAIL_HOST="smtp.opspulse.example",
    )

    refused = start_production(**keys, DEBUG="1")
    started = start_production(**keys, DEBUG="0")

    assert refused.returncode != 0 and "DEBUG must be off in production" in refused.stderr
    assert started.returncode == 0, started.stderr
