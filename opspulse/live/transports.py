"""The receiving half of the live transport, picked once by settings.LIVE_TRANSPORT.

Domain code sends through opspulse.lib.broadcast (NOTIFY in the writing transaction,
or the channel layer after commit); a web process receives through one of these:

- PostgreSQL: the process's one LISTEN connection (opspulse.live.listener) hands each
  notification to the store's hub, the overviews and wallboards showing it and the
  access watch. Sockets join nothing; the listener knows when it may have missed a
  message, so a page (and the hub's panels) can be known to be current.
- Redis: each socket joins the channel layer's groups of its stores, its session and
  its user, and receives the events as consumer methods (live_messages, ...). A lost
  message goes unnoticed, so nothing is ever taken for current.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from opspulse.live import listener


class Transport(Protocol):
    # Whether the process knows when it may have missed a message (see StoreHub.first_frame).
    reliable: bool

    async def start(self) -> None:
        """Start receiving, at the web process's start-up."""

    async def stop(self) -> None:
        """Stop receiving, at its shutdown."""

    async def join(self, socket: AsyncWebsocketConsumer, groups: Iterable[str]) -> None:
        """Have `socket` receive the messages of `groups` (of its stores, session and user)."""

    async def leave(self, socket: AsyncWebsocketConsumer) -> None:
        """Undo `join`."""

    def page_is_current(self, store_public_id: str, rendered_at: float) -> bool:
        """Whether a page of the store whose render began at `rendered_at` still shows what
        the database holds (see listener.page_is_current)."""


class PostgresTransport:
    reliable = True

    async def start(self) -> None:
        await listener.start()

    async def stop(self) -> None:
        await listener.stop()

    async def join(self, socket: AsyncWebsocketConsumer, groups: Iterable[str]) -> None:
        # The listener reaches the process's sockets through their hubs and watches.
        pass

    async def leave(self, socket: AsyncWebsocketConsumer) -> None:
        pass

    def page_is_current(self, store_public_id: str, rendered_at: float) -> bool:
        return listener.page_is_current(store_public_id, rendered_at)


class RedisTransport:
    reliable = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def join(self, socket: AsyncWebsocketConsumer, groups: Iterable[str]) -> None:
        if socket.channel_layer is None:
            return
        for group in groups:
            try:
                await socket.channel_layer.group_add(group, socket.channel_name)
            except (ConnectionError, OSError, RedisError):
                # After a Redis restart the layer's pooled connection is dead and the
                # first command on it fails; the retry takes a new connection.
                await socket.channel_layer.group_add(group, socket.channel_name)
            socket.joined.append(group)

    async def leave(self, socket: AsyncWebsocketConsumer) -> None:
        for group in socket.joined:
            await socket.channel_layer.group_discard(group, socket.channel_name)
        socket.joined = []

    def page_is_current(self, store_public_id: str, rendered_at: float) -> bool:
        return False


TRANSPORTS: dict[str, Transport] = {"postgres": PostgresTransport(), "redis": RedisTransport()}


def transport() -> Transport:
    return TRANSPORTS[settings.LIVE_TRANSPORT]
