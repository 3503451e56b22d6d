"""One consumer per open dashboard: the live view's process.

It checks the socket's session and membership at connect (and, with every other
dashboard of the process, once per period after: opspulse.live.access), joins its
store's hub (and, with the Redis transport, the store's, the session's and the user's
groups) and
pushes panels as htmx out-of-band fragments. Every (re)connect starts with every
panel, read from PostgreSQL or, while the store is on screen in this process, the
hub's latest. Renders are shared by all dashboards of a store in the process
(opspulse.live.hub), which shows new orders from what their messages carry and
re-reads the other panels their messages mark; each dashboard sends only the panels
that differ from what its page shows.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from redis.exceptions import RedisError

from opspulse.accounts.selectors import get_store_for_user
from opspulse.live import fragments
from opspulse.live.access import FORBIDDEN, SIGNED_OUT, watch
from opspulse.live.hub import COALESCE_SECONDS, StoreHub, hubs
from opspulse.live.publish import group_name
from opspulse.live.sessions import session_group_name, user_group_name
from opspulse.stores.models import Store

logger = logging.getLogger("opspulse.live")

TRY_AGAIN_LATER = 1013
# The page counts any frame as a sign of life; this one swaps nothing.
HEARTBEAT = "<!-- heartbeat -->"


def _store_for_member(user, public_id) -> Store | None:
    try:
        return get_store_for_user(user, public_id)
    except Http404:
        return None


store_for_member = database_sync_to_async(_store_for_member)


class DashboardConsumer(AsyncWebsocketConsumer):
    # Re-renders after a transport resync are spread out so that every store of the
    # process does not hit the database in the same instant.
    resync_spread_seconds = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store: Store | None = None
        self.hub: StoreHub | None = None
        self.joined: list[str] = []
        self.sent: dict[str, str] = {}
        self.watched = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        store = None
        if user is not None and user.is_authenticated:
            store = await store_for_member(user, public_id)
        if store is None:
            # Accept, then close: a refused handshake reaches the browser as 1006, which
            # the page would treat as a network error and retry forever.
            await self.accept()
            await self.close(code=FORBIDDEN)
            return

        self.store = store
        self.store_id = store.pk
        self.user_id = user.pk
        self.session_key = self.scope["session"].session_key
        try:
            if self.channel_layer is not None:  # the Redis transport
                await self._join(
                    (group_name(store.public_id), session_group_name(self.session_key), user_group_name(user.pk))
                )
        except Exception:
            # The channel layer (Redis) is down. Close with "try again later": the page
            # reconnects with backoff, and every connect starts with a full render.
            logger.warning("live: cannot join the store's groups; asking the page to retry", exc_info=True)
            await self.accept()
            await self.close(code=TRY_AGAIN_LATER)
            return
        await self.accept()
        self.hub = hubs().join(store, self)
        await self.hub.first_frame(self)
        watch().add(self)
        self.watched = True

    async def _join(self, groups: Iterable[str]) -> None:
        for group in groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except (ConnectionError, OSError, RedisError):
                # After a Redis restart the layer's pooled connection is dead and the
                # first command on it fails; the retry takes a new connection.
                await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)

    async def disconnect(self, code: int) -> None:
        if self.watched:
            watch().remove(self)
            self.watched = False
        if self.hub is not None:
            hubs().leave(self.store, self)
            self.hub = None
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing the server acts on."""

    # Channel-layer events (the Redis transport). Each returns at once.

    async def live_messages(self, event: dict[str, Any]) -> None:
        # Every dashboard of the store receives the same event; the hub applies it once.
        if self.hub is not None:
            self.hub.on_messages(event.get("messages") or [], event_id=event.get("id"))

    async def live_force_close(self, event: dict[str, Any]) -> None:
        await self.close(code=SIGNED_OUT)

    async def live_recheck(self, event: dict[str, Any]) -> None:
        # The user's team changed: check this dashboard's access now, not at its slot.
        if self.watched:
            watch().recheck([self])

    def resync(self) -> None:
        """Live messages may have been lost: read every panel again, shortly."""
        self.sent.clear()
        if self.hub is not None:
            self.hub.forget_view()
        self._request(
            fragments.PANEL_IDS, delay=random.uniform(COALESCE_SECONDS, self.resync_spread_seconds)
        )

    def _request(self, panel_ids: Iterable[str], *, delay: float | None = None) -> None:
        panel_ids = set(panel_ids)
        if self.hub is not None and panel_ids:
            self.hub.request(self, panel_ids, delay=delay)

    async def deliver(self, rendered: dict[str, str], rows: str = "") -> None:
        """Send, in one frame, the rendered panels that differ from what the page has,
        and any feed rows."""
        changed = [html for panel_id, html in rendered.items() if self.sent.get(panel_id) != html]
        self.sent.update(rendered)
        if rows:
            # The page's feed now differs from any whole panel sent before.
            self.sent.pop(fragments.ORDER_FEED, None)
        if changed or rows:
            await self.send(text_data="".join(changed) + rows)

    async def heartbeat(self) -> None:
        await self.send(text_data=HEARTBEAT)
