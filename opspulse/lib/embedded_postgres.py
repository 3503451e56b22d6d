"""The development database: a PostgreSQL server under ./var/, from the pgserver package.

Used only when DATABASE_URL is unset, so that `make demo` and `make test` work on a
machine with no database server. The server keeps running between commands (it is
shared by the web, worker and test processes) and `make stop-db` stops it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

DATABASE_NAME = "opspulse"


def ensure_running(var_dir: Path) -> dict[str, str]:
    """Start the embedded server if needed; return libpq connection parameters."""
    pgdata = var_dir / "pgdata"
    var_dir.mkdir(parents=True, exist_ok=True)
    # pgserver keeps runtime files (and, for a long path, the socket) there.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(var_dir / "run"))
    (var_dir / "run").mkdir(mode=0o700, exist_ok=True)

    import pgserver
    import psycopg

    # Several processes (web, worker, tests) start at once: one initialises the cluster.
    with open(var_dir / "pgserver.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        # The server listens on a Unix socket only, never on a TCP port.
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        params = {"host": socket_dir, "user": "postgres", "port": "5432", "password": ""}
        with psycopg.connect(
            host=params["host"], user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        del server
    params["dbname"] = DATABASE_NAME
    return params


def stop(var_dir: Path) -> None:
    import subprocess

    pgdata = var_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        import pgserver

        pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        subprocess.run([str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast"], check=False)


def url_from_params(params: dict[str, str], dbname: str | None = None) -> str:
    """A postgresql:// URL with the socket directory percent-encoded as the host."""
    return f"postgresql://{params['user']}@{quote(params['host'], safe='')}/{dbname or params['dbname']}"


if __name__ == "__main__":  # pragma: no cover - used by the Makefile
    import sys

    var = Path(os.environ.get("OPSPULSE_VAR_DIR", Path(__file__).resolve().parents[2] / "var"))
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop(var)
    else:
        print(url_from_params(ensure_running(var)))
