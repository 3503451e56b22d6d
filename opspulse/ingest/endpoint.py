"""① Webhook ingest: verify → record → make sure a drain job will run → 200.

A plain ASGI app in front of Django, with psycopg and no ORM: this is the hot path,
and on two cores Django's request stack plus the ORM would cut its throughput by
more than half. The delivery row and its lane's drain job are written in one
statement (one transaction, one round trip) and the answer comes after the commit,
so an acknowledged webhook is never lost and a rolled-back one leaves no job.

Answers: 200 stored (or duplicate, or WooCommerce ping, or a signed privacy request
for a shop OpsPulse holds nothing of) · 401 bad or missing signature, or unknown
store, nothing stored · 404 a shop OpsPulse does not know, in a webhook signed with
the Shopify app's secret · 405 not POST · 413 body over the limit · 429 too many
failed signatures from the client's address · 503 database unavailable (the
platform retries). A disconnected store is answered as an unknown one, but for
Shopify's privacy requests: OpsPulse still holds its history.

Which provider a webhook is for is the first segment of its address after /webhooks/;
the provider (opspulse.platforms.registry) names the store's key, its lookup and its
headers, and walks its own checks with what this endpoint lends it (`WebhookDesk`).

An unknown store and a known one with a bad signature get the same 401 after the
same work (a store lookup, a decryption and an HMAC), so the answer tells nothing of
which shops or tokens OpsPulse knows. Failed signatures are counted per client
address in PostgreSQL, shared by every web process; past the limit a failing request
gets 429, while a correctly signed one is always verified and accepted (Shopify sends
from addresses many shops share). The happy path never touches the counter.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any, NamedTuple

import psycopg
import psycopg_pool
from django.conf import settings

from opspulse.ingest import queue
from opspulse.lib import crypto, db
from opspulse.lib.hmac import verify_base64_hmac_sha256
from opspulse.platforms.provider import Provider
from opspulse.platforms.registry import PROVIDERS
from opspulse.stores.models import Integration

logger = logging.getLogger("opspulse.ingest")
security_logger = logging.getLogger("opspulse.security")

# A webhook's address is /webhooks/<provider>/<rest>; what the rest holds (the store's
# key, or nothing) is the provider's.
WEBHOOKS_PREFIX = "/webhooks/"

# One statement per webhook, in its own transaction: take the lane's shared ingest
# lock, insert the delivery (a duplicate inserts nothing), then tell the lane's drainer
# if it waits (a busy one looks again after its batch, queue.idle_lock_key) or, when no
# drainer owns the lane (its lock is free), defer the lane's drain job with
# procrastinate's own defer function unless one is waiting (opspulse.ingest.queue). The
# locks are held only while PostgreSQL runs the statement, never across round trips, so
# a drainer or drain job waiting for the ingests in flight (queue.wait_for_inflight_ingest)
# never waits on a web process. The ingest lock must be taken before the rest: every
# other part reads from `locked`, which makes PostgreSQL take it first.
RECORD_DELIVERY = f"""
    WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%(lock_key)s)),
    inserted AS (
        INSERT INTO ingest_webhook_delivery
            (store_id, platform, topic, delivery_key, event_id, received_at, headers, body,
             status, error, attempts)
        SELECT %(store_id)s, %(platform)s, %(topic)s, %(key)s, %(event_id)s, now(), %(headers)s,
               %(body)s, %(status)s, %(error)s, 0
        FROM locked
        ON CONFLICT (platform, store_id, delivery_key) DO NOTHING
        RETURNING id
    ),
    owner AS MATERIALIZED (
        SELECT NOT pg_try_advisory_xact_lock_shared(%(drainer_key)s) AS drained FROM locked
        WHERE %(wants_job)s AND EXISTS (SELECT FROM inserted)
    ),
    told AS MATERIALIZED (
        SELECT pg_notify(%(channel)s, '') FROM owner
        WHERE drained AND NOT pg_try_advisory_xact_lock_shared(%(idle_key)s)
    ),
    looked AS MATERIALIZED (
        SELECT EXISTS ({queue.WAITING_JOB_QUERY}) AS job_waiting FROM owner WHERE NOT drained
    ),
    deferred AS MATERIALIZED (
        {queue.DEFER_DRAIN_JOB}
        FROM looked
        WHERE NOT looked.job_waiting
    )
    SELECT (SELECT id FROM inserted), (SELECT count(*) FROM deferred), (SELECT count(*) FROM told)
