"""Webhook → dashboard latency and webhook acceptance on a local OpsPulse stack.

Starts a web process (uvicorn, 2 workers) and a worker on the development database,
opens one dashboard WebSocket as a signed-in member, sends signed Shopify
orders/create webhooks at a fixed rate and measures, for each order, the time from
sending the webhook to the moment the dashboard socket receives a fragment showing
that order. Prints a summary and writes bench/results/live_latency.json.

    .venv/bin/python bench/live_latency.py --rate 50 --count 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("httpx").setLevel(logging.WARNING)

import httpx  # noqa: E402
from django.test import Client  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from opspulse.lib.serve import uvicorn_command  # noqa: E402

from tests.support.processes import free_port  # noqa: E402
from tests.support.stores import make_store  # noqa: E402
from opspulse.accounts.models import Account, Membership, Role, User  # noqa: E402
from tests.support.webhooks import shopify_order  # noqa: E402
from opspulse.sim import payloads  # noqa: E402

SECRET = "bench-secret"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    account = Account.objects.create(name=f"Bench {run}")
    user = User.objects.create_user(f"bench-{run}@opspulse.localhost", uuid.uuid4().hex)
    Membership.objects.create(account=account, user=user, role=Role.OWNER)
    store = make_store(account, platform="shopify", domain=f"bench-{run}.myshopify.com", secret=SECRET)
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    processes = [
        subprocess.Popen(uvicorn_command(host="127.0.0.1", port=port, workers=2), **quiet),
        subprocess.Popen([sys.executable, "manage.py", "worker", "--concurrency", "2"], **quiet),
    ]
    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}
    ack_ms: list[float] = []
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/login/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        socket = connect(f"ws://127.0.0.1:{port}/ws/stores/{store.public_id}/",
                         additional_headers={"Cookie": f"sessionid={cookie}", "Origin": base}, legacy=True)
        socket.recv(timeout=10)
        numbers = [f"#{n - 4000}" for n in range(5001, 5001 + args.count)]

        def read() -> None:
            while len(seen) < len(numbers):
                try:
                    frame = socket.recv(timeout=15)
                except TimeoutError:
                    return
                now = time.monotonic()
                for number in numbers:
                    if number not in seen and f'data-order-number="{number}"' in frame:
                        seen[number] = now

        reader = threading.Thread(target=read)
        reader.start()
        started = time.monotonic()
        with httpx.Client(timeout=10) as http:
            for index, order_id in enumerate(range(5001, 5001 + args.count)):
                due = started + index / args.rate
                time.sleep(max(0.0, due - time.monotonic()))
                body = payloads.encode(shopify_order(order_id))
                headers = payloads.shopify_headers(shop_domain=store.domain, topic="orders/create", body=body, secret=SECRET)
                t0 = time.monotonic()
                sent[f"#{order_id - 4000}"] = t0
                response = http.post(f"{base}/webhooks/shopify", content=body, headers=headers)
                ack_ms.append((time.monotonic() - t0) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        elapsed = time.monotonic() - started
        reader.join(timeout=20)
        socket.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        account.delete()
        user.delete()

    latencies = [(seen[n] - sent[n]) * 1000 for n in seen]
    result = {
        "offered_rate_per_s": args.rate,
        "webhooks_sent": args.count,
        "accepted_per_s": round(statuses.get(200, 0) / elapsed, 1),
        "status_codes": statuses,
        "ack_ms": {"p50": round(statistics.median(ack_ms), 1), "p95": round(percentile(ack_ms, 95), 1),
                   "max": round(max(ack_ms), 1)},
        "orders_seen_on_dashboard": len(seen),
        "webhook_to_screen_ms": {
            "p50": round(statistics.median(latencies), 1), "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1), "max": round(max(latencies), 1),
        } if latencies else None,
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "live_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
