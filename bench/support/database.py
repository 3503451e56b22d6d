"""The benchmark's database: a scratch one of its own, its URL, and calls that outlive a restart.

Django, its models and the packages some benchmarks never need are imported inside the
functions that use them: a benchmark imports this module before django.setup().
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.runtime import PYTHON, ROOT, alive, log

# One scratch database per benchmark process, so two benchmarks can run side by side;
# a database left by a process that died is dropped by the next run.
SCRATCH_PREFIX = "opspulse_bench_"
SCRATCH_DB = f"{SCRATCH_PREFIX}{os.getpid()}"
# What a process started without DATABASE_URL uses (read before any --scratch-db switch).
_INHERITED_DATABASE_URL = os.environ.get("DATABASE_URL")


def use_scratch_database() -> str:
    """Point this process (and the servers it starts) at a new, migrated database.

    Same PostgreSQL server as the development database, but nothing else uses it: no
    other worker (a running `make demo`, say) takes the benchmark's jobs. Call before
    setup_django(); drop_scratch_database() removes it.
    """
    import psycopg

    base = os.environ.get("DATABASE_URL")
    if base:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(base)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        url = urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))
    else:
        from opspulse.lib import embedded_postgres

        params = embedded_postgres.ensure_running(Path(os.environ.get("OPSPULSE_VAR_DIR", ROOT / "var")))
        admin_url = embedded_postgres.url_from_params(params, "postgres")
        url = embedded_postgres.url_from_params(params, SCRATCH_DB)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [SCRATCH_PREFIX + "%"])]
        for name in names:
            pid = name.removeprefix(SCRATCH_PREFIX)
            if name == SCRATCH_DB or not (pid.isdigit() and alive(int(pid))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    os.environ["DATABASE_URL"] = url
    log(f"scratch database {SCRATCH_DB}: migrating")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env=dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings"))
    return admin_url


def drop_scratch_database(admin_url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
    log(f"dropped the scratch database {SCRATCH_DB}")


def database_url() -> str:
    from django.conf import settings

    return settings.DATABASE_URL


@functools.cache
def default_database_url() -> str:
    if _INHERITED_DATABASE_URL:
        return _INHERITED_DATABASE_URL
    from opspulse.lib import embedded_postgres

    params = embedded_postgres.ensure_running(Path(os.environ.get("OPSPULSE_VAR_DIR", ROOT / "var")))
    return embedded_postgres.url_from_params(params)


def libpq_params() -> dict[str, str]:
    from django.db import connection

    s = connection.settings_dict
    params = {"host": s["HOST"] or "", "user": s["USER"] or "", "dbname": s["NAME"]}
    if s.get("PORT"):
        params["port"] = str(s["PORT"])
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return params


def pg_bin(name: str) -> str:
    """A PostgreSQL client program: pgserver's bundled one, else one on PATH."""
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
    if bundled.exists():
        return str(bundled)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (neither in pgserver's pginstall/bin nor on PATH)")
    return found


def retry_db(action: Callable[[], Any], *, attempts: int = 20, what: str = "database call") -> Any:
    """Run `action`, retrying while PostgreSQL is away (it may be restarted under us)."""
    from django.db import OperationalError, InterfaceError, close_old_connections, connection

    for attempt in range(attempts):
        try:
            return action()
        except (OperationalError, InterfaceError) as exc:
            if attempt == attempts - 1:
                raise
            log(f"{what}: {str(exc).strip().splitlines()[0][:100]}; retrying")
            with contextlib.suppress(Exception):
                connection.close()
            close_old_connections()
            time.sleep(1.5)
    return None