"""


RECORD_ATTEMPTS = 5


async def record_delivery(conn: psycopg.AsyncConnection, params: dict[str, Any]) -> int | None:
    """Record a delivery and make sure its lane's drain job will run; return its id, or
    None for a duplicate. On an autocommit connection this is one round trip."""
    for _ in range(RECORD_ATTEMPTS - 1):
        try:
            row = await (await conn.execute(RECORD_DELIVERY, params)).fetchone()
            return row[0]
        except psycopg.errors.UniqueViolation:
            # Another webhook of the lane deferred the job at the same moment (its
            # queueing lock); this statement left nothing behind, and the next try
            # finds that job waiting.
            continue
    # Still racing after that many tries: the caller answers 503 and the platform retries.
    row = await (await conn.execute(RECORD_DELIVERY, params)).fetchone()
    return row[0]


# Failed signatures of a client address in the current minute, shared by every web
# process; the answer is the count including this one.
COUNT_FAILED_SIGNATURE = """
    INSERT INTO ingest_signature_failure AS f (client, window_start, failures)
    VALUES (%s, date_trunc('minute', now()), 1)
    ON CONFLICT (client) DO UPDATE SET
        failures = CASE WHEN f.window_start = excluded.window_start THEN f.failures + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING failures
"""
FORGET_OLD_FAILURES = "DELETE FROM ingest_signature_failure WHERE window_start < now() - interval '2 minutes'"
FORGET_OLD_FAILURES_EVERY_SECONDS = 60

STORE_CACHE_MAX_ENTRIES = 50_000


class StoreKeys(NamedTuple):
    id: int
    secrets: tuple[str, ...]
    # Read from the database for this request, not from the cache.
    fresh: bool = False
    disconnected: bool = False


class StoreGone(Exception):
    """The store was deleted after its lookup was cached."""


class PayloadTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]


def _json(code: int, **body: Any) -> Response:
    return Response(code, body)


REFUSED = _json(401, error="invalid signature")
TOO_MANY_FAILURES = _json(429, error="too many failed signatures")


def client_address(scope: dict, headers: dict[str, str]) -> str:
    """Return the key failed signatures are counted under: the client's address, found as
    the rest of OpsPulse finds it (TRUSTED_CLIENT_IP_HEADER, else TRUSTED_PROXY_COUNT
    entries of X-Forwarded-For, else the peer), with IPv6 clients counted per /64."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    candidate = peer
    header = settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER
    proxies = settings.ALLAUTH_TRUSTED_PROXY_COUNT
    if header:
        candidate = headers.get(header.lower(), "")
    elif proxies > 0:
        forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",")]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
    for value in (candidate, peer):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            # One host usually holds a whole /64: counting each address apart would let
            # it try 2^64 times.
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)
    return peer[:64] or "unknown"


