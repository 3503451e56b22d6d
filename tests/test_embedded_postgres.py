"""`make stop-db` stops the embedded PostgreSQL it started, whoever runs it, and says
so loudly when it cannot.

Each test starts a server of its own under a temporary directory (it listens on a Unix
socket there, never on a TCP port), never the test suite's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.support.processes import ROOT


def embedded_postgres(var: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    env.update(OPSPULSE_VAR_DIR=str(var), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "opspulse.lib.embedded_postgres", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def postmaster_pid(var: Path) -> int:
    return int((var / "pgdata" / "postmaster.pid").read_text().split()[0])


def has_exited(pid: int) -> bool:
    # The container's init may not reap the daemonised server: a zombie has exited too.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def running_server():
    # Not under pytest's own temporary root: other pytest runs reset it to 0700, which
    # would shut PostgreSQL's system user out.
    var = Path(tempfile.mkdtemp(prefix="opspulse-stop-db-")) / "var"
    started = embedded_postgres(var)
    assert started.returncode == 0, started.stderr
    pid = postmaster_pid(var)
    yield var, pid
    if not has_exited(pid):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGQUIT)
    shutil.rmtree(var.parent, ignore_errors=True)


def test_it_stops_the_server_and_waits_until_it_has_exited(running_server):
    var, pid = running_server
    assert not has_exited(pid)

    result = embedded_postgres(var, "stop")

    assert result.returncode == 0, result.stderr
    assert has_exited(pid)
    assert not (var / "pgdata" / "postmaster.pid").exists()
    assert "Stopped PostgreSQL" in result.stdout
    assert "cannot be run as root" not in result.stderr


def test_it_says_when_no_server_is_running(running_server):
    var, pid = running_server
    assert embedded_postgres(var, "stop").returncode == 0

    again = embedded_postgres(var, "stop")

    assert again.returncode == 0
    assert "is not running" in again.stdout


def test_a_server_that_does_not_stop_makes_the_command_fail(running_server):
    var, pid = running_server
    # A stopped (SIGSTOP) postmaster receives the shutdown signal but never acts on it.
    os.kill(pid, signal.SIGSTOP)
    try:
        result = embedded_postgres(var, "stop", "--timeout", "2")
    finally:
        os.kill(pid, signal.SIGCONT)

    assert result.returncode != 0
    assert "Could not stop the database" in result.stderr
    assert f"pid {pid}" in result.stderr
