"""Files of pre-built, validly signed webhook requests, replayed by wrk and loadgen.py.

A file holds raw HTTP/1.1 requests, each preceded by its length as 10 ASCII digits, so
the wrk Lua script and the Python generator read it the same way and send it as is.
Every request is a distinct delivery (its own X-Shopify-Webhook-Id, or a WooCommerce
body no other request has), so each one the server accepts inserts a new row.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HEADER_DIGITS = 10


def raw_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def write_record(out, request: bytes) -> None:
    out.write(b"%010d" % len(request))
    out.write(request)


def read_requests(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while header := f.read(HEADER_DIGITS):
            yield f.read(int(header))


def delivery_key(headers: dict[str, str], body: bytes) -> str:
    if "X-Shopify-Webhook-Id" in headers:
        return headers["X-Shopify-Webhook-Id"]
    return f"{headers.get('X-WC-Webhook-ID', '')}:{hashlib.sha256(body).hexdigest()}"


def _generate_mix(job: dict[str, Any]) -> dict[str, Any]:
    """Write `count` deliveries of realistic mixed traffic for `targets` to `path`.

    The simulator's traffic (orders, their updates, stock, carts), on a clock that moves
    1/rate seconds per delivery so follow-up events come in the proportions they would
    at that rate. Redeliveries are off: each request is a new delivery.
    """
    from opspulse.sim.simulator import TrafficGenerator

    count, rate = job["count"], job["rate"]
    base: datetime = job["clock_base"]
    tick = [0]

    def clock() -> datetime:
        return base + timedelta(seconds=tick[0] / rate)

    generator = TrafficGenerator(job["targets"], random.Random(job["seed"]), clock=clock, duplicate_rate=0.0)
    seen: set[str] = set()
    topics: dict[str, int] = {}
    body_bytes = 0
    samples: dict[str, tuple[str, dict[str, str], bytes]] = {}
    with open(job["path"], "wb") as out:
        while len(seen) < count:
            tick[0] += 1
            delivery = next(generator)
            key = delivery_key(delivery.headers, delivery.body)
            if key in seen:
                continue
            seen.add(key)
            write_record(out, raw_request(delivery.path, delivery.headers, delivery.body))
            topic = delivery.headers.get("X-Shopify-Topic") or delivery.headers.get("X-WC-Webhook-Topic", "")
            topics[topic] = topics.get(topic, 0) + 1
            body_bytes += len(delivery.body)
            if topic in ("orders/create", "order.created") and topic not in samples:
                samples[topic] = (delivery.path, delivery.headers, delivery.body)
    return {"path": job["path"], "count": count, "topics": topics, "body_bytes": body_bytes, "samples": samples}


def generate_mix(targets: Sequence[Any], *, files: int, per_file: int, rate: float, directory: Path,
                 name: str, clock_base: datetime, seed: int = 1) -> dict[str, Any]:
    """Write `files` request files of `per_file` requests; file k serves stores k, k+files, …"""
    jobs = []
    for k in range(files):
        jobs.append(
            {
                "targets": list(targets[k::files]),
                "count": per_file,
                "rate": rate / files,
                "clock_base": clock_base,
                "seed": seed * 1000 + k,
                "path": str(directory / f"{name}-{k}.bin"),
            }
        )
    with ProcessPoolExecutor(max_workers=min(files, 2)) as pool:
        results = list(pool.map(_generate_mix, jobs))
    topics: dict[str, int] = {}
    for result in results:
        for topic, n in result["topics"].items():
            topics[topic] = topics.get(topic, 0) + n
    samples: dict[str, Any] = {}
    for result in results:
        samples.update({k: v for k, v in result["samples"].items() if k not in samples})
    total = files * per_file
    return {
        "prefix": str(directory / name),
        "paths": [Path(r["path"]) for r in results],
        "count": total,
        "topics": topics,
        "mean_body_bytes": round(sum(r["body_bytes"] for r in results) / total),
        "samples": samples,
    }


def order_creates(targets: Sequence[Any], *, count: int, first_number: int, created_at: Callable[[int], datetime],
                  seed: int = 7) -> Iterator[tuple[int, str, bytes]]:
    """Yield (store index, order number "#N", delivery key, raw request) for `count` new orders, round-robin.

    Numbers are unique per store and increase with the index, and so does `created_at`,
    so each new order goes to the top of its store's live feed.
    """
    from opspulse.sim import payloads

    rng = random.Random(seed)
    for index in range(count):
        store_index = index % len(targets)
        target = targets[store_index]
        number = first_number + index // len(targets)
        items = [rng.choice(target.catalog) for _ in range(rng.choice((1, 1, 2, 3)))]
        lines = [item.line(line_id=index * 10 + n, quantity=rng.choice((1, 1, 2))) for n, item in enumerate(items)]
        placed = created_at(index).astimezone(UTC).replace(microsecond=0)
        order_id = 10_000_000 + index
        if target.is_shopify:
            body = payloads.encode(
                payloads.shopify_order(order_id, number=number, created_at=placed, updated_at=placed, items=lines,
                                       currency=target.currency)
            )
            headers = payloads.shopify_headers(shop_domain=target.domain, topic="orders/create", body=body,
                                               secret=target.webhook_secret, triggered_at=placed)
        else:
            body = payloads.encode(
                payloads.woo_order(order_id, number=number, items=lines, date_created=placed, date_modified=placed,
                                   currency=target.currency, site_url=target.site_url)
            )
            headers = payloads.woo_headers(topic="order.created", body=body, secret=target.webhook_secret,
                                           webhook_id=11, source=target.site_url)
        yield store_index, f"#{number}", delivery_key(headers, body), raw_request(target.path, headers, body)