class IngestApp:
    """Serve the webhook routes; pass everything else to `app`.

    The process's lifespan (config.asgi) opens the connection pool at start-up and
    closes it at shutdown.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pool: psycopg_pool.AsyncConnectionPool | None = None
        self.max_body = settings.WEBHOOK_MAX_BODY_BYTES
        # Store lookups (id and decrypted webhook secrets) are reused for a few seconds:
        # a webhook then costs one database round trip, not two.
        self.store_cache: dict[tuple[str, str], tuple[float, StoreKeys]] = {}
        self.store_cache_seconds = settings.INGEST_STORE_CACHE_SECONDS
        self.failed_signatures_per_minute = settings.WEBHOOK_FAILED_SIGNATURES_PER_MINUTE
        self.old_failures_forgotten_at = 0.0
        self.unknown_store_token = ""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            await self.handle_http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def open_pool(self) -> psycopg_pool.AsyncConnectionPool:
        if self.pool is None:
            self.pool = psycopg_pool.AsyncConnectionPool(
                db.conninfo(application_name="opspulse-ingest"),
                min_size=1,
                max_size=settings.INGEST_POOL_MAX_SIZE,
                # Each webhook is one statement in its own transaction (RECORD_DELIVERY).
                kwargs={"autocommit": True},
                timeout=settings.INGEST_POOL_TIMEOUT,
                open=False,
            )
            # Don't block startup on the database: the endpoint answers 503 until it is up.
            await self.pool.open(wait=False)
        return self.pool

    async def close_pool(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def handle_http(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            response = await self.dispatch(scope, receive)
        except ClientGone:
            return
        except PayloadTooLarge:
            response = _json(413, error="payload too large")
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.errors.UniqueViolation) as exc:
            logger.warning("database unavailable for ingest: %s", exc)
            response = _json(503, error="temporarily unavailable")
        body = json.dumps(response.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if response.status == 503:
            headers.append((b"retry-after", b"5"))
        elif response.status == 429:
            headers.append((b"retry-after", b"60"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def dispatch(self, scope: dict, receive: Any) -> Response:
        name, _, rest = scope["path"][len(WEBHOOKS_PREFIX):].partition("/")
        provider = PROVIDERS.get(name)
        key = provider.webhook_store_key(rest) if provider is not None else None
        if key is None:
            return _json(404, error="not found")
        if scope["method"] != "POST":
            return _json(405, error="method not allowed")

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge
        body = await self.read_body(receive)

        try:
            response = await provider.receive(self, key, headers, body)
        except StoreGone:
            # Look the store up afresh: it may have been connected again under a new id.
            response = await provider.receive(self, key, headers, body)
        if response is REFUSED and await self.too_many_failures(client_address(scope, headers)):
            return TOO_MANY_FAILURES
        return response

    async def read_body(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # What a provider's `receive` is lent (opspulse.platforms.provider.WebhookDesk).

    def answer(self, code: int, **body: Any) -> Response:
        return _json(code, **body)

    def refuse(self, provider: Provider, reason: str, headers: dict[str, str]) -> Response:
        # Log who and why, never the body.
        security_logger.warning(
            "webhook refused: platform=%s reason=%s shop=%s topic=%s",
            provider.name,
            reason,
            (headers.get(provider.shop_header, "-") if provider.shop_header else "-")[:255],
            (headers.get(provider.topic_header) or "-")[:100],
        )
        return REFUSED

    def unknown_store_signed(self, body: bytes, signature: str, known_secrets: list[str]) -> bool:
        """Check `signature` against `known_secrets` as a store's is checked, decryption included."""
        return verify_base64_hmac_sha256(body, signature, self.unknown_store_secrets(known_secrets))

    def unknown_store_secrets(self, known: list[str]) -> tuple[str, ...]:
        """`known` and a secret no signature matches, got by the decryption a store's lookup makes."""
        associated_data = Integration.associated_data(0, "webhook_secret_encrypted")
        if not self.unknown_store_token:
            # A stand-in for an unknown store's encrypted webhook secret.
            self.unknown_store_token = crypto.encrypt(token_urlsafe(32), associated_data=associated_data)
        return (*known, crypto.decrypt(self.unknown_store_token, associated_data=associated_data))

    async def too_many_failures(self, client: str) -> bool:
        """Count a failed signature of `client`; True once it is over the limit this minute."""
        pool = await self.open_pool()
        async with pool.connection() as conn:
            failures = (await (await conn.execute(COUNT_FAILED_SIGNATURE, (client,))).fetchone())[0]
            now = time.monotonic()
            if now - self.old_failures_forgotten_at > FORGET_OLD_FAILURES_EVERY_SECONDS:
                self.old_failures_forgotten_at = now
                await conn.execute(FORGET_OLD_FAILURES)
        if failures == self.failed_signatures_per_minute + 1:  # logged once a minute, not per request
            security_logger.warning("webhook signatures: client %s over %s failures a minute, answered 429",
                                    client, self.failed_signatures_per_minute)
        return failures > self.failed_signatures_per_minute

    @staticmethod
    def decrypt_secrets(provider: Provider, row: tuple[int, str | None, str | None, bool, bool]) -> tuple[str, ...]:
        store_id, current, previous, app_installed, _ = row
        secrets: list[str] = []
        if app_installed:
            # The platform signs the webhooks of a store installed through OpsPulse's app
            # with the app's client secret (Shopify's).
            secrets.extend(provider.app_secrets())
        for field, token in (
            ("webhook_secret_encrypted", current),
            ("previous_webhook_secret_encrypted", previous),
        ):
            if token:
                try:
                    secrets.append(
                        crypto.decrypt(token, associated_data=Integration.associated_data(store_id, field))
                    )
                except crypto.DecryptionError:
                    logger.error("webhook secret of store %s cannot be decrypted", store_id)
        # A store without a usable secret is refused, never trusted.
        return tuple(secrets)

    async def find_store(self, provider: Provider, key: str, *, fresh: bool = False) -> StoreKeys | None:
        """Return the store's id and webhook secrets, from a short-lived cache unless `fresh`."""
        now = time.monotonic()
        cache_key = (provider.name, key)
        cached = self.store_cache.get(cache_key)
        if cached is not None and not fresh and cached[0] > now:
            return cached[1]
        self.store_cache.pop(cache_key, None)
        pool = await self.open_pool()
        async with pool.connection() as conn:
            row = await (await conn.execute(provider.store_lookup, (key,))).fetchone()
        store = (
            None if row is None
            else StoreKeys(row[0], self.decrypt_secrets(provider, row), fresh=True, disconnected=row[4])
        )
        if store is not None and self.store_cache_seconds > 0:
            if len(self.store_cache) >= STORE_CACHE_MAX_ENTRIES:
                self.store_cache.clear()
            self.store_cache[cache_key] = (now + self.store_cache_seconds, store._replace(fresh=False))
        return store

    async def signature_valid(
        self, provider: Provider, key: str, store: StoreKeys, body: bytes, signature: str
    ) -> bool:
        """True if `signature` is valid for `body` under the store's webhook secrets.

        A cached store whose secrets fail is looked up again once: the secret may just
        have been rotated. Its signature is checked again only if the secrets changed, so
        a refusal costs one lookup and one check, as it does for an unknown store.
        """
        if verify_base64_hmac_sha256(body, signature, store.secrets):
            return True
        if store.fresh:
            return False
        fresh = await self.find_store(provider, key, fresh=True)
        return (
            fresh is not None
            and fresh.secrets != store.secrets
            and verify_base64_hmac_sha256(body, signature, fresh.secrets)
        )

    async def record(
        self, provider: Provider, key: str, store: StoreKeys, headers: dict[str, str], body: bytes, *,
        event_id: str = "",
    ) -> Response:
        """Store the verified delivery and make sure its lane's drain job runs."""
        status, error = "pending", ""
        topic = headers.get(provider.topic_header, "")
        if topic not in provider.parsers:
            status, error = "ignored", f"unknown topic {topic[:100]!r}"
        # The payload is parsed by the worker, which marks one it cannot parse failed
        # with the reason: parsing it here as well would cost every webhook its
        # acknowledgement's time twice.

        lane = queue.lane_of(store.id)
        params = {
            "store_id": store.id,
            "platform": provider.name,
            "topic": topic[:100],
            "key": provider.delivery_key(headers, body)[:200],
            "event_id": event_id[:100],
            "headers": psycopg.types.json.Jsonb({k: headers[k] for k in provider.kept_headers if k in headers}),
            "body": body,
            "status": status,
            "error": error,
            "wants_job": status == "pending",
            **queue.drain_job_params(lane),
        }
        pool = await self.open_pool()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    delivery_id = await record_delivery(conn, params)
                if delivery_id is None:
                    return _json(200, status="duplicate")
                break
            except psycopg.errors.ForeignKeyViolation as exc:
                self.store_cache.pop((provider.name, key), None)
                raise StoreGone from exc
            except psycopg.OperationalError:
                # Pooled connections that died with a database restart fail on first
                # use: drop every dead one, then try once more. Repeating is safe: had
                # the first try committed, the second finds a duplicate.
                if attempt == 2 or pool.closed:
                    raise
                await pool.check()
        return _json(200, status="accepted" if status == "pending" else "stored", id=delivery_id)
