"""One consumer per open dashboard: the live view's process.

It checks the socket's session and membership at connect (and, with every other
dashboard of the process, once per period after: opspulse.live.access), joins its
store's hub (and, with the Redis transport, the store's, the session's and the user's
groups) and pushes panels as htmx out-of-band fragments. A socket opened right after
its page was rendered, with no change to the store since (the PostgreSQL transport
knows: opspulse.live.transports), starts with a frame that says so; every other (re)connect
starts with every panel, read from PostgreSQL or, while the store is on screen in this
process, the hub's latest. Renders are shared by all dashboards of a store in the
process (opspulse.live.hub), which shows new orders from what their messages carry and
re-reads the other panels their messages mark; each dashboard sends only what differs
from what its page shows, in a frame its hub builds once for every page in the same
state: the text and attribute values that changed in a panel that kept its structure,
a panel whole otherwise (opspulse.live.frames). A page that cannot apply a patch (its
panel is not the one the patch names) sends `{"resync": [panel id, …]}`, and those
panels are read again and sent whole; the other panels stay as they are.

The all-stores overview (OverviewConsumer) and the wallboard (WallboardConsumer, for
members and for share links) are told by the listener when their stores change
(opspulse.live.storewatch), re-read, and send only the tiles and regions that changed,
patched or whole as a dashboard's panels are; the overview re-reads its alerts only
when a store's alerts changed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.utils import timezone

from opspulse.accounts.selectors import (
    CURRENT_ACCOUNT_SESSION_KEY,
    accounts_for_user,
    pick_current_account,
    stores_of_account,
)
from opspulse.lib.broadcast import group_name, session_group_name, user_group_name
from opspulse.live import overview, share, wallboard_regions
from opspulse.live.access import FORBIDDEN, LINK_REVOKED, SIGNED_OUT, watch
from opspulse.live.frames import FrameBuilder, resync_request
from opspulse.live.hub import StoreHub, hubs
from opspulse.live.pacing import COALESCE_SECONDS
from opspulse.live.panels import ORDER_FEED, PANEL_IDS, mentions_alerts
from opspulse.live.storewatch import store_watches
from opspulse.live.transports import transport
from opspulse.stores.models import Store
from opspulse.stores.selectors import get_store_for_user

logger = logging.getLogger("opspulse.live")

TRY_AGAIN_LATER = 1013
# The page counts any frame as a sign of life; this one swaps nothing.
HEARTBEAT = "<!-- heartbeat -->"
# The first frame of a socket whose page is current: nothing to swap either.
PAGE_CURRENT = "<!-- page current -->"


def _store_for_member(user, public_id) -> Store | None:
    try:
        return get_store_for_user(user, public_id)
    except Http404:
        return None


store_for_member = database_sync_to_async(_store_for_member)


def page_is_current(scope: dict[str, Any], stores: list[Store]) -> bool:
    """Whether the page that opened this socket still shows `stores` as they are (the
    page passes the time its render began as `rendered_at`)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("rendered_at")
    try:
        rendered_at = float(values[0]) if values else math.nan
    except ValueError:
        return False
    if not math.isfinite(rendered_at) or not stores:
        return False
    for store in stores:
        tz = ZoneInfo(store.timezone)
        # The page's "today" is each store's today (a page from before midnight is not).
        if datetime.fromtimestamp(rendered_at, tz).date() != datetime.now(tz).date():
            return False
        if not transport().page_is_current(str(store.public_id), rendered_at):
            return False
    return True


