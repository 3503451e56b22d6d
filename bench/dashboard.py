"""Dashboard read path: the first load of a store dashboard with a year of history.

A store gets one year of history (1,000,000 orders by default, 1–3 line items each over
a few hundred products) generated inside PostgreSQL with INSERT … SELECT generate_series:
a daily and hourly shape in the store's timezone (night trough, lunch and evening peaks,
weekdays, growth over the year, Black Friday and December, day-to-day noise), up to the
current minute of today. Carts follow the same shape; inventory levels, a low-stock and a
high-value-order alert and a year of their events fill the other panels. The metric
buckets (metrics_metric, hour and day granularity, revenue / orders / units_sold / carts)
and each product's days (metrics_productday) are then built from those rows with SQL
aggregation, counting what
opspulse.commerce.actions counts (the orders' counted_* columns: nothing for cancelled or
refunded orders; one per new cart), with the boundaries of opspulse.metrics.buckets. The
benchmark then checks, in Python with bucket_start() itself, every bucket of a sample of
days (today, yesterday, the first day, DST changes, Black Friday, random days) against a
recount from the orders and carts, and every total against the orders, and stops if one
differs. A second store has the same last days and catalogue but no older history.

A first load is what the page does (opspulse/live/views.py, live/dashboard.html,
static/src/live.js): GET /stores/<id>/, which renders every panel on the server, then
the WebSocket the page names (/ws/stores/<id>/?rendered_at=…), whose first frame says
that the page is current when nothing changed since its render, or else brings every
panel again; the bench counts which it was. A socket without a page render time (what a
page that missed a change gets) is timed on its own, to its frame of every panel. The
panels endpoint (/stores/<id>/panels/) is only the page's fallback poll while the socket
is down; it is measured too. A client process, signed in with the store owner's session
cookie, times them one at a time against uvicorn (config.asgi:application, DEBUG false)
— after warm-up rounds, N rounds, each in a shuffled order: the bare ASGI app
(bench/bare_asgi.py, same uvicorn options), the signed-in account home page, and for
each store the first load and a socket without a page, plus the 1-year store's panels
endpoint. Reported per kind: p50/p95/p99/max and
p95 ratios to the home page and to the short-history store; also the connections
PostgreSQL saw opened meanwhile (pg_stat_database.sessions) and the cores used.

In this process, with Django's test client: the queries of one page load are captured
(CaptureQueriesContext) and each is run under EXPLAIN (ANALYZE, BUFFERS); page loads are
timed with the SQL round trips apart (--profile adds cProfile's top functions).

    .venv/bin/python bench/dashboard.py --scratch-db                     # 1,000,000 orders
    .venv/bin/python bench/dashboard.py --scratch-db --orders 100000 --requests 50
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import html
import io
import json
import math
import multiprocessing
import os
import pstats
import random
import re
import statistics
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, processes, reports, runtime, tenants  # noqa: E402
from support.machine import CpuMeter  # noqa: E402
from support.processes import Service  # noqa: E402
from support.runtime import BENCH, log  # noqa: E402

TARGET_P95_MS = 100.0

# Relative order volume by local hour of day (0–23) and by weekday (Monday first).
HOUR_SHAPE = (0.30, 0.18, 0.11, 0.08, 0.08, 0.12, 0.24, 0.42, 0.62, 0.80, 0.92, 1.00,
              1.06, 1.02, 0.96, 0.93, 0.95, 1.02, 1.12, 1.26, 1.32, 1.18, 0.88, 0.55)
WEEKDAY_SHAPE = (1.04, 0.98, 0.97, 0.99, 1.02, 1.06, 1.12)

FIRST_NAMES = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Lucas", "Mia", "Ethan",
               "Amelia", "Leo", "Harper", "Elijah", "Isla", "James", "Chloe", "Aiden", "Zoe", "Mason",
               "Nora", "Yusuf", "Priya", "Kenji", "Ana", "Lars", "Fatima", "Diego", "Hana", "Omar")
CITIES = ("New York", "Brooklyn", "Boston", "Philadelphia", "Chicago", "Austin", "Denver", "Seattle",
          "Portland", "San Diego", "Los Angeles", "Miami", "Atlanta", "Nashville", "Toronto", "Montreal",
          "Columbus", "Detroit", "Minneapolis", "Phoenix", "Raleigh", "Pittsburgh", "Baltimore", "Tampa")
ADJECTIVES = ("Linen", "Ceramic", "Organic", "Recycled", "Walnut", "Merino", "Canvas", "Brass", "Cotton",
              "Bamboo", "Leather", "Glass", "Wool", "Cedar", "Stoneware", "Copper", "Hemp", "Oak")
NOUNS = ("Tote Bag", "Mug", "Candle", "Throw", "Notebook", "Planter", "Tea Towel", "Backpack", "Scarf",
         "Bowl", "Lamp", "Cutting Board", "Water Bottle", "Beanie", "Coaster Set", "Apron", "Pillow Cover",
         "Wallet", "Journal", "Serving Tray")

ORDER_ID_BASE = 7_000_000_000
LINE_ITEM_ID_BASE = 14_000_000_000
COUNTED_STATUSES_SQL = "status NOT IN ('cancelled', 'refunded')"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders of the 1-year store")
    parser.add_argument("--days", type=int, default=365, help="days of history before today")
    parser.add_argument("--small-days", type=int, default=1,
                        help="days of history before today of the second store (same days as the big one)")
    parser.add_argument("--products", type=int, default=300, help="products in each store's catalogue")
    parser.add_argument("--carts-per-order", type=float, default=0.5, help="carts created per order")
    parser.add_argument("--high-value-share", type=float, default=0.01,
                        help="share of orders above the high-value alert's threshold (one alert event each)")
    parser.add_argument("--timezone", default="America/New_York", help="the stores' timezone")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--requests", type=int, default=200, help="measured rounds (one request of each kind per round)")
    parser.add_argument("--warmup", type=int, default=20, help="rounds before measuring, not counted")
    parser.add_argument("--max-measure-seconds", type=float, default=600,
                        help="stop measuring after this long, whatever the round count")
    parser.add_argument("--verify-days", type=int, default=12, help="random days checked besides the fixed ones")
    parser.add_argument("--explain-runs", type=int, default=5, help="EXPLAIN ANALYZE runs per query (median kept)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile 30 in-process page loads of the 1-year store and print the top functions")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="seconds to wait, before measuring, for other work on the machine to settle")
    parser.add_argument("--debug", action="store_true", help="run the servers with DEBUG=true (default false)")
    parser.add_argument("--result-name", default="dashboard", help="write bench/results/<name>.json")
    parser.add_argument("--scratch-db", action="store_true",
                        help="use a new database on the same PostgreSQL server, dropped at the end, instead of the "
                             "development database")
    args = parser.parse_args()
    if not 1_000 <= args.orders <= 20_000_000:
        parser.error("--orders must be in [1000, 20000000]")
    if not 2 <= args.days <= 1000 or not 1 <= args.small_days < args.days:
        parser.error("need 2 <= --days <= 1000 and 1 <= --small-days < --days")
    if not 20 <= args.products <= 10_000 or not 0 < args.carts_per_order <= 10:
        parser.error("--products must be in [20, 10000] and --carts-per-order in (0, 10]")
    if not 0 < args.high_value_share < 0.5:
        parser.error("--high-value-share must be in (0, 0.5)")
    if not 10 <= args.requests <= 5000 or not 0 <= args.warmup <= 1000:
        parser.error("--requests must be in [10, 5000] and --warmup in [0, 1000]")
    if not 0 < args.max_measure_seconds <= 3600:
        parser.error("--max-measure-seconds must be in (0, 3600]")
    try:
        ZoneInfo(args.timezone)
    except Exception:  # noqa: BLE001 - any unknown name
        parser.error(f"unknown timezone {args.timezone!r}")
    return args


# ---------------------------------------------------------------------------
# The shape of a year of orders


@dataclass(frozen=True)
class HourSlot:
    """One hour of the generated history (the current one ends now) and what falls in it."""

    start: datetime
    end: datetime
    orders: int
    carts: int


def black_friday(year: int) -> date:
    """The day after the fourth Thursday of November."""
    first = date(year, 11, 1)
    thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
    return thursday + timedelta(days=1)


def season(day: date) -> float:
    friday = black_friday(day.year)
    if day == friday:
        return 3.2
    if friday < day <= friday + timedelta(days=3):
        return 2.1
    if day.month == 12:
        return 0.7 if day.day == 25 else 1.1 if day.day > 20 else 1.35
    return {1: 0.82, 2: 0.88, 7: 0.92, 8: 0.95}.get(day.month, 1.0)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    from opspulse.metrics.buckets import bucket_start
    from opspulse.metrics.models import Granularity

    return bucket_start(datetime.combine(day, clock(12), tz), Granularity.DAY, tz.key)


def plan_hours(*, tz: ZoneInfo, first_day: date, now: datetime, orders: int, carts: int,
               rng: random.Random) -> list[HourSlot]:
    """Split `orders` and `carts` over every hour from local midnight of `first_day` to now.

    Each hour's weight is its local hour-of-day × weekday × season × growth × the day's
    noise (× the elapsed fraction for the current hour); counts are the differences of
    the rounded cumulative weight, so they add up exactly.
    """
    start = local_midnight(first_day, tz).astimezone(UTC)
    total_days = max((now.astimezone(tz).date() - first_day).days, 1)
    noise: dict[date, float] = {}
    spans: list[tuple[datetime, datetime, float]] = []
    at = start
    while at < now:
        end = min(at + timedelta(hours=1), now)
        local = at.astimezone(tz)
        day = local.date()
        if day not in noise:
            noise[day] = rng.lognormvariate(0, 0.12)
        growth = 0.7 + 0.3 * (day - first_day).days / total_days
        weight = (HOUR_SHAPE[local.hour] * WEEKDAY_SHAPE[local.weekday()] * season(day) * growth * noise[day]
                  * (end - at).total_seconds() / 3600)
        spans.append((at, end, weight))
        at = end
    total = sum(weight for _, _, weight in spans)
    slots: list[HourSlot] = []
    cumulative = 0.0
    done_orders = done_carts = 0
    for index, (begin, end, weight) in enumerate(spans):
        cumulative += weight
        last = index == len(spans) - 1
        upto_orders = orders if last else math.floor(orders * cumulative / total)
        upto_carts = carts if last else math.floor(carts * cumulative / total)
        slots.append(HourSlot(begin, end, upto_orders - done_orders, upto_carts - done_carts))
        done_orders, done_carts = upto_orders, upto_carts
    return slots


def catalogue(count: int, rng: random.Random) -> list[tuple[int, str, str, Decimal]]:
    """(number, title, SKU, price): prices log-normal around $30, between $4 and $400."""
    products = []
    for number in range(1, count + 1):
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        price = Decimal(str(round(min(max(math.exp(rng.gauss(3.4, 0.75)), 4.0), 400.0), 2)))
        products.append((number, title, f"SKU-{number:05d}", price))
    return products


# ---------------------------------------------------------------------------
# Loading, in PostgreSQL

# Orders: times drawn inside each hour, numbered in time order (ids then follow time, as
# they do in a live store), 1–3 line items, a status that depends on the order's age.
CREATE_GEN_ORDER = """
CREATE TEMP TABLE gen_order ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY placed_at)::bigint AS seq, placed_at,
       CASE WHEN r < 0.55 THEN 1 WHEN r < 0.85 THEN 2 ELSE 3 END AS items,
       s
