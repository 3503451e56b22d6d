"""Production settings refuse to start without their secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def start_production(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL"}}
    clean.update(OPSPULSE_ENV="production", DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=clean, capture_output=True, text=True
    )


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
    )

    assert result.returncode == 0, result.stderr
