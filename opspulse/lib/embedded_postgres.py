"""The development database: a PostgreSQL server under ./var/, from the pgserver package.

Used only when DATABASE_URL is unset, so that `make demo` and `make test` work on a
machine with no database server. The server keeps running between commands (it is
shared by the web, worker and test processes) and `make stop-db` stops it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
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


class StopFailed(RuntimeError):
    """The embedded server is still running after `stop`."""


def stop(var_dir: Path, *, timeout: float = 60) -> bool:
    """Stop the embedded server and wait until it has exited; return False if it was not running.

    A fast shutdown, as `pg_ctl stop -m fast` makes it: SIGINT to the postmaster. pg_ctl
    itself refuses to be run by root, and a server that root started runs as pgserver's
    own system user.
    """
    import psutil

    pgdata = var_dir / "pgdata"
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, IndexError) as error:
        raise StopFailed(f"cannot read {pgdata / 'postmaster.pid'}: {error}") from error
    try:
        postmaster = psutil.Process(pid)
        if postmaster.name() != "postgres":
            return False  # the pid file of a server that died; the next start replaces it
    except psutil.NoSuchProcess:
        return False

    def running() -> bool:
        # A zombie has exited: where init does not reap it, it stays until the container ends.
        try:
            return postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    try:
        postmaster.send_signal(signal.SIGINT)
    except psutil.AccessDenied as error:
        raise StopFailed(
            f"PostgreSQL under {pgdata} (pid {pid}) runs as another user: stop it as that user or as root"
        ) from error
    except psutil.NoSuchProcess:
        return False
    deadline = time.monotonic() + timeout
    while running():
        if time.monotonic() > deadline:
            raise StopFailed(
                f"PostgreSQL under {pgdata} (pid {pid}) is still running {timeout:g} s after it was asked"
                f" to stop; its log is {pgdata / 'log'}"
            )
        time.sleep(0.1)
    return True


def url_from_params(params: dict[str, str], dbname: str | None = None) -> str:
    """A postgresql:// URL with the socket directory percent-encoded as the host."""
    return f"postgresql://{params['user']}@{quote(params['host'], safe='')}/{dbname or params['dbname']}"


def main(argv: list[str] | None = None) -> int:
    """`python -m opspulse.lib.embedded_postgres [stop]`: start the server and print its URL, or stop it.

    The server is the one under $OPSPULSE_VAR_DIR, by default ./var/.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m opspulse.lib.embedded_postgres")
    parser.add_argument("command", nargs="?", choices=["start", "stop"], default="start")
    parser.add_argument("--timeout", type=float, default=60, help="seconds `stop` waits for the server to exit")
    arguments = parser.parse_args(argv)
    var = Path(os.environ.get("OPSPULSE_VAR_DIR", Path(__file__).resolve().parents[2] / "var"))
    if arguments.command == "start":
        print(url_from_params(ensure_running(var)))
        return 0
    try:
        stopped = stop(var, timeout=arguments.timeout)
    except StopFailed as error:
        print(f"Could not stop the database: {error}", file=sys.stderr)
        return 1
    pgdata = var / "pgdata"
    print(f"Stopped PostgreSQL under {pgdata}" if stopped else f"PostgreSQL under {pgdata} is not running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