FROM (SELECT h.hour_start + random() * (h.hour_end - h.hour_start) AS placed_at, random() AS r, random() AS s
      FROM gen_hours h, generate_series(1, h.orders)) drawn
"""

# Popular products sell more: the product number is drawn with a quadratic skew.
CREATE_GEN_ITEM = """
CREATE TEMP TABLE gen_item ON COMMIT DROP AS
SELECT seq, idx, product, CASE WHEN q < 0.80 THEN 1 WHEN q < 0.95 THEN 2 ELSE 3 END AS quantity
FROM (SELECT o.seq, i.idx, 1 + least(floor(%(products)s * power(random(), 2))::int, %(products)s - 1) AS product,
             random() AS q
      FROM gen_order o, generate_series(1, o.items) AS i(idx)) drawn
"""

INSERT_ORDERS = """
WITH inserted AS (
    INSERT INTO commerce_order (store_id, external_id, number, status, currency, total, units,
                                customer_first_name, customer_city, placed_at, platform_updated_at,
                                counted_revenue, counted_units, counted_orders, created_at, updated_at)
    SELECT %(store)s, (%(id_base)s + o.seq)::text, '#' || (1000 + o.seq), o.status, %(currency)s, o.total, o.units,
           (%(names)s::text[])[1 + floor(random() * %(name_count)s)::int],
           (%(cities)s::text[])[1 + floor(random() * %(city_count)s)::int],
           o.placed_at, o.updated,
           CASE WHEN o.counts THEN o.total ELSE 0 END, CASE WHEN o.counts THEN o.units ELSE 0 END,
           CASE WHEN o.counts THEN 1 ELSE 0 END, o.placed_at, o.updated
    FROM (SELECT g.seq, g.placed_at, t.total, t.units, st.status, st.status NOT IN ('cancelled', 'refunded') AS counts,
                 CASE WHEN st.status = 'open' THEN g.placed_at
                      ELSE least(g.placed_at + (g.s * 40) * interval '1 hour', %(now)s) END AS updated
          FROM gen_order g
          JOIN (SELECT i.seq, sum(i.quantity * p.price) AS total, sum(i.quantity)::int AS units
                FROM gen_item i JOIN gen_product p ON p.no = i.product GROUP BY i.seq) t USING (seq)
          CROSS JOIN LATERAL (
              SELECT CASE WHEN g.s < 0.03 THEN 'cancelled'
                          WHEN g.s < 0.05 THEN 'refunded'
                          WHEN g.placed_at > %(now)s - interval '1 hour' AND g.s < 0.40 THEN 'open'
                          WHEN g.placed_at > %(now)s - interval '2 days' THEN 'paid'
                          ELSE 'fulfilled' END AS status) st) o
    ORDER BY o.seq
    RETURNING id, external_id
)
INSERT INTO gen_map (seq, id) SELECT external_id::bigint - %(id_base)s, id FROM inserted
"""

INSERT_LINE_ITEMS = """
INSERT INTO commerce_lineitem (order_id, external_id, product_external_id, variant_external_id, sku, title,
                               quantity, price)
SELECT m.id, (%(item_base)s + i.seq * 4 + i.idx)::text, (100000 + p.no)::text, (200000 + p.no)::text, p.sku, p.title,
       i.quantity, p.price
FROM gen_item i JOIN gen_map m USING (seq) JOIN gen_product p ON p.no = i.product
ORDER BY m.id, i.idx
"""

INSERT_CARTS = """
INSERT INTO commerce_cart (store_id, external_id, item_count, value, platform_created_at, platform_updated_at)
SELECT %(store)s, 'bench-cart-' || row_number() OVER (ORDER BY created), items,
       round((items * (8 + random() * 52))::numeric, 2), created,
       least(created + random() * interval '25 minutes', %(now)s)
FROM (SELECT h.hour_start + random() * (h.hour_end - h.hour_start) AS created, 1 + floor(random() * 4)::int AS items
      FROM gen_hours h, generate_series(1, h.carts)) drawn