class LiveSocket(AsyncWebsocketConsumer):
    """What every live socket does: join its transport's groups, accept, stay under the
    access watch (opspulse.live.access), send a heartbeat, close when its session signs
    out or its user's team changes, and leave at disconnect.

    A subclass's `connect` finds what the socket shows (or `refuse`s), calls `open` with
    its groups, then sends its first frame and calls `watch_access`. `release` undoes what
    it set up beyond that.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store_id: int | None = None
        self.account_id: int | None = None
        self.user_id: int | None = None
        self.session_key = ""
        self.joined: list[str] = []
        self.sent: dict[str, str] = {}
        self.watched = False

    async def refuse(self, code: int) -> None:
        # Accept, then close: a refused handshake reaches the browser as 1006, which
        # the page would treat as a network error and retry forever.
        await self.accept()
        await self.close(code=code)

    async def open(self, groups: Iterable[str]) -> bool:
        """Join the groups (with the Redis transport) and accept; False if refused."""
        try:
            await transport().join(self, groups)
        except Exception:
            # The channel layer (Redis) is down. Close with "try again later": the page
            # reconnects with backoff, and every connect starts with a full render.
            logger.warning("live: cannot join the socket's groups; asking the page to retry", exc_info=True)
            await self.refuse(TRY_AGAIN_LATER)
            return False
        await self.accept()
        return True

    def watch_access(self) -> None:
        watch().add(self)
        self.watched = True

    async def disconnect(self, code: int) -> None:
        if self.watched:
            watch().remove(self)
            self.watched = False
        self.release()
        await transport().leave(self)

    def release(self) -> None:
        """Let go of what the socket subscribed to beyond its groups."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages send only resync requests (see the subclasses)."""

    async def heartbeat(self) -> None:
        await self.send(text_data=HEARTBEAT)

    # Channel-layer events (the Redis transport). Each returns at once.

    async def live_force_close(self, event: dict[str, Any]) -> None:
        await self.close(code=SIGNED_OUT if self.user_id is not None else LINK_REVOKED)

    async def live_recheck(self, event: dict[str, Any]) -> None:
        # The user's team changed: check this socket's access now, not at its slot.
        if self.watched:
            watch().recheck([self])


