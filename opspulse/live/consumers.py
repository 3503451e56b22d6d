"""One consumer per open dashboard: the live view's process.

It checks the socket's session and membership, joins the store's topic and pushes
re-rendered panels as htmx out-of-band fragments. Live messages are hints: they only
mark panels dirty, and dirty panels are re-read from PostgreSQL, so a lost message
delays the view without corrupting it. Every (re)connect starts with a full render.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from datetime import date, datetime
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from redis.exceptions import RedisError
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http import Http404

from opspulse.accounts.selectors import get_store_for_user
from opspulse.live import fragments
from opspulse.live.listener import RESYNC_GROUP
from opspulse.live.publish import group_name
from opspulse.live.sessions import session_group_name
from opspulse.stores.models import Store

logger = logging.getLogger("opspulse.live")

TRY_AGAIN_LATER = 1013
SIGNED_OUT = 4401
FORBIDDEN = 4403
# The page counts any frame as a sign of life; this one swaps nothing.
HEARTBEAT = "<!-- heartbeat -->"


def _store_for_member(user, public_id) -> Store | None:
    try:
        return get_store_for_user(user, public_id)
    except Http404:
        return None


def _access_lost(session_key: str, user_id: int, store_public_id) -> int | None:
    """Return a close code if the socket's session or membership has ended since connect."""
    engine = import_module(settings.SESSION_ENGINE)
    user = auth.get_user(SimpleNamespace(session=engine.SessionStore(session_key)))
    if not user.is_authenticated or user.pk != user_id:
        return SIGNED_OUT
    if _store_for_member(user, store_public_id) is None:
        return FORBIDDEN
    return None


def _render(store: Store, panel_ids: Iterable[str]) -> dict[str, str]:
    return fragments.render_panels(store, panel_ids, oob=True)


# Renders run in the shared thread pool rather than the single thread-sensitive one,
# so a burst across many dashboards is not serialised behind one thread.
render = database_sync_to_async(_render, thread_sensitive=False)
store_for_member = database_sync_to_async(_store_for_member)
access_lost = database_sync_to_async(_access_lost)


class DashboardConsumer(AsyncWebsocketConsumer):
    coalesce_seconds = 0.05
    # Re-renders after a transport resync are spread out so that every dashboard of
    # the process does not hit the database in the same instant.
    resync_spread_seconds = 2.0
    retry_seconds = 5.0
    tick_seconds = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store: Store | None = None
        self.joined: list[str] = []
        self.dirty: set[str] = set()
        self.sent: dict[str, str] = {}
        self.flush_task: asyncio.Task | None = None
        self.tick_task: asyncio.Task | None = None

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
        self.user_id = user.pk
        self.session_key = self.scope["session"].session_key
        self.local_date = self._local_date()
        try:
            await self._join((group_name(store.public_id), RESYNC_GROUP, session_group_name(self.session_key)))
        except Exception:
            # The channel layer (Redis) is down. Close with "try again later": the page
            # reconnects with backoff, and every connect starts with a full render.
            logger.warning("live: cannot join the store's groups; asking the page to retry", exc_info=True)
            await self.accept()
            await self.close(code=TRY_AGAIN_LATER)
            return
        await self.accept()
        await self._push(fragments.PANEL_IDS)
        self.tick_task = asyncio.create_task(self._tick())

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
        for task in (self.flush_task, self.tick_task):
            if task is not None:
                task.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing the server acts on."""

    # Channel-layer events. Each returns at once: rendering happens in the flush task.

    async def live_messages(self, event: dict[str, Any]) -> None:
        self._mark_dirty(fragments.panels_for_messages(event.get("messages") or []))

    async def live_resync(self, event: dict[str, Any]) -> None:
        self.sent.clear()
        self._mark_dirty(
            fragments.PANEL_IDS, delay=random.uniform(self.coalesce_seconds, self.resync_spread_seconds)
        )

    async def live_force_close(self, event: dict[str, Any]) -> None:
        await self.close(code=SIGNED_OUT)

    def _mark_dirty(self, panel_ids: Iterable[str], *, delay: float | None = None) -> None:
        if self.store is None:
            return
        self.dirty.update(panel_ids)
        if self.dirty and self.flush_task is None:
            self.flush_task = asyncio.create_task(self._flush(delay or self.coalesce_seconds))

    async def _flush(self, delay: float) -> None:
        """Render whatever is dirty, after a short pause that lets a burst coalesce."""
        try:
            while self.dirty:
                await asyncio.sleep(delay)
                panel_ids, self.dirty = self.dirty, set()
                try:
                    await self._push(panel_ids)
                    delay = self.coalesce_seconds
                except Exception:
                    logger.exception("live render failed for store %s; retrying", self.store.public_id)
                    self.dirty |= panel_ids
                    delay = self.retry_seconds
        finally:
            self.flush_task = None

    async def _push(self, panel_ids: Iterable[str]) -> None:
        """Render the panels and send, in one frame, those that differ from what the page has."""
        rendered = await render(self.store, panel_ids)
        changed = [html for panel_id, html in rendered.items() if self.sent.get(panel_id) != html]
        self.sent.update(rendered)
        if changed:
            await self.send(text_data="".join(changed))

    async def _tick(self) -> None:
        """Send a heartbeat, re-check access and refresh what changes with the clock alone."""
        while True:
            await asyncio.sleep(self.tick_seconds)
            await self.send(text_data=HEARTBEAT)
            try:
                code = await access_lost(self.session_key, self.user_id, self.store.public_id)
            except Exception:
                logger.warning("live access re-check failed for store %s", self.store.public_id, exc_info=True)
                code = None
            if code is not None:
                await self.close(code=code)
                return
            today = self._local_date()
            if today != self.local_date:
                self.local_date = today
                self._mark_dirty(fragments.PANEL_IDS)
            else:
                self._mark_dirty(fragments.CLOCK_PANELS)

    def _local_date(self) -> date:
        return datetime.now(ZoneInfo(self.store.timezone)).date()