"""

# Shopify inventory item ids; a third of the products are also stocked at a second location.
INSERT_INVENTORY = """
INSERT INTO commerce_inventorylevel (store_id, item_external_id, location_external_id, sku, title, available,
                                     platform_updated_at, updated_at)
SELECT %(store)s, (300000 + p.no)::text, loc.id, p.sku, p.title,
       CASE WHEN random() < 0.08 THEN floor(random() * 7)::int - 1 ELSE 6 + floor(random() * 400)::int END,
       %(now)s - random() * interval '30 days', %(now)s
FROM gen_product p
JOIN (VALUES ('60001', 0), ('60002', 1)) AS loc(id, k) ON loc.k = 0 OR p.no %% 3 = 0
"""

# Hour buckets start on the local hour (the UTC instant minus the local minutes and
# seconds: right in the repeated hour of a DST change too), day buckets at local midnight.
HOUR_BUCKET = "{col} - (({col} AT TIME ZONE %(tz)s) - date_trunc('hour', {col} AT TIME ZONE %(tz)s))"
DAY_BUCKET = "date_trunc('day', {col}, %(tz)s)"

INSERT_ORDER_METRICS = f"""
INSERT INTO metrics_metric (store_id, name, granularity, timestamp, value)
SELECT %(store)s, v.name, b.granularity, b.ts, v.value
FROM (
    SELECT 'hour' AS granularity, ts, sum(counted_revenue) AS revenue, sum(counted_orders) AS orders,
           sum(counted_units) AS units
    FROM (SELECT {HOUR_BUCKET.format(col="placed_at")} AS ts, counted_revenue, counted_orders, counted_units
          FROM commerce_order WHERE store_id = %(store)s) o
    GROUP BY ts
    UNION ALL
    SELECT 'day', ts, sum(counted_revenue), sum(counted_orders), sum(counted_units)
    FROM (SELECT {DAY_BUCKET.format(col="placed_at")} AS ts, counted_revenue, counted_orders, counted_units
          FROM commerce_order WHERE store_id = %(store)s) o
    GROUP BY ts
) b
CROSS JOIN LATERAL (VALUES ('revenue', b.revenue), ('orders', b.orders::numeric),
                           ('units_sold', b.units::numeric)) AS v(name, value)
WHERE v.value <> 0
"""

INSERT_CART_METRICS = f"""
INSERT INTO metrics_metric (store_id, name, granularity, timestamp, value)
SELECT %(store)s, 'carts', granularity, ts, count(*)
FROM (SELECT 'hour' AS granularity, {HOUR_BUCKET.format(col="platform_created_at")} AS ts
      FROM commerce_cart WHERE store_id = %(store)s
      UNION ALL
      SELECT 'day', {DAY_BUCKET.format(col="platform_created_at")}
      FROM commerce_cart WHERE store_id = %(store)s) c
GROUP BY granularity, ts
"""

# Each product's units and revenue per local day, as the worker keeps them.
INSERT_PRODUCT_DAYS = """
INSERT INTO metrics_productday (store_id, day, product_key, title, units, revenue)
SELECT %(store)s, (o.placed_at AT TIME ZONE %(tz)s)::date, COALESCE(NULLIF(li.product_external_id, ''), li.title),
       max(li.title), sum(li.quantity), sum(li.quantity * li.price)
FROM commerce_lineitem li JOIN commerce_order o ON o.id = li.order_id
WHERE o.store_id = %(store)s AND o.counted_orders > 0 AND li.quantity > 0
GROUP BY 2, 3
"""

# One event per counted order at or above the threshold, as the alert check fires them.
INSERT_HIGH_VALUE_EVENTS = """
INSERT INTO alerts_alertevent (public_id, alert_id, store_id, subject, condition, message, data, fired_at, notified_at)
SELECT gen_random_uuid(), %(alert)s, store_id, 'order:' || external_id, '',
       'High-value order ' || number || ': ' || total || ' ' || currency,
       jsonb_build_object('order', external_id, 'total', total::text),
       least(placed_at + interval '3 seconds', %(now)s), least(placed_at + interval '5 seconds', %(now)s)
FROM commerce_order
WHERE store_id = %(store)s AND counted_orders = 1 AND total >= %(threshold)s
"""

INSERT_LOW_STOCK_EVENTS = """
INSERT INTO alerts_alertevent (public_id, alert_id, store_id, subject, condition, message, data, fired_at,
                               notified_at, resolved_at)
SELECT gen_random_uuid(), %(alert)s, %(store)s,
       'stock:' || l.item_external_id || ':' || l.location_external_id || ':' || e.at,
       'stock:' || l.item_external_id || ':' || l.location_external_id,
       'Low stock: ' || l.title || ' has ' || e.left_over || ' left',
       jsonb_build_object('item', l.item_external_id, 'available', e.left_over), e.at, e.at + interval '4 seconds',
       -- past episodes, each restocked an hour later
       e.at + interval '1 hour'
FROM (SELECT %(start)s::timestamptz + random() * (%(now)s::timestamptz - %(start)s::timestamptz) AS at,
             floor(random() * 6)::int AS left_over, 1 + floor(random() * %(levels)s)::int AS k
      FROM generate_series(1, %(count)s)) e
JOIN (SELECT row_number() OVER (ORDER BY id) AS k, item_external_id, location_external_id, title
      FROM commerce_inventorylevel WHERE store_id = %(store)s) l USING (k)
ON CONFLICT (alert_id, subject) DO NOTHING
"""

BULK_TABLES = ("commerce_order", "commerce_lineitem", "commerce_cart", "commerce_inventorylevel",
               "metrics_metric", "metrics_productday", "alerts_alert", "alerts_alertevent")


class Timer:
    """Seconds per loading step, logged as they finish."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    def run(self, name: str, cursor: Any, sql: str, params: dict[str, Any] | None = None) -> int:
        started = time.monotonic()
        cursor.execute(sql, params)
        seconds = time.monotonic() - started
        self.steps[name] = round(self.steps.get(name, 0.0) + seconds, 2)
        rows = cursor.rowcount
        log(f"  {name}: {rows:,} rows in {seconds:.1f}s" if rows is not None and rows >= 0 else
            f"  {name}: {seconds:.1f}s")
        return rows


