"""Run OpsPulse locally: database, migrations, demo data, web, worker and simulator.

Started by `make demo`. Ctrl-C stops everything (the embedded database keeps
running for the next start; `make stop-db` stops it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))
STORES = int(os.environ.get("DEMO_STORES", "4"))
RATE = os.environ.get("DEMO_RATE", "4")


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"OpsPulse did not answer at {url}")


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.chdir(ROOT)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo", "--stores", str(STORES))
    from opspulse.lib.serve import uvicorn_command

    base_url = f"http://{HOST}:{PORT}"
    children = [
        subprocess.Popen(uvicorn_command(host=HOST, port=PORT, workers=2)),
        subprocess.Popen(
            [PYTHON, "manage.py", "worker", "--concurrency", "4"]
        ),
    ]
    try:
        wait_until_up(f"{base_url}/accounts/login/")
        children.append(
            subprocess.Popen(
                [PYTHON, "manage.py", "simulate", "--url", base_url, "--stores", str(STORES),
                 "--rate", RATE, "--duration", "0"]
            )
        )
        from opspulse.sim.demo import DEMO_EMAIL, DEMO_PASSWORD

        print(
            f"\n  OpsPulse is running at {base_url}/\n"
            f"  Sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Admin: {base_url}/admin/ (same login)\n"
            f"  Mail sent by OpsPulse (sign-up, resets, invitations): {base_url}/dev/mail/ and this terminal\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process stopped; shutting down.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    main()
