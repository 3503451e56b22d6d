"""Connection strings for code that talks to PostgreSQL without the ORM, and a
connection of its own for a thread whose session keeps state."""

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


def unpooled_connection_for_this_thread(alias: str = "default") -> None:
    """Make this thread's Django connection `alias` one of its own, outside the process's
    pool, from now on (closing the one it has).

    For a thread whose session holds state (session advisory locks, LISTEN) that must
    never reach another thread through the pool.
    """
    connection = connections[alias]
    connection.close()
    options = {key: value for key, value in connection.settings_dict.get("OPTIONS", {}).items() if key != "pool"}
    connection.settings_dict = {**connection.settings_dict, "OPTIONS": options}
