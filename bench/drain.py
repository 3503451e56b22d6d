"""Worker throughput: how fast the drain job turns stored deliveries into records.

Fills the delivery table with the simulator's traffic (orders with their updates,
stock and carts, duplicates and out-of-order updates included) for S stores, exactly
as the ingest endpoint stores it, then runs the drain job's work (`drain_lane` for
every lane) in this process and reports deliveries per second, CPU per delivery (this process and
PostgreSQL apart) and SQL statements per delivery. The ceiling beside it: the same
deliveries merely marked processed by one UPDATE per batch, i.e. the cost of taking
the work off the queue with nothing done.

    .venv/bin/python bench/drain.py --deliveries 6000 --stores 200 --scratch-db
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, processes, reports, request_files, runtime, tenants  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=6000, help="deliveries per measurement")
    parser.add_argument("--stores", type=int, default=200, help="stores the traffic is spread over")
    parser.add_argument("--batch-size", type=int, default=None, help="DRAIN_BATCH_SIZE (default: settings)")
    parser.add_argument("--scratch-db", action="store_true", help="use a fresh database, dropped at the end")
    parser.add_argument("--result-name", default="drain")
    return parser.parse_args()


def header(headers: dict[str, str], name: str) -> str:
    lowered = {key.lower(): value for key, value in headers.items()}
    return lowered.get(name.lower(), "")


def fill(tenant: tenants.Tenant, count: int, seed: int) -> int:
    """Store `count` simulator deliveries as pending, the way the ingest endpoint does."""
    from django.db import connection

    from opspulse.sim.simulator import TrafficGenerator

    by_domain = {store.domain: store for store in tenant.stores}
    by_token = {store.ingest_token: store for store in tenant.stores}
    traffic = TrafficGenerator(tenant.targets(), random.Random(seed))
    rows = []
    for delivery in itertools.islice(traffic, count):
        shopify_domain = header(delivery.headers, "X-Shopify-Shop-Domain")
        if shopify_domain:
            store = by_domain[shopify_domain]
            topic = header(delivery.headers, "X-Shopify-Topic")
        else:
            store = by_token[delivery.path.rstrip("/").rsplit("/", 1)[-1]]
            topic = header(delivery.headers, "X-WC-Webhook-Topic")
        key = request_files.delivery_key(delivery.headers, delivery.body)
        rows.append((store.pk, store.platform, topic, key, json.dumps(delivery.headers), delivery.body))
    with connection.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO ingest_webhook_delivery
               (store_id, platform, topic, delivery_key, event_id, received_at, headers, body, status, error, attempts)
               VALUES (%s, %s, %s, %s, '', now(), %s, %s, 'pending', '', 0)
               ON CONFLICT DO NOTHING""",
            rows,
        )
    from opspulse.ingest.models import WebhookDelivery

    return WebhookDelivery.objects.filter(store_id__in=tenant.store_ids, status="pending").count()


def measure(tenant: tenants.Tenant, drain: Any, pg: set[int]) -> dict[str, Any]:
    import psutil
    from django.db import connection

    pending = fill(tenant, ARGS.deliveries, seed=len(RUNS))
    RUNS.append(pending)
    me = psutil.Process()
    pg_procs = [psutil.Process(pid) for pid in pg if psutil.pid_exists(pid)]

    def pg_cpu() -> float:
        total = 0.0
        for proc in pg_procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    statements = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    cpu0, pg0, t0 = me.cpu_times(), pg_cpu(), time.perf_counter()
    with connection.execute_wrapper(count):
        handled = drain()
    elapsed = time.perf_counter() - t0
    cpu1, pg1 = me.cpu_times(), pg_cpu()
    outcome = outcomes(tenant)
    python_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "deliveries": handled,
        "seconds": round(elapsed, 3),
        "per_second": round(handled / elapsed, 1),
        "python_cpu_ms_per_delivery": round(1000 * python_cpu / max(handled, 1), 3),
        "postgres_cpu_ms_per_delivery": round(1000 * (pg1 - pg0) / max(handled, 1), 3),
        "statements_per_delivery": round(statements / max(handled, 1), 2),
        "outcome": outcome,
    }


