"""Run a command with a Redis answering at REDIS_URL, so the Redis transport is tested.

If the Redis at REDIS_URL (127.0.0.1:6379 by default) answers, the command runs as is.
Otherwise a redis-server of its own is started on a free port, with its files under
./var/redis-test/, REDIS_URL points the command at it, and it is stopped afterwards.
Used by `make test` and `make chaos`: `scripts/with_redis.py .venv/bin/python -m pytest`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(command: list[str]) -> int:
    url = urlsplit(os.environ.get("REDIS_URL", DEFAULT_URL))
    if answers(url.hostname or "127.0.0.1", url.port or 6379):
        return subprocess.call(command)
    if not shutil.which("redis-server"):
        print("No Redis answers and redis-server is not installed: the Redis tests will skip.", file=sys.stderr)
        return subprocess.call(command)
    directory = ROOT / "var" / "redis-test"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    print(f"No Redis answers at {url.geturl()}: starting one for the tests on 127.0.0.1:{port}", file=sys.stderr)
    with (directory / "redis.log").open("ab") as log:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the tests' Redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.1)
        return subprocess.call(command, env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