def load_store(*, store: Any, slots: list[HourSlot], products: list[tuple[int, str, str, Decimal]],
               now: datetime, seed: float, timer: Timer) -> None:
    """Insert the store's orders, line items, carts and inventory levels (one transaction)."""
    from django.db import connection, transaction

    params = {
        "store": store.pk, "now": now, "currency": store.currency, "products": len(products),
        "id_base": ORDER_ID_BASE, "item_base": LINE_ITEM_ID_BASE,
        "names": list(FIRST_NAMES), "name_count": len(FIRST_NAMES),
        "cities": list(CITIES), "city_count": len(CITIES),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL statement_timeout = '30min'")
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute("CREATE TEMP TABLE gen_hours (hour_start timestamptz, hour_end timestamptz, orders int,"
                       " carts int) ON COMMIT DROP")
        cursor.execute("INSERT INTO gen_hours SELECT * FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::int[],"
                       " %s::int[])", [[s.start for s in slots], [s.end for s in slots],
                                       [s.orders for s in slots], [s.carts for s in slots]])
        cursor.execute("CREATE TEMP TABLE gen_product (no int PRIMARY KEY, title text, sku text, price numeric(14, 2))"
                       " ON COMMIT DROP")
        cursor.execute("INSERT INTO gen_product SELECT * FROM unnest(%s::int[], %s::text[], %s::text[],"
                       " %s::numeric[])", [[p[0] for p in products], [p[1] for p in products],
                                           [p[2] for p in products], [p[3] for p in products]])
        cursor.execute("CREATE TEMP TABLE gen_map (seq bigint PRIMARY KEY, id bigint) ON COMMIT DROP")
        timer.run("draw order times", cursor, CREATE_GEN_ORDER)
        timer.run("draw line items", cursor, CREATE_GEN_ITEM, params)
        cursor.execute("ANALYZE gen_order")
        cursor.execute("ANALYZE gen_item")
        timer.run("insert orders", cursor, INSERT_ORDERS, params)
        cursor.execute("ANALYZE gen_map")
        timer.run("insert line items", cursor, INSERT_LINE_ITEMS, params)
        timer.run("insert carts", cursor, INSERT_CARTS, params)
        timer.run("insert inventory levels", cursor, INSERT_INVENTORY, params)


def build_metrics(store: Any, timer: Timer) -> None:
    from django.db import connection, transaction

    params = {"store": store.pk, "tz": store.timezone}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        timer.run("build order metric buckets", cursor, INSERT_ORDER_METRICS, params)
        timer.run("build cart metric buckets", cursor, INSERT_CART_METRICS, params)
        timer.run("build product days", cursor, INSERT_PRODUCT_DAYS, params)


def high_value_threshold(store: Any, share: float) -> Decimal:
    """The order total that `share` of the store's counted orders reach, rounded up to $10."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT percentile_disc(%s) WITHIN GROUP (ORDER BY total) FROM commerce_order"
                       " WHERE store_id = %s AND counted_orders = 1", [1 - share, store.pk])
        value = cursor.fetchone()[0] or Decimal(100)
    return Decimal(math.ceil(value / 10) * 10)


def create_alerts(*, store: Any, threshold: Decimal, first_day_start: datetime, days: int, now: datetime,
                  timer: Timer) -> None:
    """A low-stock and a high-value-order alert, and the events they fired over the history."""
    from django.db import connection, transaction

    from opspulse.alerts.models import Alert, AlertType

    with transaction.atomic(), connection.cursor() as cursor:
        low = Alert.objects.create(store=store, type=AlertType.LOW_STOCK, config={"threshold": 5})
        high = Alert.objects.create(store=store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": str(threshold)})
        timer.run("high-value alert events", cursor, INSERT_HIGH_VALUE_EVENTS,
                  {"alert": high.pk, "store": store.pk, "now": now, "threshold": threshold})
        cursor.execute("SELECT count(*) FROM commerce_inventorylevel WHERE store_id = %s", [store.pk])
        levels = cursor.fetchone()[0]
        timer.run("low-stock alert events", cursor, INSERT_LOW_STOCK_EVENTS,
                  {"alert": low.pk, "store": store.pk, "now": now, "start": first_day_start, "levels": levels,
                   "count": max(1, days // 2)})


def vacuum_analyze(timer: Timer) -> None:
    """A year-old store's tables have been vacuumed (visibility map, hint bits) and analysed."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in BULK_TABLES:
            timer.run(f"VACUUM ANALYZE {table}", cursor, f"VACUUM ANALYZE {table}")


def database_sessions() -> int:
    """Connections ever opened to the benchmark's database (PostgreSQL's cumulative statistics)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def store_counts(store_ids: list[int]) -> dict[str, dict[str, int]]:
    from django.db import connection

    queries = {
        "orders": "SELECT count(*) FROM commerce_order WHERE store_id = %s",
        "line_items": "SELECT count(*) FROM commerce_lineitem li JOIN commerce_order o ON o.id = li.order_id"
                      " WHERE o.store_id = %s",
        "carts": "SELECT count(*) FROM commerce_cart WHERE store_id = %s",
        "inventory_levels": "SELECT count(*) FROM commerce_inventorylevel WHERE store_id = %s",
        "metric_rows_hour": "SELECT count(*) FROM metrics_metric WHERE store_id = %s AND granularity = 'hour'",
        "metric_rows_day": "SELECT count(*) FROM metrics_metric WHERE store_id = %s AND granularity = 'day'",
        "product_days": "SELECT count(*) FROM metrics_productday WHERE store_id = %s",
        "alert_events": "SELECT count(*) FROM alerts_alertevent WHERE store_id = %s",
    }
    result: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        for store_id in store_ids:
            counts = {}
            for name, sql in queries.items():
                cursor.execute(sql, [store_id])
                counts[name] = cursor.fetchone()[0]
            result[str(store_id)] = counts
    return result


def table_sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                       [list(BULK_TABLES)])
        return {name: size for name, size in cursor.fetchall()}


# ---------------------------------------------------------------------------
# Verification: the buckets against a recount from the rows, with bucket_start() itself


class VerificationError(SystemExit):
    pass


def verify_store(store: Any, days: list[date]) -> dict[str, Any]:
    """Recount the sample days' buckets from orders and carts in Python; check every total.

    Also checks each order's counted_* columns against its status (what record_order
    counts) and its total and units against its line items.
    """
    from django.db import connection
    from django.db.models import F, Sum

    from opspulse.commerce.models import NOT_COUNTED, Cart, LineItem, Order
    from opspulse.metrics.buckets import bucket_start, day_bounds
    from opspulse.metrics.models import Granularity, Metric

    tz = ZoneInfo(store.timezone)
    problems: list[str] = []
    buckets_checked = orders_checked = 0
    for day in days:
        start, end = day_bounds(local_midnight(day, tz))
        expected: dict[tuple[str, str, datetime], Decimal] = defaultdict(Decimal)
        orders = list(Order.objects.filter(store=store, placed_at__gte=start, placed_at__lt=end).values_list(
            "id", "placed_at", "status", "total", "units", "counted_revenue", "counted_units", "counted_orders"))
        items = {row["order_id"]: row for row in LineItem.objects.filter(
            order__store=store, order__placed_at__gte=start, order__placed_at__lt=end).values("order_id").annotate(
            total=Sum(F("quantity") * F("price")), units=Sum("quantity"))}
        for order_id, placed_at, status, total, units, revenue, counted_units, counted_orders in orders:
            counts = status not in NOT_COUNTED
            if (revenue, counted_units, counted_orders) != ((total, units, 1) if counts else (0, 0, 0)):
                problems.append(f"order {order_id}: counted columns do not follow its status {status}")
            line = items.get(order_id)
            if line is None or line["total"] != total or line["units"] != units:
                problems.append(f"order {order_id}: total/units differ from its line items")
            for granularity in (Granularity.HOUR, Granularity.DAY):
                ts = bucket_start(placed_at, granularity, store.timezone).astimezone(UTC)
                expected[("revenue", granularity, ts)] += revenue
                expected[("orders", granularity, ts)] += counted_orders
                expected[("units_sold", granularity, ts)] += counted_units
        for created in Cart.objects.filter(store=store, platform_created_at__gte=start,
                                           platform_created_at__lt=end).values_list("platform_created_at", flat=True):
            for granularity in (Granularity.HOUR, Granularity.DAY):
                expected[("carts", granularity, bucket_start(created, granularity, store.timezone).astimezone(UTC))] += 1
        actual = {(name, granularity, ts.astimezone(UTC)): value for name, granularity, ts, value in
                  Metric.objects.filter(store=store, timestamp__gte=start, timestamp__lt=end).values_list(
                      "name", "granularity", "timestamp", "value")}
        wanted = {key: value for key, value in expected.items() if value}
        for key in sorted(set(wanted) | set(actual), key=str):
            if wanted.get(key, Decimal(0)) != actual.get(key, Decimal(0)):
                problems.append(f"{day} {key[0]}/{key[1]} {key[2]:%Y-%m-%d %H:%M}Z: buckets say "
                                f"{actual.get(key, 0)}, the rows say {wanted.get(key, 0)}")
        day_keys = {key[2] for key in wanted if key[1] == Granularity.DAY}
        if day_keys and day_keys != {start.astimezone(UTC)}:
            problems.append(f"{day}: day bucket at {day_keys}, local midnight is {start.astimezone(UTC)}")
        buckets_checked += len(set(wanted) | set(actual))
        orders_checked += len(orders)

    # Every total: the day buckets and the hour buckets each add up to the rows.
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(counted_revenue), 0), coalesce(sum(counted_orders), 0),"
                       " coalesce(sum(counted_units), 0) FROM commerce_order WHERE store_id = %s", [store.pk])
        revenue, orders_total, units = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM commerce_cart WHERE store_id = %s", [store.pk])
        carts = cursor.fetchone()[0]
        cursor.execute("SELECT name, granularity, sum(value) FROM metrics_metric WHERE store_id = %s GROUP BY 1, 2",
                       [store.pk])
        sums = {(name, granularity): value for name, granularity, value in cursor.fetchall()}
    rows_say = {"revenue": Decimal(revenue), "orders": Decimal(orders_total), "units_sold": Decimal(units),
                "carts": Decimal(carts)}
    for name, value in rows_say.items():
        for granularity in ("hour", "day"):
            if sums.get((name, granularity), Decimal(0)) != value:
                problems.append(f"all time {name}/{granularity}: buckets {sums.get((name, granularity))}, rows {value}")
    if problems:
        for problem in problems[:20]:
            log(f"  VERIFY FAILED: {problem}")
        raise VerificationError(f"metric buckets of store {store.pk} disagree with its orders "
                                f"({len(problems)} problems); the benchmark would measure wrong data")
    return {"days": [d.isoformat() for d in days], "orders_recounted": orders_checked,
            "buckets_compared": buckets_checked, "totals": {k: str(v) for k, v in rows_say.items()}}


def sample_days(first_day: date, today: date, tz: ZoneInfo, extra: int, rng: random.Random) -> list[date]:
    """Today, yesterday, the first day, the DST changes, Black Friday and `extra` random days."""
    days = {today, today - timedelta(days=1), first_day}
    day = first_day
    while day < today:
        if local_midnight(day, tz).utcoffset() != local_midnight(day + timedelta(days=1), tz).utcoffset():
            days.add(day)
        day += timedelta(days=1)
    for year in {first_day.year, today.year}:
        friday = black_friday(year)
        if first_day <= friday <= today:
            days.add(friday)
    span = (today - first_day).days
    for _ in range(extra):
        days.add(first_day + timedelta(days=rng.randrange(span + 1)))
    return sorted(days)


# Today's best sellers recounted from the line items of today's counted orders.
RECOUNT_TOP_PRODUCTS = """
SELECT max(li.title), sum(li.quantity), sum(li.quantity * li.price)
FROM commerce_lineitem li JOIN commerce_order o ON o.id = li.order_id
WHERE o.store_id = %(store)s AND o.placed_at >= %(start)s AND o.placed_at < %(end)s
  AND o.counted_orders > 0 AND li.quantity > 0
