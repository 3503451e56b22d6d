"""Connection strings for code that talks to PostgreSQL without the ORM."""

from __future__ import annotations

from django.db import connections
from psycopg.conninfo import make_conninfo

_LIBPQ_KEYS = {"dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name", "connect_timeout", "target_session_attrs"}


def conninfo(alias: str = "default", **overrides: str) -> str:
    """Return a libpq conninfo for Django's database `alias` (the test database in tests)."""
    params = connections[alias].get_connection_params()
    params = {k: v for k, v in params.items() if k in _LIBPQ_KEYS and v not in (None, "")}
    params.update(overrides)
    return make_conninfo(**params)