class DashboardConsumer(LiveSocket):
    # Re-renders after a transport resync are spread out so that every store of the
    # process does not hit the database in the same instant.
    resync_spread_seconds = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store: Store | None = None
        self.hub: StoreHub | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        store = None
        if user is not None and user.is_authenticated:
            store = await store_for_member(user, public_id)
        if store is None:
            await self.refuse(FORBIDDEN)
            return

        self.store = store
        self.store_id = store.pk
        self.user_id = user.pk
        self.session_key = self.scope["session"].session_key
        if not await self.open(
            (group_name(store.public_id), session_group_name(self.session_key), user_group_name(user.pk))
        ):
            return
        # No await between the check and the join: a message arriving in between would
        # reach neither the page nor the hub.
        page_current = page_is_current(self.scope, [store])
        self.hub = hubs().join(store, self)
        if page_current:
            await self.send(text_data=PAGE_CURRENT)
        else:
            await self.hub.first_frame(self, reliable=transport().reliable)
        self.watch_access()

    def release(self) -> None:
        if self.hub is not None:
            hubs().leave(self.store, self)
            self.hub = None

    async def live_messages(self, event: dict[str, Any]) -> None:
        # Every dashboard of the store receives the same event; the hub applies it once.
        if self.hub is not None:
            self.hub.on_messages(event.get("messages") or [], event_id=event.get("id"))

    def resync(self) -> None:
        """Live messages may have been lost: read every panel again, shortly."""
        self.sent.clear()
        if self.hub is not None:
            self.hub.forget_view()
        self._request(
            PANEL_IDS, delay=random.uniform(COALESCE_SECONDS, self.resync_spread_seconds)
        )

    def _request(self, panel_ids: Iterable[str], *, delay: float | None = None) -> None:
        panel_ids = set(panel_ids)
        if self.hub is not None and panel_ids:
            self.hub.request(self, panel_ids, delay=delay)

    async def deliver(self, frames: FrameBuilder) -> None:
        """Send, in one frame, what changed in the rendered panels since the page got
        them (the hub's builder makes it once for every page in the same state), and any
        feed rows."""
        frame = frames.frame_for(self.sent)
        self.sent.update(frames.rendered)
        if frames.rows:
            # The page's feed now differs from any whole panel sent before.
            self.sent.pop(ORDER_FEED, None)
        if frame:
            await self.send(text_data=frame)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A page that could not apply a patch asks for those panels whole."""
        panel_ids = resync_request(text_data, PANEL_IDS)
        if panel_ids:
            for panel_id in panel_ids:
                self.sent.pop(panel_id, None)
            self._request(panel_ids)


class _WatchedSocket(LiveSocket):
    """A socket that shows stores from their StoreWatch (opspulse.live.storewatch).

    Changes are coalesced: the first after a quiet spell is read at once, then at most
    one read per `refresh_seconds`. A socket whose page is current starts with a frame
    that says so; every other (re)connect starts with everything, and each
    heartbeat (once per access-check period) reads everything again, which also brings
    in the new day when it turns in a store's timezone. Only what differs from what the
    page has is sent.
    """

    refresh_seconds = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stores: list[Store] = []
        self.dirty: set[int] = set()
        self.alerts_changed = False
        self.refresh_task: asyncio.Task | None = None
        self.last_refresh_at = float("-inf")
        self.subscribed = False
        # Changes wait for the first frame, so that it cannot overtake a newer one.
        self.ready = False

    async def open(self, groups: Iterable[str]) -> bool:
        """Join the groups (Redis transport), accept, send everything and start watching."""
        if not await super().open(groups):
            return False
        # Watching first: a change during the first read is read again after it.
        watches = store_watches()
        for store in self.stores:
            watches.subscribe(store, self)
        self.subscribed = True
        # No await between subscribing and the check: a change in between is seen by both.
        if page_is_current(self.scope, self.stores):
            await self.send(text_data=PAGE_CURRENT)
        else:
            await self.deliver(await self.render_all())
        self.ready = True
        if self.dirty:
            self.store_changed(next(iter(self.dirty)))
        self.watch_access()
        return True

    async def render_all(self) -> dict[str, str]:
        raise NotImplementedError

    async def render_changed(self, dirty: set[int], *, alerts: bool = False) -> dict[str, str]:
        return await self.render_all()

    def release(self) -> None:
        if self.subscribed:
            watches = store_watches()
            for store in self.stores:
                watches.unsubscribe(store, self)
            self.subscribed = False
        if self.refresh_task is not None:
            self.refresh_task.cancel()
            self.refresh_task = None

    def store_changed(self, store_id: int, *, alerts: bool = False) -> None:
        self.dirty.add(store_id)
        self.alerts_changed |= alerts
        if self.ready and self.refresh_task is None:
            loop = asyncio.get_running_loop()
            delay = max(self.last_refresh_at + self.refresh_seconds - loop.time(), COALESCE_SECONDS)
            self.refresh_task = asyncio.create_task(self._refresh(delay))

    async def _refresh(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.dirty:
                await asyncio.sleep(delay)
                dirty, self.dirty = self.dirty, set()
                alerts, self.alerts_changed = self.alerts_changed, False
                self.last_refresh_at = loop.time()
                try:
                    rendered = await self.render_changed(dirty, alerts=alerts)
                except Exception:
                    logger.exception("live: could not read the stores of an overview or wallboard; retrying")
                    self.dirty |= dirty
                    self.alerts_changed |= alerts
                    delay = 5.0
                    continue
                await self.deliver(rendered)
                delay = self.refresh_seconds
        finally:
            self.refresh_task = None

    async def deliver(self, rendered: dict[str, str]) -> None:
        frame = FrameBuilder(rendered).frame_for(self.sent)
        self.sent.update(rendered)
        if frame:
            await self.send(text_data=frame)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A page that could not apply a patch asks for those elements whole: they are
        read again with everything else."""
        element_ids = resync_request(text_data)
        if element_ids:
            for element_id in element_ids:
                self.sent.pop(element_id, None)
            for store in self.stores:
                self.store_changed(store.pk, alerts=True)

    async def heartbeat(self) -> None:
        await super().heartbeat()
        for store in self.stores:
            self.store_changed(store.pk, alerts=True)

    async def live_messages(self, event: dict[str, Any]) -> None:
        # The event does not say which of the socket's stores it is about.
        alerts = mentions_alerts(event.get("messages"))
        for store in self.stores:
            self.store_changed(store.pk, alerts=alerts)


def _overview_scope(user, chosen_account: str | None) -> tuple[int, list[Store], str] | None:
    """The user's current account, its stores and the timezone the user reads times in."""
    account = pick_current_account(list(accounts_for_user(user)), chosen_account)
    if account is None:
        return None
    return account.pk, list(stores_of_account(account)), overview.viewer_timezone(user.pk, account.pk)