GROUP BY COALESCE(NULLIF(li.product_external_id, ''), li.title)
ORDER BY 2 DESC, 3 DESC, 1
LIMIT %(limit)s
"""


def check_page(client: Any, store: Any) -> dict[str, str]:
    """The page shows today's revenue, order count and best sellers as recounted from the orders."""
    from django.db import connection
    from django.db.models import Sum

    from opspulse.commerce.models import Order
    from opspulse.lib.formatting import format_count, format_money
    from opspulse.metrics.selectors import TOP_PRODUCTS_SHOWN, local_day, top_products

    day = local_day(store)
    totals = Order.objects.filter(store=store, placed_at__gte=day.start, placed_at__lt=day.end).aggregate(
        revenue=Sum("counted_revenue"), orders=Sum("counted_orders"))
    revenue = format_money(totals["revenue"] or 0, store.currency)
    orders = format_count(totals["orders"] or 0)
    html = client.get(f"/stores/{store.public_id}/").content.decode()
    for label, value in (("revenue", revenue), ("orders", orders)):
        if f"data-kpi-value>{value}<" not in html:
            raise VerificationError(f"the dashboard of store {store.pk} does not show today's {label} {value}")
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT_TOP_PRODUCTS,
                       {"store": store.pk, "start": day.start, "end": day.end, "limit": TOP_PRODUCTS_SHOWN})
        recounted = cursor.fetchall()
    shown = [(p.title, p.units, p.revenue) for p in top_products(store, day=day)]
    if shown != recounted or not shown:
        raise VerificationError(f"store {store.pk}'s best sellers {shown} are not today's line items' {recounted}")
    return {"revenue_today": revenue, "orders_today": orders, "best_seller": f"{shown[0][0]} ({shown[0][1]} units)"}


# ---------------------------------------------------------------------------
# In process: the queries of one load, EXPLAIN ANALYZE, and where the time goes


QUERY_LABELS: tuple[tuple[str, str], ...] = (
    (r'FROM "django_session"', "session"),
    (r'FROM "accounts_user"', "user"),
    (r'FROM "stores_store"', "store, scoped to the user"),
    (r'FROM "metrics_metric".*"granularity" = \'day\'', "today's day buckets (KPIs)"),
    (r'FROM "metrics_metric".*"granularity" = \'hour\'', "hour buckets, yesterday and today (chart)"),
    (r'FROM "metrics_productday"', "today's best sellers (product days)"),
    (r'SUM\(.*FROM "commerce_order"', "yesterday so far, from orders (KPIs)"),
    (r'FROM "commerce_order"', "latest 20 orders (feed)"),
    (r'FROM "commerce_cart"', "carts of the last 30 min"),
    (r'FROM "alerts_alert" ', "low-stock threshold"),
    (r'COUNT\(.*FROM "commerce_inventorylevel"', "low-stock count"),
    (r'FROM "commerce_inventorylevel"', "low-stock items"),
    (r'FROM "alerts_alertevent"', "latest alert events"),
)


def query_label(sql: str) -> str:
    flat = " ".join(sql.split())
    for pattern, label in QUERY_LABELS:
        if re.search(pattern, flat):
            return label
    return flat[:60]


def explain_load(client: Any, store: Any, runs: int) -> dict[str, Any]:
    """Capture the queries of one page load; run each SELECT under EXPLAIN (ANALYZE, BUFFERS)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(f"/stores/{store.public_id}/")
    with CaptureQueriesContext(connection) as captured:
        client.get(f"/stores/{store.public_id}/")
    queries = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            executions, plannings, plan = [], [], None
            for _ in range(runs):
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
                raw = cursor.fetchone()[0]
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                executions.append(plan["Execution Time"])
                plannings.append(plan["Planning Time"])
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            text = [row[0] for row in cursor.fetchall()]
            top = plan["Plan"]
            queries.append({
                "label": query_label(sql),
                "execution_ms": round(statistics.median(executions), 3),
                "planning_ms": round(statistics.median(plannings), 3),
                "rows": top.get("Actual Rows"),
                "shared_hit_blocks": top.get("Shared Hit Blocks"),
                "shared_read_blocks": top.get("Shared Read Blocks"),
                "sql": " ".join(sql.split()),
                "plan": text,
            })
    queries.sort(key=lambda q: q["execution_ms"], reverse=True)
    return {"statements": len(captured.captured_queries), "selects": len(queries), "queries": queries}


def time_in_process(client: Any, store: Any, loads: int) -> dict[str, Any]:
    """Page loads through Django's test client in this process: total, SQL (round trips included) and the rest."""
    from django.db import connection

    sql_seconds = [0.0]
    statements = [0]

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds[0] += time.perf_counter() - started
            statements[0] += 1

    totals, sql_times = [], []
    with connection.execute_wrapper(timed):
        for _ in range(loads):
            sql_seconds[0], statements[0] = 0.0, 0
            started = time.perf_counter()
            client.get(f"/stores/{store.public_id}/")
            totals.append((time.perf_counter() - started) * 1000)
            sql_times.append(sql_seconds[0] * 1000)
    total, sql = statistics.median(totals), statistics.median(sql_times)
    return {"loads": loads, "median_total_ms": round(total, 2), "median_sql_ms": round(sql, 2),
            "median_python_ms": round(total - sql, 2), "statements": statements[0]}


