"""Publish live messages on a store's topic, only ever for committed data.

Domain actions call `publish(store_public_id, message)` inside their transaction.
With the PostgreSQL transport the message is sent with NOTIFY on the writing
connection, which PostgreSQL delivers only if and when that transaction commits;
every web process LISTENs (opspulse.live.listener) and fans out to its own sockets.
With the Redis transport the message goes to the channel layer after commit.

Inside `batch()` messages are buffered and sent together when the block ends (still
inside the transaction), so a batch of deliveries costs one NOTIFY, not one per event.
This module imports no other OpsPulse app.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction

NOTIFY_CHANNEL = "opspulse_live"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_NOTIFY_BYTES = 7000
MESSAGE_EVENT_TYPE = "live.messages"
SEPARATOR = ", "

_local = threading.local()


def group_name(store_public_id: UUID | str) -> str:
    return f"store_live.{store_public_id}"


def publish(store_public_id: UUID | str, message: dict[str, Any]) -> None:
    """Send `message` (a small dict with a "type") to the store's live dashboards."""
    buffer: dict[str, list[dict[str, Any]]] | None = getattr(_local, "buffer", None)
    if buffer is not None:
        buffer[str(store_public_id)].append(message)
    else:
        _send({str(store_public_id): [message]})


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Buffer publishes made in the block and send them together at its end."""
    if getattr(_local, "buffer", None) is not None:
        yield
        return
    _local.buffer = defaultdict(list)
    try:
        yield
        buffered, _local.buffer = _local.buffer, None
        if buffered:
            _send(buffered)
    finally:
        _local.buffer = None


@contextlib.contextmanager
def discard_on_error() -> Iterator[None]:
    """Drop messages buffered in the block if it raises (its savepoint rolled back)."""
    buffer: dict[str, list[dict[str, Any]]] | None = getattr(_local, "buffer", None)
    if buffer is None:
        yield
        return
    marks = {store: len(messages) for store, messages in buffer.items()}
    try:
        yield
    except BaseException:
        for store, messages in buffer.items():
            del messages[marks.get(store, 0) :]
        raise


def _send(messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
    if settings.LIVE_TRANSPORT == "postgres":
        _notify(messages_by_store)
    else:
        # robust: the data is committed whatever happens to the message; a dashboard
        # that misses it catches up when it reconnects.
        transaction.on_commit(lambda: _send_to_layer(messages_by_store), robust=True)


def _chunks(messages_by_store: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Payloads of at most MAX_NOTIFY_BYTES, each holding whole messages of one store.

    A message is never split: one too large to send whole goes as its type alone, which
    still tells dashboards what to re-read.
    """
    for store, messages in messages_by_store.items():
        # The envelope, then each message and the ", " between two of them.
        envelope = len(_encode({"store": store, "messages": []}))
        chunk: list[str] = []
        size = envelope
        for message in messages:
            encoded = _encode(message)
            if envelope + len(encoded) > MAX_NOTIFY_BYTES:
                encoded = _encode({"type": message.get("type")})
            if chunk and size + len(SEPARATOR) + len(encoded) > MAX_NOTIFY_BYTES:
                yield _envelope(store, chunk)
                chunk, size = [], envelope
            size += len(encoded) + (len(SEPARATOR) if chunk else 0)
            chunk.append(encoded)
        if chunk:
            yield _envelope(store, chunk)


def _encode(value: Any) -> str:
    # ASCII only (json's default), so a character is a byte.
    return json.dumps(value, default=str)


def _envelope(store: str, encoded_messages: list[str]) -> str:
    return f'{{"store": {_encode(store)}, "messages": [{SEPARATOR.join(encoded_messages)}]}}'


def _notify(messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
    payloads = list(_chunks(messages_by_store))
    with connection.cursor() as cursor:
        for payload in payloads:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])


def _send_to_layer(messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from redis.exceptions import RedisError

    layer = get_channel_layer()
    for store, messages in messages_by_store.items():
        # Each dashboard of the store gets the event; its id lets their process apply it once.
        event = {"type": MESSAGE_EVENT_TYPE, "messages": messages, "id": uuid.uuid4().hex}
        try:
            async_to_sync(layer.group_send)(group_name(store), event)
        except (ConnectionError, OSError, RedisError):
            # After a Redis restart the layer's pooled connection is dead and the first
            # command on it fails; the retry takes a new connection.
            async_to_sync(layer.group_send)(group_name(store), event)
