"""Production settings refuse to start without their secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def start_production(code: str = "import django; django.setup()", **env: str) -> subprocess.CompletedProcess:
    secrets = {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "EMAIL_HOST"}
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
    from opspulse.core.crypto import generate_key_entry

    result = start_production(
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse",
        ALLOWED_HOSTS="app.opspulse.example",
        EMAIL_HOST="smtp.opspulse.example",
    )

    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_a_mail_server():
    from opspulse.core.crypto import generate_key_entry

    result = start_production(
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEYS=generate_key_entry("k1"),
        DATABASE_URL="postgresql://opspulse@db.internal/opspulse",
        ALLOWED_HOSTS="app.opspulse.example",
    )

    assert result.returncode != 0
    assert "EMAIL_HOST must be set in production" in result.stderr


def test_production_settings_secure_cookies_and_transport():
    from opspulse.core.crypto import generate_key_entry

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