def outcomes(tenant: tenants.Tenant) -> dict[str, int]:
    """Deliveries by status and the records they made: a fast drain that fails its work is no drain."""
    from django.db.models import Count

    from opspulse.commerce.models import Cart, InventoryLevel, Order
    from opspulse.ingest.models import WebhookDelivery

    deliveries = WebhookDelivery.objects.filter(store_id__in=tenant.store_ids)
    result = dict(deliveries.values_list("status").annotate(n=Count("id")).order_by())
    result.update(
        orders=Order.objects.filter(store_id__in=tenant.store_ids).count(),
        inventory_levels=InventoryLevel.objects.filter(store_id__in=tenant.store_ids).count(),
        carts=Cart.objects.filter(store_id__in=tenant.store_ids).count(),
    )
    deliveries.delete()
    return result


def mark_only_all(tenant: tenants.Tenant) -> int:
    return sum(mark_only(store.pk) for store in tenant.stores)


def mark_only(store_id: int) -> int:
    """The ceiling: take the store's pending deliveries in batches and only mark them."""
    from django.conf import settings
    from django.db import connection, transaction

    handled = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """WITH batch AS (
                       SELECT id, body FROM ingest_webhook_delivery
                       WHERE store_id = %s AND status = 'pending' ORDER BY id LIMIT %s FOR UPDATE)
                   UPDATE ingest_webhook_delivery d SET status = 'processed', processed_at = now()
                   FROM batch WHERE d.id = batch.id RETURNING batch.body""",
                [store_id, settings.DRAIN_BATCH_SIZE],
            )
            rows = cursor.fetchall()
            for (body,) in rows:
                json.loads(bytes(body))
        handled += len(rows)
        if len(rows) < settings.DRAIN_BATCH_SIZE:
            return handled


RUNS: list[int] = []
ARGS: argparse.Namespace


def main() -> None:
    global ARGS
    ARGS = parse_args()
    admin_url = database.use_scratch_database() if ARGS.scratch_db else None
    # The drain runs here, in this process: with DEBUG off, like a worker.
    os.environ["DEBUG"] = "false"
    runtime.setup_django()
    from django.conf import settings

    from opspulse.ingest import actions

    if ARGS.batch_size:
        settings.DRAIN_BATCH_SIZE = ARGS.batch_size
    with tenants.run_tenant("drain", scratch=admin_url) as tenant:
        tenant.create(stores=ARGS.stores, stores_per_account=ARGS.stores)
        pg = processes.postgres_pids()
        runtime.log(f"{ARGS.deliveries} deliveries over {ARGS.stores} stores, batch size {settings.DRAIN_BATCH_SIZE}")
        def drain_lanes() -> int:
            # A job takes a bounded number of batches; with small batches it takes several rounds.
            handled = 0
            while done := sum(actions.drain_lane(lane=lane).handled for lane in range(settings.DRAIN_LANES)):
                handled += done
            return handled

        warm = measure(tenant, drain_lanes, pg)
        runtime.log(f"warm-up: {warm}")
        if warm["outcome"].get("failed") or warm["outcome"].get("pending"):
            raise SystemExit(f"the drain left deliveries failed or pending: {warm['outcome']}")
        opspulse = measure(tenant, drain_lanes, pg)
        ceiling = measure(tenant, lambda: mark_only_all(tenant), pg)
        ratio = round(opspulse["per_second"] / ceiling["per_second"], 3)
        table = reports.print_table(
            f"Drain: stored deliveries → records (one process, drain_lane over {settings.DRAIN_LANES} lanes)",
            ["", "deliveries", "per s", "python ms/delivery", "postgres ms/delivery", "statements/delivery"],
            [
                [name, r["deliveries"], r["per_second"], r["python_cpu_ms_per_delivery"],
                 r["postgres_cpu_ms_per_delivery"], r["statements_per_delivery"]]
                for name, r in (("OpsPulse drain", opspulse), ("mark only (ceiling)", ceiling))
            ],
        )
        print(f"ratio OpsPulse / ceiling: {ratio}")
        reports.write_result(ARGS.result_name, {
            "when": reports.now_iso(), "machine": machine.machine(), "code": reports.code_version(),
            "args": vars(ARGS), "batch_size": settings.DRAIN_BATCH_SIZE,
            "opspulse": opspulse, "ceiling": ceiling, "ratio": ratio, "table": table,
        })


if __name__ == "__main__":
    main()