def profile_loads(client: Any, store: Any, loads: int, out: Path) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(loads):
        client.get(f"/stores/{store.public_id}/")
    profiler.disable()
    profiler.dump_stats(str(out))
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
    text = stream.getvalue()
    print(text, flush=True)
    return text.splitlines()


# ---------------------------------------------------------------------------
# The client: its own process, one request at a time


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure every probe once per round, rounds in shuffled order; return the samples in ms."""
    import httpx
    from websockets.sync.client import connect

    rng = random.Random(spec["seed"])
    base = f"http://127.0.0.1:{spec['port']}"
    app = httpx.Client(base_url=base, cookies={"sessionid": spec["cookie"]}, timeout=10, trust_env=False)
    bare = httpx.Client(base_url=f"http://127.0.0.1:{spec['bare_port']}", timeout=10, trust_env=False)
    samples: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, int] = {}
    # How each first load's socket began: "page current", or every panel.
    first_frames: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    error_examples: list[str] = []

    def get(client: httpx.Client, path: str, must_contain: str) -> tuple[float, int]:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or must_contain not in response.text:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:120]!r}")
        return elapsed, len(response.content)

    def open_socket(path: str) -> tuple[float, float, str]:
        """Open the socket at `path`; return when it opened, when its first frame came, and the frame."""
        with connect(f"ws://127.0.0.1:{spec['port']}{path}", origin=base,
                     additional_headers={"Cookie": f"sessionid={spec['cookie']}"}, proxy=None,
                     open_timeout=10, ping_interval=None, max_size=None) as ws:
            opened = time.perf_counter()
            frame = ws.recv(timeout=10)
            received = time.perf_counter()
        return opened, received, frame if isinstance(frame, str) else frame.decode()

    def first_load(key: str, public_id: str) -> dict[str, float]:
        """What a browser does: the page, then the socket its page names (the page's
        render time in its URL), until the first frame."""
        started = time.perf_counter()
        response = app.get(f"/stores/{public_id}/")
        page_ms = (time.perf_counter() - started) * 1000
        found = re.search(r'ws-connect="([^"]+)"', response.text)
        if response.status_code != 200 or 'id="order-feed"' not in response.text or not found:
            raise RuntimeError(f"GET /stores/{public_id}/: {response.status_code} {response.text[:120]!r}")
        opening = time.perf_counter()
        opened, received, text = open_socket(html.unescape(found.group(1)))
        if text == spec["page_current"]:
            first_frames[f"{key}:page current"] += 1
        elif 'id="order-feed"' in text:
            first_frames[f"{key}:every panel"] += 1
        else:
            raise RuntimeError(f"socket of {key}: first frame neither the panels nor 'page current': {text[:120]!r}")
        sizes[f"page:{key}"] = len(response.content)
        return {f"page:{key}": page_ms, f"socket_open:{key}": (opened - opening) * 1000,
                f"first_load:{key}": (received - started) * 1000}

    def every_panel(key: str, public_id: str) -> dict[str, float]:
        """A socket without a page render time: what a page that missed a change (or a
        reconnect after one) gets, every panel."""
        opening = time.perf_counter()
        opened, received, text = open_socket(f"/ws/stores/{public_id}/")
        if 'id="order-feed"' not in text:
            raise RuntimeError(f"socket of {key}: first frame without the panels: {text[:120]!r}")
        sizes[f"frame:{key}"] = len(text.encode())
        return {f"socket_first_frame:{key}": (received - opened) * 1000,
                f"socket_total:{key}": (received - opening) * 1000}

    def one(name: str, client: httpx.Client, path: str, marker: str) -> dict[str, float]:
        elapsed, size = get(client, path, marker)
        sizes[name] = size
        return {name: elapsed}

    probes = {
        "bare": lambda: one("bare", bare, "/", "accepted"),
        "home": lambda: one("home", app, "/", "Your stores"),
        "load:big": lambda: first_load("big", spec["big"]),
        "load:small": lambda: first_load("small", spec["small"]),
        "every_panel:big": lambda: every_panel("big", spec["big"]),
        "every_panel:small": lambda: every_panel("small", spec["small"]),
        "panels:big": lambda: one("panels:big", app, f"/stores/{spec['big']}/panels/", 'id="order-feed"'),
    }
    deadline = time.monotonic() + spec["max_seconds"]
    rounds = rounds_run = 0
    for round_index in range(spec["warmup"] + spec["requests"]):
        if time.monotonic() > deadline:
            break
        rounds_run += 1
        order = list(probes)
        rng.shuffle(order)
        for name in order:
            try:
                measured = probes[name]()
            except Exception as exc:  # noqa: BLE001 - counted and reported, the round goes on
                errors[name] += 1
                if len(error_examples) < 5:
                    error_examples.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                continue
            if round_index >= spec["warmup"]:
                for key, value in measured.items():
                    samples[key].append(value)
        if round_index >= spec["warmup"]:
            rounds += 1
    app.close()
    bare.close()
    return {"samples": dict(samples), "sizes": sizes, "first_frames": dict(first_frames),
            "errors": dict(errors), "error_examples": error_examples,
            "rounds": rounds, "rounds_run": rounds_run}


# ---------------------------------------------------------------------------


def stale_bench_store_ids() -> list[int]:
    """Stores of bench accounts whose process is gone (what delete_stale_tenants will delete)."""
    from opspulse.accounts.models import Account
    from opspulse.stores.models import Store

    pattern = re.compile(r"pid=(\d+) run=(\d+)")
    accounts = []
    for account in Account.objects.filter(name__startswith=tenants.ACCOUNT_PREFIX):
        match = pattern.search(account.name)
        if match and (int(match[1]) == os.getpid() or not runtime.alive(int(match[1]))):
            accounts.append(account.pk)
    return list(Store.objects.filter(account_id__in=accounts).values_list("pk", flat=True))


def purge_store_rows(store_ids: list[int]) -> None:
    """Delete the stores' bulk rows with plain SQL before the tenant's ORM cleanup.

    Deleting a store through the ORM would load every order of it into memory to cascade
    to the line items: fine for a few hundred, not for a million.
    """
    from django.db import connection, transaction

    if not store_ids:
        return
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM alerts_alertevent WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM alerts_alert WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM commerce_lineitem li USING commerce_order o"
                       " WHERE li.order_id = o.id AND o.store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM commerce_order WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM commerce_cart WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM commerce_inventorylevel WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM metrics_metric WHERE store_id = ANY(%s)", [store_ids])
        cursor.execute("DELETE FROM metrics_productday WHERE store_id = ANY(%s)", [store_ids])
    log(f"deleted the bulk rows of {len(store_ids)} bench stores in {time.monotonic() - started:.0f}s")


LATENCY_ROWS = (
    ("bare", "bare ASGI app, GET / (ceiling)"),
    ("home", "account home, signed in (trivial page)"),
    ("page:small", "dashboard page, {small} store"),
    ("page:big", "dashboard page, {big} store"),
    ("socket_open:small", "socket handshake, {small} store"),
    ("socket_open:big", "socket handshake, {big} store"),
    ("socket_first_frame:small", "socket open → every panel (page not current), {small} store"),
    ("socket_first_frame:big", "socket open → every panel (page not current), {big} store"),
    ("first_load:small", "first load (page + socket + first frame), {small} store"),
    ("first_load:big", "first load (page + socket + first frame), {big} store"),
    ("panels:big", "panels endpoint (fallback poll), {big} store"),
)


class DashboardBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tenant = tenants.Tenant(script="dashboard")
        self.services: list[Service] = []
        self.started = time.monotonic()

    def run(self) -> None:
        a = self.args
        # The bench process renders pages in process too (query capture, EXPLAIN): same DEBUG as the servers.
        os.environ["DEBUG"] = "true" if a.debug else "false"
        # WhiteNoise's notice that collectstatic has not run (no static files are requested here).
        warnings.filterwarnings("ignore", message="No directory at")
        scratch = database.use_scratch_database() if a.scratch_db else None
        runtime.setup_django()
        purge_store_rows(stale_bench_store_ids())
        tenants.delete_stale_tenants()
        result: dict[str, Any] = {"benchmark": "dashboard", "started_at": reports.now_iso(), "machine": machine.machine(),
                                  "config": dict(vars(a)), "code": reports.code_version()}
        try:
            with processes.work_dir("dashboard") as tmp:
                result.update(self.measure(tmp))
        finally:
            for service in self.services:
                service.stop()
            if scratch:
                # Dropping the scratch database deletes the bench tenant with everything else.
                database.drop_scratch_database(scratch)
            else:
                purge_store_rows(self.tenant.store_ids)
                self.tenant.cleanup()
        result["finished_at"] = reports.now_iso()
        result["total_run_s"] = round(time.monotonic() - self.started, 1)
        reports.stamp_machine_at_end(result)
        result.setdefault("tables", {})["run"] = self.run_table(result)
        reports.write_result(a.result_name, result)

    @staticmethod
    def run_table(result: dict[str, Any]) -> str:
        data, sessions = result.get("data", {}), result.get("database_sessions", {})
        cores = result.get("cpu_cores", {})
        rows = [
            ["data generation (s)", data.get("generation_s")],
            ["bucket verification (s)", data.get("verification", {}).get("seconds")],
            ["measurement window (s)", result.get("measure_window_s")],
            ["DB connections opened / HTTP requests to Django",
             f"{sessions.get('opened', '-')} / {sessions.get('django_http_requests', '-')}"],
            ["cores while measuring", machine.cpu_line(cores) if cores else None],
            ["total run time (s)", result.get("total_run_s")],
        ]
        return reports.print_table("Run", ["measure", "value"], rows)

    # -- data

    def generate(self) -> dict[str, Any]:
        from django.utils import timezone

        a = self.args
        tz = ZoneInfo(a.timezone)
        # Three stores in one account with one owner; stores 0 and 2 are both Shopify
        # (store 1, WooCommerce, stays empty).
        self.tenant.create(stores=3, stores_per_account=3, timezone=a.timezone, currency=a.currency)
        big, small = self.tenant.stores[0], self.tenant.stores[2]
        rng = random.Random(a.seed)
        now = timezone.now()
        today = now.astimezone(tz).date()
        first_day = today - timedelta(days=a.days)
        small_first_day = today - timedelta(days=a.small_days)
        slots = plan_hours(tz=tz, first_day=first_day, now=now, orders=a.orders,
                           carts=round(a.orders * a.carts_per_order), rng=rng)
        small_start = local_midnight(small_first_day, tz)
        small_slots = [slot for slot in slots if slot.start >= small_start]
        products = catalogue(a.products, rng)
        timer = Timer()
        started = time.monotonic()
        log(f"generating {a.orders:,} orders over {a.days} days + today ({a.timezone}) for store {big.pk}")
        load_store(store=big, slots=slots, products=products, now=now, seed=0.1, timer=timer)
        log(f"generating the last {a.small_days} day(s) + today for store {small.pk} "
            f"({sum(s.orders for s in small_slots):,} orders)")
        load_store(store=small, slots=small_slots, products=products, now=now, seed=0.2, timer=timer)
        log("metric buckets, alerts")
        for store in (big, small):
            build_metrics(store, timer)
        threshold = high_value_threshold(big, a.high_value_share)
        create_alerts(store=big, threshold=threshold, first_day_start=local_midnight(first_day, tz), days=a.days,
                      now=now, timer=timer)
        create_alerts(store=small, threshold=threshold, first_day_start=small_start, days=a.small_days, now=now,
                      timer=timer)
        vacuum_analyze(timer)
        generation_s = round(time.monotonic() - started, 1)
        log(f"data generated in {generation_s:.0f}s")

        started = time.monotonic()
        days = sample_days(first_day, today, tz, a.verify_days, rng)
        log(f"verifying the buckets of {len(days)} days of store {big.pk} and of the last days of store {small.pk}")
        verification = {
            "big": verify_store(big, days),
            "small": verify_store(small, sample_days(small_first_day, today, tz, 0, rng)),
        }
        verification["seconds"] = round(time.monotonic() - started, 1)
        log(f"buckets verified: {verification['big']['buckets_compared']:,} buckets, "
            f"{verification['big']['orders_recounted']:,} orders recounted ({verification['seconds']:.0f}s)")
        self.big, self.small = big, small
        return {
            "generated_at": now.isoformat(timespec="seconds"),
            "local_time_at_generation": now.astimezone(tz).isoformat(timespec="seconds"),
            "first_day": first_day.isoformat(),
            "high_value_threshold": str(threshold),
            "products": a.products,
            "orders_today_big": sum(s.orders for s in slots if s.start >= local_midnight(today, tz)),
            "generation_s": generation_s,
            "steps_s": timer.steps,
            "rows": store_counts([big.pk, small.pk]),
            "table_bytes": table_sizes(),
            "verification": verification,
        }

    # -- measurement

    def measure(self, tmp: Path) -> dict[str, Any]:
        from django.db import connection
        from django.test import Client

        from opspulse.accounts.models import User
        from opspulse.live.consumers import PAGE_CURRENT

        a = self.args
        data = self.generate()
        big, small = self.big, self.small
        cookie = self.tenant.login_cookie(self.tenant.user_ids[0])

        client = Client()
        client.force_login(User.objects.get(pk=self.tenant.user_ids[0]))
        self.tenant.session_keys.append(client.cookies["sessionid"].value)
        data["page_check"] = {"big": check_page(client, big), "small": check_page(client, small)}
        log(f"the {a.days}-day store's dashboard shows {data['page_check']['big']['orders_today']} orders and "
            f"{data['page_check']['big']['revenue_today']} today, as the orders say; "
            f"best seller {data['page_check']['big']['best_seller']}")
        explain = {"big": explain_load(client, big, a.explain_runs), "small": explain_load(client, small, a.explain_runs)}
        in_process = {"big": time_in_process(client, big, 30), "small": time_in_process(client, small, 30)}
        profile = profile_loads(client, big, 30, tmp / "page-big.prof") if a.profile else None
        connection.close()

        env = processes.service_env(debug=a.debug)
        port, bare_port = processes.free_port(), processes.free_port()
        web = processes.start_web("web", "config.asgi:application", port=port, workers=a.web_workers, env=env, logdir=tmp)
        self.services.append(web)
        bare = processes.start_web("bare", "bare_asgi:app", port=bare_port, workers=a.web_workers, env=env, logdir=tmp,
                                   ready_path="/", app_dir=str(BENCH))
        self.services.append(bare)
        log(f"OpsPulse on port {port}, bare ASGI on port {bare_port} ({a.web_workers} workers each)")

        spec = {"port": port, "bare_port": bare_port, "cookie": cookie, "big": str(big.public_id),
                "small": str(small.public_id), "warmup": a.warmup, "requests": a.requests, "seed": a.seed,
                "max_seconds": a.max_measure_seconds, "page_current": PAGE_CURRENT}
        with concurrent.futures.ProcessPoolExecutor(max_workers=1,
                                                    mp_context=multiprocessing.get_context("spawn")) as pool:
            client_pid = pool.submit(os.getpid).result()
            quiet = machine.wait_for_quiet(a.quiet_wait)
            log(f"measuring: {a.warmup} warm-up rounds, then {a.requests} rounds, one request at a time")
            meter = CpuMeter({"web": web.pids, "bare ASGI": bare.pids, "client": lambda: [client_pid]})
            sessions_before = database_sessions()
            meter.start()
            window = time.monotonic()
            measured = pool.submit(run_client, spec).result(timeout=a.max_measure_seconds + 120)
            window = time.monotonic() - window
            cores = meter.stop()
        # Backends report their statistics at most once a second, and at exit.
        time.sleep(2)
        # What reached Django during the whole run, warm-up included: per round four HTTP
        # requests (home, two pages, panels) and four sockets (the pages' and two without a page).
        measured["database_sessions"] = {
            "opened": database_sessions() - sessions_before,
            "django_http_requests": measured["rounds_run"] * 4,
            "sockets": measured["rounds_run"] * 4,
            "note": "on the development database other clients' connections count too" if not a.scratch_db else "",
        }
        local_now = datetime.now(ZoneInfo(a.timezone))
        if local_now.date().isoformat() != data["local_time_at_generation"][:10]:
            log("WARNING: the store's local day changed since the data was generated: today's panels were nearly empty")
            data["local_day_changed"] = True
        log(f"measured {measured['rounds']} rounds in {window:.0f}s; cores: {machine.cpu_line(cores)}")
        log(f"database connections opened meanwhile: {measured['database_sessions']['opened']:,} for "
            f"{measured['database_sessions']['django_http_requests']:,} HTTP requests to Django and "
            f"{measured['database_sessions']['sockets']:,} sockets")
        log(f"first frames of the pages' sockets: {measured['first_frames']}")
        if measured["errors"]:
            log(f"errors: {measured['errors']} e.g. {measured['error_examples'][:2]}")
        return self.report(data, measured, explain, in_process, profile, cores, quiet, window, local_now)

    # -- report

    def report(self, data: dict[str, Any], measured: dict[str, Any], explain: dict[str, Any],
               in_process: dict[str, Any], profile: list[str] | None, cores: dict[str, float],
               quiet: dict[str, float], window: float, local_now: datetime) -> dict[str, Any]:
        a = self.args
        latency = {key: reports.latency_summary(values) for key, values in measured["samples"].items()}
        big_label = f"{a.days}-day"
        small_label = f"{a.small_days}-day"

        def p95(key: str) -> float | None:
            return latency.get(key, {}).get("p95")

        def ratio(top: float | None, bottom: float | None) -> float | None:
            return round(top / bottom, 2) if top and bottom else None

        rows = []
        for key, label in LATENCY_ROWS:
            lat = latency.get(key, {})
            size = measured["sizes"].get(key)
            if key.startswith("socket_first_frame:"):
                size = measured["sizes"].get("frame:" + key.split(":")[1])
            vs_home = ratio(lat.get("p95"), p95("home")) if key not in ("bare", "home") else None
            vs_small = None
            if key.endswith(":big") and key != "panels:big":
                vs_small = ratio(lat.get("p95"), p95(key.replace(":big", ":small")))
            rows.append([label.format(big=big_label, small=small_label), lat.get("p50"), lat.get("p95"),
                         lat.get("p99"), lat.get("max"), size, vs_home, vs_small])
        table = reports.print_table(
            f"Dashboard read path: {measured['rounds']} rounds, one request at a time (ms)",
            ["what", "p50", "p95", "p99", "max", "bytes", "p95 ÷ home", f"p95 ÷ {small_label} store"], rows)

        big_rows = data["rows"][str(self.big.pk)]
        small_rows = data["rows"][str(self.small.pk)]
        data_rows = [
            ["orders", big_rows["orders"], small_rows["orders"]],
            ["line items", big_rows["line_items"], small_rows["line_items"]],
            ["carts", big_rows["carts"], small_rows["carts"]],
            ["inventory levels", big_rows["inventory_levels"], small_rows["inventory_levels"]],
            ["metric rows, hour", big_rows["metric_rows_hour"], small_rows["metric_rows_hour"]],
            ["metric rows, day", big_rows["metric_rows_day"], small_rows["metric_rows_day"]],
            ["product days", big_rows["product_days"], small_rows["product_days"]],
            ["alert events", big_rows["alert_events"], small_rows["alert_events"]],
        ]
        data_table = reports.print_table(
            f"Data ({a.timezone}, generated in {data['generation_s']:.0f}s, buckets verified on "
            f"{len(data['verification']['big']['days'])} days: "
            f"{data['verification']['big']['buckets_compared']:,} buckets)",
            ["rows", f"{big_label} store", f"{small_label} store"], data_rows)

        explain_rows = [[q["label"], q["execution_ms"], q["planning_ms"], q["rows"], q["shared_hit_blocks"],
                         q["shared_read_blocks"]] for q in explain["big"]["queries"]]
        explain_table = reports.print_table(
            f"Queries of one page load of the {big_label} store ({explain['big']['statements']} statements), "
            f"EXPLAIN (ANALYZE, BUFFERS), median of {a.explain_runs}",
            ["query", "exec ms", "plan ms", "rows", "hit blocks", "read blocks"], explain_rows)
        process_rows = [[f"{label} store", in_process[key]["median_total_ms"], in_process[key]["median_sql_ms"],
                         in_process[key]["median_python_ms"], in_process[key]["statements"]]
                        for key, label in (("big", big_label), ("small", small_label))]
        process_table = reports.print_table(
            "Page load in process (Django test client, median of 30 loads, ms)",
            ["store", "total", "SQL (round trips)", "the rest (Python)", "statements"], process_rows)

        targets = [
            {"target": f"dashboard page p95 < {TARGET_P95_MS:g} ms ({big_label} store)",
             "measured": p95("page:big"), "met": bool(p95("page:big") and p95("page:big") < TARGET_P95_MS)},
            {"target": f"first load incl. the socket's first frame p95 < {TARGET_P95_MS:g} ms ({big_label} store)",
             "measured": p95("first_load:big"),
             "met": bool(p95("first_load:big") and p95("first_load:big") < TARGET_P95_MS)},
        ]
        target_table = reports.print_table("Targets", ["target", "measured p95 (ms)", "met"],
                                           [[t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in targets])
        return {
            "data": data,
            "latency_ms": latency,
            "sizes_bytes": measured["sizes"],
            "first_frames": measured["first_frames"],
            "errors": measured["errors"],
            "error_examples": measured["error_examples"],
            "rounds": measured["rounds"],
            "database_sessions": measured["database_sessions"],
            "measure_window_s": round(window, 1),
            "local_time_at_end": local_now.isoformat(timespec="seconds"),
            "ratios_p95": {
                "page_big_vs_small": ratio(p95("page:big"), p95("page:small")),
                "page_big_vs_home": ratio(p95("page:big"), p95("home")),
                "page_big_vs_bare": ratio(p95("page:big"), p95("bare")),
                "first_load_big_vs_small": ratio(p95("first_load:big"), p95("first_load:small")),
                "socket_first_frame_big_vs_small": ratio(p95("socket_first_frame:big"), p95("socket_first_frame:small")),
            },
            "explain": explain,
            "in_process": in_process,
            "profile_top": profile,
            "cpu_cores": cores,
            "machine_before": quiet,
            "targets": targets,
            "tables": {"latency": table, "data": data_table, "explain": explain_table, "in_process": process_table,
                       "targets": target_table},
        }


def main() -> None:
    runtime.stop_on_sigterm()
    DashboardBench(parse_args()).run()


if __name__ == "__main__":
    main()
