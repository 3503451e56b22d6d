"""The processes a benchmark starts (web servers, workers), the workers it did not, and PostgreSQL's.

Django, its models and the packages some benchmarks never need are imported inside the
functions that use them: a benchmark imports this module before django.setup().
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from support.database import database_url, default_database_url, drop_scratch_database
from support.runtime import PYTHON, ROOT, log
from support.tenants import Tenant


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(*, debug: bool = False, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url(),
        DEBUG="true" if debug else "false",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Service:
    """A long-running child process (web server, worker) with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> set[int]:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return {self.pid, *(child.pid for child in proc.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_web(name: str, app: str, *, port: int, workers: int, env: dict[str, str], logdir: Path,
              ready_path: str = "/login/", app_dir: str | None = None, deflate: bool = False) -> Service:
    import httpx

    from opspulse.lib.serve import uvicorn_command

    args = uvicorn_command(host="127.0.0.1", port=port, workers=workers, app=app)
    if deflate:
        args[args.index("--ws-per-message-deflate") + 1] = "true"
    if app_dir:
        args += ["--app-dir", app_dir]
    service = Service(name, args, env, logdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not service.running():
            raise RuntimeError(f"{name} exited:\n{service.tail()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        service.stop()
        raise RuntimeError(f"{name} did not start:\n{service.tail()}")
    # Each of the workers has to have started too; give the slower one a moment.
    time.sleep(1.0)
    return service


def start_worker(name: str, *, concurrency: int, env: dict[str, str], logdir: Path, nice: int = 0) -> Service:
    args = [PYTHON, "manage.py", "worker", "--concurrency", str(concurrency)]
    if nice:
        args = ["nice", "-n", str(nice), *args]
    return Service(name, args, env, logdir)


def _worker_processes(mine: Iterable[int]) -> list[Any]:
    import psutil

    mine = set(mine)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        cmd = proc.info["cmdline"] or []
        is_worker = "worker" in cmd and ("procrastinate" in cmd or "manage.py" in cmd)
        if proc.info["pid"] in mine or not is_worker:
            continue
        # Only workers on this benchmark's database take its jobs.
        env = proc.info["environ"] or {}
        if (env.get("DATABASE_URL") or default_database_url()) != database_url():
            continue
        found.append(proc)
    return found


def foreign_workers(mine: Iterable[int]) -> list[str]:
    """Other procrastinate workers on the benchmark's database: they take jobs from its queue."""
    return [f"pid {p.pid}: {' '.join(p.info['cmdline'])[:120]}" for p in _worker_processes(mine)]


def warn_foreign_workers() -> list[str]:
    found = foreign_workers(set())
    if found:
        log("WARNING: other procrastinate workers use this database. They take the benchmark's drain jobs")
        log("(and CPU), possibly with older code; stop them, or run with --scratch-db, for clean figures:")
        for line in found:
            log(f"  {line}")
    return found


def foreign_worker_pids(mine: Iterable[int]) -> list[int]:
    import psutil

    pids = []
    for proc in _worker_processes(mine):
        pids.append(proc.pid)
        with contextlib.suppress(psutil.Error):
            pids.extend(child.pid for child in proc.children(recursive=True))
    return pids


_postmaster: int | None = None


def postgres_pids() -> set[int]:
    """The benchmark's PostgreSQL server: its postmaster and every backend."""
    import psutil

    global _postmaster
    if _postmaster is None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                _postmaster = psutil.Process(cursor.fetchone()[0]).ppid()
        except Exception:  # noqa: BLE001 - a remote server: count every local postgres
            _postmaster = 0
    if _postmaster:
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(_postmaster)
            return {server.pid, *(child.pid for child in server.children())}
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"}


def wait4(popen: subprocess.Popen, timeout: float | None = None) -> tuple[int, float]:
    """Wait for a child; return (exit code, CPU seconds it used, children included)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            return popen.returncode, usage.ru_utime + usage.ru_stime
        if deadline is not None and time.monotonic() > deadline:
            popen.kill()
            deadline = None
        time.sleep(0.05)


def tear_down(*, popens: Iterable[subprocess.Popen] = (), services: Iterable[Service] = (), tenant: Tenant,
              scratch: str | None) -> None:
    """Stop what a benchmark started, delete its tenant and drop its scratch database."""
    for popen in popens:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    for service in list(services):
        service.stop()
    tenant.cleanup()
    if scratch:
        drop_scratch_database(scratch)


@contextlib.contextmanager
def work_dir(name: str):
    """A fresh directory under the system temp dir for request files and process logs.

    The request files (large) are deleted at the end; the logs stay for a look after
    the run and are replaced by the next run of the same benchmark.
    """
    path = Path(tempfile.gettempdir()) / f"opspulse-bench-{name}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        for pattern in ("*.bin", "*.json"):
            for file in path.glob(pattern):
                file.unlink(missing_ok=True)
        for sub in path.iterdir():
            if sub.is_dir():
                shutil.rmtree(sub, ignore_errors=True)
        log(f"process logs: {path}")
