"""Bytes per live update: what each open dashboard of a store receives for one change.

Runs the real live path in this process: OpsPulse's ASGI application
(`config.asgi:application`) serves K dashboard WebSockets of one store, signed in with
the owner's session cookie; the web process's PostgreSQL listener (LISTEN) hands them
the store's messages; changes are written by the commerce actions in their own
transactions, whose NOTIFY is delivered on commit, exactly as the worker writes them.
Nothing of the channel layer, the hub or the consumer is replaced.

Scenarios, each after a quiet spell, each followed by a fixed window in which every
frame of every dashboard is collected (long enough for the throttled best-sellers read
and the chart's own timer):

- the day's first order (two line items): the feed, the chart and the best sellers
  leave their empty states, so they go whole,
- one new order (two line items), the common case: a store that has sold today,
- one stock change (an item falls to low stock),
- a burst of 100 new orders, each in its own transaction, back to back (a flash sale).

Reported per dashboard: frames, payload bytes (UTF-8; OpsPulse declines
permessage-deflate, so wire bytes are these plus a few bytes of framing per frame), the
regions those frames carried and the bytes of each: a panel sent whole under its id, a
patch of one (opspulse.live.frames) as "<id> (patch)", and the JSON around a frame's
patches as "patch framing". The regions of a frame add up to its bytes. The hub's
periodic clock refresh is switched off for the run so that it does not land in a window.

    .venv/bin/python bench/update_bytes.py --scratch-db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, reports, runtime, tenants  # noqa: E402

REGION = re.compile(r'<(?:div|section|ul|li)\s+id="([^"]+)"\s+hx-swap-oob="([^"]+)"')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=3, help="open dashboards of the store")
    parser.add_argument("--burst", type=int, default=100, help="orders in the burst")
    parser.add_argument("--window", type=float, default=7.0, help="seconds of frames collected per scenario")
    parser.add_argument("--scratch-db", action="store_true", help="use a fresh database, dropped at the end")
    parser.add_argument("--result-name", default="update_bytes")
    return parser.parse_args()


def patches(head: str) -> list[tuple[str, int]]:
    """The patches of a frame's JSON line (`{"patch": {id: …}}` and its newline), each
    with its bytes as sent (its key, its value and a comma); the rest is "patch framing"."""
    found = []
    for region_id, value in json.loads(head)["patch"].items():
        entry = json.dumps({region_id: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]
        found.append((f"{region_id} (patch)", len(entry.encode()) + 1))
    framing = len(head.encode()) + 1 - sum(size for _, size in found)
    return [*found, ("patch framing", framing)]


def regions(frame: str) -> list[tuple[str, int]]:
    """The regions a frame carries: (region id, bytes up to the next region); the patches
    of a frame that opens with some, each as "<id> (patch)"."""
    found = []
    if frame.startswith("{"):
        head, _, frame = frame.partition("\n")
        found = patches(head)
    starts = [(match.start(), match.group(1), match.group(2)) for match in REGION.finditer(frame)]
    for index, (start, region_id, swap) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(frame)
        name = "order row (prepended)" if swap == "afterbegin" else (
            "order row (changed)" if region_id.startswith("order-") and region_id != "order-feed" else region_id)
        found.append((name, len(frame[start:end].encode())))
    return found


class Dashboard:
    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.frames: list[str] = []
        self.heartbeats = 0
        self.task: asyncio.Task | None = None

    async def read(self, heartbeat: str) -> None:
        while True:
            text = await self.socket.receive_text(timeout=3600)
            if text == heartbeat:
                self.heartbeats += 1
            else:
                self.frames.append(text)

    def take(self) -> list[str]:
        frames, self.frames = self.frames, []
        return frames


def summarize(frames_by_dashboard: list[list[str]], changes: int) -> dict[str, Any]:
    per_dashboard = []
    region_bytes: defaultdict[str, int] = defaultdict(int)
    region_count: Counter[str] = Counter()
    for frames in frames_by_dashboard:
        payload = sum(len(frame.encode()) for frame in frames)
        per_dashboard.append({"frames": len(frames), "bytes": payload})
        for frame in frames:
            for name, size in regions(frame):
                region_bytes[name] += size
                region_count[name] += 1
    dashboards = len(frames_by_dashboard)
    frames = [d["frames"] for d in per_dashboard]
    sizes = [d["bytes"] for d in per_dashboard]
    return {
        "changes": changes,
        "per_dashboard": per_dashboard,
        "frames_per_dashboard": max(frames) if frames else 0,
        "bytes_per_dashboard": max(sizes) if sizes else 0,
        "bytes_per_change_per_dashboard": round(max(sizes) / changes, 1) if sizes and changes else 0,
        "regions": {
            name: {"times": region_count[name] // max(dashboards, 1), "bytes": region_bytes[name] // max(dashboards, 1)}
            for name in sorted(region_bytes, key=lambda n: -region_bytes[n])
        },
    }


def order(number: int, at, *, items: int = 2):
    from opspulse.commerce.actions import LineItemData, OrderData
    from opspulse.commerce.models import OrderStatus

    products = ["Linen shirt", "Wool scarf", "Canvas tote", "Trail socks", "Enamel mug"]
    return OrderData(
        external_id=str(900000 + number), number=f"#B{number}", status=OrderStatus.PAID, currency="USD",
        total=Decimal("48.00") * items, placed_at=at, updated_at=at, customer_first_name="Maya",
        customer_city="Lisbon",
        line_items=[
            LineItemData(external_id=f"{number}-{i}", product_external_id=str(10 + (number + i) % 5),
                         title=products[(number + i) % 5], quantity=1, price=Decimal("48.00"))
            for i in range(items)
        ],
    )


async def run(args: argparse.Namespace, tenant: tenants.Tenant) -> dict[str, Any]:
    from channels.db import database_sync_to_async
    from django.utils import timezone

    from config.asgi import application
    from opspulse.commerce.actions import StockData, apply_records
    from opspulse.live import hub, listener
    from opspulse.live.consumers import HEARTBEAT
    from tests.support.websocket import WebsocketClient

    store = tenant.stores[0]
    # No clock refresh during the run: it would land in a window by chance.
    hub.StoreHub.clock_seconds = 3600.0
    now = timezone.now()
    await database_sync_to_async(apply_records)(store=store, records=[
        StockData(item_external_id="bench-1", available=40, updated_at=now - timedelta(hours=1), title="Wool scarf"),
    ])
    cookie = await database_sync_to_async(tenant.login_cookie)(tenant.user_ids[0])

    await listener.start()
    await asyncio.wait_for(listener.connected.wait(), timeout=10)
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    dashboards = []
    first_frames = []
    for _ in range(args.dashboards):
        socket = WebsocketClient(application, f"/ws/stores/{store.public_id}/", headers)
        connected, code = await socket.connect(timeout=10)
        if not connected:
            raise SystemExit(f"dashboard socket refused with {code}")
        first_frames.append(await socket.receive_text(timeout=10))
        dashboard = Dashboard(socket)
        dashboard.task = asyncio.create_task(dashboard.read(HEARTBEAT))
        dashboards.append(dashboard)
    results: dict[str, Any] = {"first_frame": summarize([[first_frames[0]]], 1)}

    async def scenario(name: str, write, changes: int) -> None:
        await asyncio.sleep(2.0)  # quiet spell
        for dashboard in dashboards:
            dashboard.take()
        started = time.monotonic()
        await write()
        written = time.monotonic() - started
        await asyncio.sleep(args.window)
        results[name] = {**summarize([d.take() for d in dashboards], changes), "write_seconds": round(written, 2)}
        runtime.log(f"{name}: {results[name]['frames_per_dashboard']} frames, "
                    f"{results[name]['bytes_per_dashboard']:,} bytes per dashboard")

    numbers = iter(range(1, 10**6))

    async def single_order() -> None:
        await database_sync_to_async(apply_records)(store=store, records=[order(next(numbers), timezone.now())])

    async def stock_change() -> None:
        await database_sync_to_async(apply_records)(store=store, records=[
            StockData(item_external_id="bench-1", available=3, updated_at=timezone.now(), title="Wool scarf"),
        ])

    async def burst() -> None:
        for _ in range(args.burst):
            await database_sync_to_async(apply_records)(store=store, records=[order(next(numbers), timezone.now())])

    try:
        await scenario("first_order", single_order, 1)
        await scenario("single_order", single_order, 1)
        await scenario("stock_change", stock_change, 1)
        await scenario("burst", burst, args.burst)
    finally:
        for dashboard in dashboards:
            dashboard.task.cancel()
            await dashboard.socket.disconnect()
        await listener.stop()
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = []
    for name in ("first_frame", "first_order", "single_order", "stock_change", "burst"):
        result = results[name]
        rows.append([name, result["changes"], result["frames_per_dashboard"], f"{result['bytes_per_dashboard']:,}",
                     f"{result['bytes_per_change_per_dashboard']:,}"])
    reports.print_table(f"What each of {args.dashboards} dashboards receives (window {args.window:g} s per change)",
                        ["scenario", "changes", "frames", "bytes", "bytes per change"], rows)
    for name in ("first_order", "single_order", "stock_change", "burst"):
        reports.print_table(f"{name}: regions sent, per dashboard", ["region", "times", "bytes"],
                            [[region, v["times"], f"{v['bytes']:,}"] for region, v in results[name]["regions"].items()])


def main() -> None:
    args = parse_args()
    runtime.stop_on_sigterm()
    admin_url = database.use_scratch_database() if args.scratch_db else None
    runtime.setup_django()
    with tenants.run_tenant("update_bytes", scratch=admin_url) as tenant:
        tenant.create(stores=1, stores_per_account=1, timezone="America/New_York")
        results = asyncio.run(run(args, tenant))
        report(results, args)
        reports.write_result(args.result_name, {
            "benchmark": "update_bytes",
            "finished_at": reports.now_iso(),
            "machine": machine.machine(),
            "code": reports.code_version(),
            "dashboards": args.dashboards,
            "window_seconds": args.window,
            **results,
        })


if __name__ == "__main__":
    main()
