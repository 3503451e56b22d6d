"""Announce changes to live screens, only ever for committed data.

Domain actions call `publish(store_public_id, message)` inside their transaction, and
announce a sign-out (`close_session_sockets`) or a team change (`recheck_user_access`).
This module is the sending half of the live transport and imports no OpsPulse app;
opspulse.live receives (opspulse.live.transports).

With the PostgreSQL transport a message is sent with NOTIFY on the writing connection,
which PostgreSQL delivers only if and when that transaction commits; every web process
LISTENs and fans out to its own sockets. With the Redis transport the message goes to
the channel layer after commit, to a group per store, per session and per user.

Inside `batch()` messages are buffered and sent together when the block ends (still
inside the transaction), so a batch of deliveries costs one NOTIFY, not one per event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Protocol
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from redis.exceptions import RedisError

NOTIFY_CHANNEL = "opspulse_live"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_NOTIFY_BYTES = 7000
SEPARATOR = ", "
# Channel-layer event types (the Redis transport); consumers handle them by these names.
MESSAGE_EVENT_TYPE = "live.messages"
FORCE_CLOSE_EVENT_TYPE = "live.force_close"
RECHECK_EVENT_TYPE = "live.recheck"

_local = threading.local()


def group_name(store_public_id: UUID | str) -> str:
    return f"store_live.{store_public_id}"


def session_group_name(session_key: str) -> str:
    return "session_live." + session_hash(session_key)


def session_hash(session_key: str) -> str:
    # Hashed: the session key is a credential, and group names and NOTIFY payloads are not secret.
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def user_group_name(user_id: int) -> str:
    # The primary key, unlike a store's, never reaches a page: group names stay in Redis.
    return f"user_live.{int(user_id)}"


def publish(store_public_id: UUID | str, message: dict[str, Any]) -> None:
    """Send `message` (a small dict with a "type") to the store's live dashboards."""
    buffer: dict[str, list[dict[str, Any]]] | None = getattr(_local, "buffer", None)
    if buffer is not None:
        buffer[str(store_public_id)].append(message)
    else:
        _sender().send({str(store_public_id): [message]})


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
            _sender().send(buffered)
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


def close_session_sockets(session_key: str) -> None:
    """Close the live screens of a session that signed out, in every web process."""
    if session_key:
        _sender().sign_out(session_key)


def recheck_user_access(user_id: int) -> None:
    """Make every web process re-check the open dashboards of `user_id` now.

    Those whose store's account the user is no longer a member of close with 4403.
    Call it after the change committed (the re-check reads the database).
    """
    _sender().recheck_user(int(user_id))


class Sender(Protocol):
    def send(self, messages_by_store: dict[str, list[dict[str, Any]]]) -> None: ...

    def sign_out(self, session_key: str) -> None: ...

    def recheck_user(self, user_id: int) -> None: ...


class NotifySender:
    """The PostgreSQL transport: NOTIFY on the writing connection, delivered on commit."""

    def send(self, messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
        payloads = list(_chunks(messages_by_store))
        with connection.cursor() as cursor:
            for payload in payloads:
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])

    def sign_out(self, session_key: str) -> None:
        self._notify({"signed_out": session_hash(session_key)})

    def recheck_user(self, user_id: int) -> None:
        self._notify({"recheck_user": user_id})

    def _notify(self, data: dict[str, Any]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, json.dumps(data)])


class LayerSender:
    """The Redis transport: the channel layer's groups, after commit for live messages."""

    def send(self, messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
        # robust: the data is committed whatever happens to the message; a dashboard
        # that misses it catches up when it reconnects.
        transaction.on_commit(lambda: self._send_to_layer(messages_by_store), robust=True)

    def sign_out(self, session_key: str) -> None:
        self._group_send(session_group_name(session_key), {"type": FORCE_CLOSE_EVENT_TYPE})

    def recheck_user(self, user_id: int) -> None:
        self._group_send(user_group_name(user_id), {"type": RECHECK_EVENT_TYPE})

    def _group_send(self, group: str, event: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, event)

    def _send_to_layer(self, messages_by_store: dict[str, list[dict[str, Any]]]) -> None:
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


# By settings.LIVE_TRANSPORT; the receiving halves are in opspulse.live.transports.
SENDERS: dict[str, Sender] = {"postgres": NotifySender(), "redis": LayerSender()}


def _sender() -> Sender:
    return SENDERS[settings.LIVE_TRANSPORT]


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