overview_scope = database_sync_to_async(_overview_scope)
render_overview_changed = database_sync_to_async(overview.render_changed)


class OverviewConsumer(_WatchedSocket):
    """The all-stores overview of the user's current account: its tiles, totals and alerts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.days: dict[int, overview.StoreDay] = {}
        self.timezone = "UTC"

    async def connect(self) -> None:
        user = self.scope.get("user")
        scope = None
        if user is not None and user.is_authenticated:
            scope = await overview_scope(user, self.scope["session"].get(CURRENT_ACCOUNT_SESSION_KEY))
        if scope is None:
            await self.refuse(FORBIDDEN)
            return
        self.account_id, self.stores, self.timezone = scope
        self.user_id = user.pk
        self.session_key = self.scope["session"].session_key
        await self.open(
            [group_name(store.public_id) for store in self.stores]
            + [session_group_name(self.session_key), user_group_name(user.pk)]
        )

    async def render_all(self) -> dict[str, str]:
        return await render_overview_changed(
            self.stores, {store.pk for store in self.stores}, self.days, alerts=True, tz=self.timezone
        )

    async def render_changed(self, dirty: set[int], *, alerts: bool = False) -> dict[str, str]:
        if len(self.days) < len(self.stores):
            # Opened on a current page, nothing read yet: the totals need every store.
            dirty = {store.pk for store in self.stores}
        return await render_overview_changed(self.stores, dirty, self.days, alerts=alerts, tz=self.timezone)


def _shared_store(token: str) -> tuple[str, Store, datetime | None, int] | None:
    link = share.link_for_token(token)
    if link is None:
        return None
    share.record_link_use(link)
    return share.link_socket_key(link.public_id), link.store, link.expires_at, link.created_by_id


shared_store = database_sync_to_async(_shared_store)
render_wallboard = database_sync_to_async(wallboard_regions.render_regions)


class WallboardConsumer(_WatchedSocket):
    """A store's wallboard, for a member (by session) or for anyone with a share link.

    A share link's wallboard closes when the link expires, to the second (the periodic
    access check would otherwise notice within its period), and when its creator's role
    or membership changes so that the link stops working.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expiry_task: asyncio.Task | None = None
        self.creator_id: int | None = None

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        groups: list[str] = []
        expires_at = None
        if "token" in kwargs:
            found = await shared_store(kwargs["token"])
            if found is None:
                await self.refuse(LINK_REVOKED)
                return
            self.session_key, store, expires_at, self.creator_id = found
            # A team change of the link's creator re-checks it at once, as it does their own dashboards.
            groups.append(user_group_name(self.creator_id))
        else:
            user = self.scope.get("user")
            store = None
            if user is not None and user.is_authenticated:
                store = await store_for_member(user, kwargs["public_id"])
            if store is None:
                await self.refuse(FORBIDDEN)
                return
            self.user_id = user.pk
            self.session_key = self.scope["session"].session_key
            groups.append(user_group_name(user.pk))
        self.stores = [store]
        self.store_id = store.pk
        opened = await self.open([group_name(store.public_id), session_group_name(self.session_key), *groups])
        if opened and expires_at is not None:
            self.expiry_task = asyncio.create_task(self._close_at(expires_at))

    async def _close_at(self, expires_at: datetime) -> None:
        await asyncio.sleep(max((expires_at - timezone.now()).total_seconds(), 0))
        await self.close(code=LINK_REVOKED)

    async def disconnect(self, code: int) -> None:
        if self.expiry_task is not None:
            self.expiry_task.cancel()
            self.expiry_task = None
        await super().disconnect(code)

    async def render_all(self) -> dict[str, str]:
        return await render_wallboard(self.stores[0], oob=True)

    async def live_messages(self, event: dict[str, Any]) -> None:
        # As a dashboard does: the store's hub applies the event once for the process.
        hub = hubs().for_store(str(self.stores[0].public_id))
        if hub is not None:
            hub.on_messages(event.get("messages") or [], event_id=event.get("id"))
        self.store_changed(self.store_id)
