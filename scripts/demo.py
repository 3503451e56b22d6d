"""Run OpsPulse locally: database, migrations, demo data, web, worker and simulator.

Unless a real Shopify app is configured (SHOPIFY_CLIENT_ID), it also runs the fake
Shopify of opspulse.sim with one shop, so that "Add Shopify store" goes through the
real OAuth flow, and that shop keeps taking orders which reach OpsPulse by webhook once
it is connected.

Started by `make demo`. Ctrl-C stops everything (the embedded database keeps
running for the next start; `make stop-db` stops it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))
STORES = int(os.environ.get("DEMO_STORES", "4"))
# Webhooks per second; by default each store's orders come at the pace of its history.
RATE = os.environ.get("DEMO_RATE", "")
SHOPIFY_PORT = int(os.environ.get("DEMO_SHOPIFY_PORT", "8701"))
DEMO_SHOP = {"domain": "lighthouse-supply.myshopify.com", "name": "Lighthouse Supply", "currency": "USD",
             "timezone": "America/Chicago", "orders": 8000, "days": 14}


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


def post_json(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=30).read()


def ensure_free(host: str, port: int, setting: str) -> None:
    """Stop with a plain message when a port is taken (often by an earlier demo still running)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise SystemExit(
                f"Port {port} on {host} is in use, perhaps by an earlier `make demo` still running. "
                f"Stop it, or choose another port with {setting}=<port>."
            ) from None


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The sign-in banner stays the last thing on screen until something goes wrong:
    # warnings and errors only (LOG_LEVEL=INFO shows every process's routine lines), one
    # line per mail (opspulse.lib.mailbox), a silent simulator.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # WhiteNoise serves static files through a synchronous iterator, which Django's ASGI
    # handler warns about once per web process; harmless for files this small.
    os.environ.setdefault("PYTHONWARNINGS", "ignore:StreamingHttpResponse must consume synchronous iterators")
    os.chdir(ROOT)
    ensure_free(HOST, PORT, "PORT")
    if not os.environ.get("SHOPIFY_CLIENT_ID"):
        ensure_free("127.0.0.1", SHOPIFY_PORT, "DEMO_SHOPIFY_PORT")
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo", "--stores", str(STORES))
    from opspulse.lib.serve import uvicorn_command
    from opspulse.sim.shop_orders import keep_shop_busy

    base_url = f"http://{HOST}:{PORT}"
    children: list[subprocess.Popen] = []
    # The demo's own receivers and stand-ins listen on 127.0.0.1.
    web_env = {"OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "1", "PUBLIC_URL": base_url, **os.environ}
    fake_shopify_url = None
    if not os.environ.get("SHOPIFY_CLIENT_ID"):
        fake_shopify_url = f"http://127.0.0.1:{SHOPIFY_PORT}"
        client_id, client_secret = "opspulse-demo-app", secrets.token_urlsafe(24)
        children.append(subprocess.Popen(
            # "--name=value": a random secret may begin with "-", which alone would read as an option.
            [PYTHON, "manage.py", "fake_shopify", "--port", str(SHOPIFY_PORT), f"--client-id={client_id}",
             f"--client-secret={client_secret}", f"--redirect-prefix={base_url}/"]
        ))
        web_env.update(
            SHOPIFY_CLIENT_ID=client_id, SHOPIFY_CLIENT_SECRET=client_secret, PUBLIC_URL=base_url,
            SHOPIFY_SHOP_URL_TEMPLATE=f"{fake_shopify_url}/shops/{{shop}}",
        )
    children += [
        subprocess.Popen(uvicorn_command(host=HOST, port=PORT, workers=2), env=web_env),
        # Slots per queue from WORKER_CONCURRENCY: webhooks, alerts and Shopify calls apart.
        subprocess.Popen([PYTHON, "manage.py", "worker"], env=web_env),
    ]
    try:
        wait_until_up(f"{base_url}/accounts/login/")
        if fake_shopify_url:
            wait_until_up(f"{fake_shopify_url}/_fake/shops")
            post_json(f"{fake_shopify_url}/_fake/shops", DEMO_SHOP)
            # New orders at the pace of the shop's history, so that once connected its
            # dashboard keeps the shape of what was imported.
            threading.Thread(
                target=keep_shop_busy, args=(fake_shopify_url, DEMO_SHOP["domain"]), daemon=True
            ).start()
        children.append(
            subprocess.Popen(
                [PYTHON, "manage.py", "simulate", "--url", base_url, "--stores", str(STORES),
                 *(["--rate", RATE] if RATE else ["--pace-of-history"]), "--duration", "0", "--verbosity", "0"]
            )
        )
        from opspulse.sim.demo import DEMO_EMAIL, DEMO_PASSWORD

        print(
            f"\n  OpsPulse is running at {base_url}/\n"
            f"  Sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Admin: {base_url}/admin/ (same login)\n"
            f"  Mail sent by OpsPulse (sign-up, resets, invitations, alerts) is listed at {base_url}/dev/mail/;\n"
            f"  each one also gets a line below.\n"
            + (f"  Connect a Shopify store: on the home page, add \"{DEMO_SHOP['domain']}\" (served by the\n"
               f"  Shopify stand-in at {fake_shopify_url}, through the real OAuth flow)\n" if fake_shopify_url else "")
            + 
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process stopped; shutting down.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C (or the terminal's, which reaches every process) must not cut
        # the shutdown short with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
