"""Real OpsPulse processes (uvicorn, `manage.py worker`) and a Redis of a test's own.

They run on the test database: `process_env` points them at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from opspulse.lib.serve import uvicorn_command

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = 10, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url` (redis://host:port/db)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of a test's own, on a free port: never the machine's shared one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with (self.directory / f"redis-{self.port}.log").open("ab") as log:
            self.popen = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: redis_answers(self.url), timeout=10, message=f"the test's Redis on port {self.port}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


def database_url_for_processes() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (":" + quote(s["PASSWORD"], safe="") if s.get("PASSWORD") else "")
    host = quote(s["HOST"] or "", safe="") + (f":{s['PORT']}" if s.get("PORT") else "")
    return f"postgresql://{auth}@{host}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_processes(),
        DJANGO_SETTINGS_MODULE="config.settings_test",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = log.open("wb")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig: int | None = None) -> None:
        if self.popen.poll() is None:
            if sig is None:
                self.popen.terminate()
            else:
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class WebServer(Process):
    def __init__(self, tmp: Path, name: str, *, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The server's mail goes to files here (the development mailbox backend).
        self.mail_dir = tmp / f"{name}-mail"
        super().__init__(
            uvicorn_command(host="127.0.0.1", port=self.port),
            process_env(
                PGAPPNAME=f"opspulse-test-{name}",
                EMAIL_BACKEND="opspulse.lib.mailbox.DevelopmentEmailBackend",
                EMAIL_FILE_PATH=str(self.mail_dir),
                **env,
            ),
            tmp / f"{name}.log",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"web server {name} exited:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/accounts/login/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"web server {name} did not start:\n{self.output()}")


class Worker(Process):
    def __init__(self, tmp: Path, name: str, **env: str) -> None:
        super().__init__(
            [sys.executable, "manage.py", "worker", "--concurrency", "2"],
            process_env(PGAPPNAME=f"opspulse-test-{name}", **env),
            tmp / f"{name}.log",
        )
