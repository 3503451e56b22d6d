"""One render per store per process, shared by every dashboard of that store.

All dashboards of a store see the same panels, so the web process renders them once
and hands the same HTML to each open dashboard, which sends only what its page lacks.
The frame that says it is built once per delivery for every dashboard whose page shows
the same HTML (opspulse.live.frames.FrameBuilder): the usual case, since they were all
sent the same frames, so the same string goes to each socket. It carries a panel whole
when its structure changed (or the page never had it), else only the text and
attribute values that changed. Requests that arrive while a render is pending join it;
requests that arrive while a render runs wait for the next one, because that render
may have read the database before the change they announce.

New orders take a shorter way: their messages carry the feed row and the buckets'
new values, which the hub applies to the store's view (opspulse.live.store_view) and
shows without reading the database: a row prepended to each page's feed, and the
KPIs and chart rendered from the view. Every read of the database renews the view,
and messages that arrive while a read runs are applied again on top of it.

A store is rendered at once after a quiet spell, then at most once per interval,
which follows the process's load (opspulse.live.pacing). What was rendered last is
kept per panel (PanelCache), so that a dashboard that joins can be sent it.

Overviews and wallboards do not go through a hub: each shows its own set of stores in
its own timezone and reads them at its own pace, so a store's live messages only mark
it changed for them (opspulse.live.storewatch).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async

from opspulse.live import fragments
from opspulse.live.frames import FrameBuilder
from opspulse.live.pacing import RenderPacing
from opspulse.live.panels import (
    CLOCK_PANELS,
    ORDER_FEED,
    ORDER_REREAD_PANELS,
    PANEL_IDS,
    REVENUE_CHART,
    panels_for_messages,
)
from opspulse.live.store_view import StoreView, renewed
from opspulse.metrics import selectors as metric_selectors
from opspulse.stores.models import Store

logger = logging.getLogger("opspulse.live")

# The chart is sent from the view at most this often, and a change to it waits at
# most twice this long.
CHART_VIEW_SECONDS = 1.0
# Panels read again after an order although the view shows the order (best sellers need
# line items, which messages do not carry): this long after the first order of a burst,
# then at most this often, in reads of their own. A flash sale thus costs one such read
# per interval and store, and the frames of new orders never wait for it.
SLOW_READ_SECONDS = 5.0


class Dashboard(Protocol):
    async def deliver(self, frames: FrameBuilder) -> None: ...

    def resync(self) -> None: ...


Read = tuple[dict[str, str], metric_selectors.LocalDay, dict[str, Any], float]


def _render(store: Store, panel_ids: Iterable[str]) -> Read:
    """The panels' HTML, the day and view data read, and the CPU time the render took
    (waits for the database excluded)."""
    started = time.thread_time()
    rendered, day, parts = fragments.read_panels(store, panel_ids)
    return rendered, day, parts, time.thread_time() - started


# Renders run in the shared thread pool rather than the single thread-sensitive one,
# so renders of different stores are not serialised behind one thread.
render: Callable[[Store, Iterable[str]], Awaitable[Read]] = database_sync_to_async(_render, thread_sensitive=False)


class PanelCache:
    """The freshest HTML of each panel of a store, from a read or from its view.

    The feed's is stale once rows went out one at a time: it is rendered again from the
    view before a dashboard that joins is sent every panel from here.
    """

    def __init__(self) -> None:
        self.html: dict[str, str] = {}
        self.feed_stale = False

    def remember(self, rendered: dict[str, str]) -> None:
        self.html.update(rendered)
        if ORDER_FEED in rendered:
            self.feed_stale = False

    def clear(self) -> None:
        self.html.clear()

    def has_every_panel(self) -> bool:
        return self.html.keys() >= set(PANEL_IDS)

    def every_panel(self) -> dict[str, str]:
        return {panel_id: self.html[panel_id] for panel_id in PANEL_IDS}


class StoreHub:
    """The dashboards of one store in this process, and their pending panel requests."""

    retry_seconds = 5.0
    # Panels that change with the clock alone are refreshed this often, once per store.
    clock_seconds = 30.0

    def __init__(self, store: Store, pacing: RenderPacing) -> None:
        self.store = store
        self.pacing = pacing
        self.dashboards: set[Dashboard] = set()
        self.requests: dict[Dashboard, set[str]] = {}
        # Panels wanted by every dashboard of the store (a change to the store's data).
        self.everyone: set[str] = set()
        self.task: asyncio.Task | None = None
        self.renders = 0
        self.last_render_at = float("-inf")
        # The sales panels' data, kept current from messages between reads; None until
        # a read of all of it, and after a lost connection (messages may be missing).
        self.view: StoreView | None = None
        # Messages that arrived while a read ran (None while none runs).
        self.replay: list[dict[str, Any]] | None = None
        self.view_panels: set[str] = set()
        self.view_rows: list = []
        self.view_task: asyncio.Task | None = None
        self.last_view_frame_at = float("-inf")
        self.last_chart_at = float("-inf")
        self.chart_timer: asyncio.TimerHandle | None = None
        self.chart_pending = False
        # Channel-layer events already applied (the Redis transport hands each one to
        # every dashboard of the store).
        self.seen_events: deque[str] = deque(maxlen=64)
        self.cache = PanelCache()
        self.slow_panels: set[str] = set()
        self.slow_task: asyncio.Task | None = None
        self.slow_reads = 0
        self.local_date = self._local_date()
        self.clock_task = asyncio.create_task(self._clock())

    def _local_date(self) -> date:
        return datetime.now(ZoneInfo(self.store.timezone)).date()

    async def _clock(self) -> None:
        """Refresh the clock-driven panels, and every panel when the store's day turns."""
        # Stores whose dashboards opened together (a web process restarted) are
        # refreshed at spread-out times, not all in the same second.
        delay = random.uniform(0, self.clock_seconds)
        while True:
            await asyncio.sleep(delay)
            delay = self.clock_seconds
            today = self._local_date()
            if today != self.local_date:
                self.local_date = today
                self.forget_view()
                self.request_all(PANEL_IDS)
            else:
                self.request_all(CLOCK_PANELS)

    def close(self) -> None:
        for task in (self.task, self.clock_task, self.view_task, self.slow_task):
            if task is not None:
                task.cancel()
        if self.chart_timer is not None:
            self.chart_timer.cancel()

    def on_messages(self, messages: list[dict[str, Any]], *, event_id: str | None = None) -> None:
        """Show what the store's live messages announce on every dashboard of the store."""
        if event_id is not None:
            if event_id in self.seen_events:
                return
            self.seen_events.append(event_id)
        if self.replay is not None:
            self.replay.extend(messages)
        if self.view is None:
            self.request_all(panels_for_messages(messages))
            return
        change = self.view.apply(messages)
        self._reread(change.reread)
        if change.panels or change.rows:
            self.view_panels |= change.panels
            self.view_rows.extend(change.rows)
            self._schedule_view()

    def _reread(self, panel_ids: set[str]) -> None:
        """Read `panel_ids` again for every dashboard: the panels that only orders mark
        (best sellers) in a throttled read of their own, unless a read is due anyway."""
        if not panel_ids:
            return
        if panel_ids <= ORDER_REREAD_PANELS and not (self.everyone or self.task):
            self.slow_panels |= panel_ids
            if self.slow_task is None:
                self.slow_task = asyncio.create_task(self._flush_slow(SLOW_READ_SECONDS))
            return
        self.request_all(panel_ids)

    async def _flush_slow(self, delay: float) -> None:
        try:
            while self.slow_panels:
                await asyncio.sleep(delay)
                panels, self.slow_panels = self.slow_panels, set()
                try:
                    rendered, _, _, render_seconds = await render(self.store, panels)
                except Exception:
                    logger.exception("live read of %s failed for store %s; retrying", panels, self.store.public_id)
                    self.slow_panels |= panels
                    delay = self.retry_seconds
                    continue
                self.slow_reads += 1
                started = time.thread_time()
                self.cache.remember(rendered)
                await self._deliver(list(self.dashboards), lambda _: rendered)
                self.pacing.record(render_seconds + time.thread_time() - started)
                delay = SLOW_READ_SECONDS
        finally:
            self.slow_task = None

    def forget_view(self) -> None:
        """Messages may have been lost: show nothing from the view until the next full read."""
        self.view = None
        self.cache.clear()

    async def _flush_view(self, delay: float) -> None:
        """Send the panels and rows changed in the view to every dashboard of the store.

        The chart goes out at most every CHART_VIEW_SECONDS: it is the largest panel, and
        one new point per second is as live as a chart needs to be.
        """
        loop = asyncio.get_running_loop()
        try:
            while self.view_panels or self.view_rows:
                await asyncio.sleep(delay)
                panels, self.view_panels = self.view_panels, set()
                rows, self.view_rows = self.view_rows, []
                if self.view is None:
                    continue  # a full read is on its way
                chart_due = self.last_chart_at + CHART_VIEW_SECONDS - loop.time()
                if REVENUE_CHART in panels and chart_due > 0:
                    # Later: with the first frame after it is due, or on its own timer if
                    # no frame comes by then. Rows and KPIs do not wait for it.
                    panels.discard(REVENUE_CHART)
                    self.chart_pending = True
                    if self.chart_timer is None:
                        self.chart_timer = loop.call_later(chart_due + CHART_VIEW_SECONDS, self._chart_due)
                elif self.chart_pending and chart_due <= 0:
                    panels.add(REVENUE_CHART)
                # CPU time: all of it runs on this thread, and a busy machine's waits are not its cost.
                started = time.thread_time()
                if ORDER_FEED in panels:
                    rows = []
                try:
                    rendered = fragments.render_from_view(self.store, self.view, panels)
                    row_html = fragments.render_feed_rows(self.store, self.view, rows) if rows else ""
                except ValueError:  # the store's day turned
                    self.forget_view()
                    self.request_all(PANEL_IDS)
                    continue
                now = loop.time()
                if REVENUE_CHART in rendered:
                    self.last_chart_at = now
                    self.chart_pending = False
                    if self.chart_timer is not None:
                        self.chart_timer.cancel()
                        self.chart_timer = None
                if rendered or row_html:
                    self.last_view_frame_at = now
                    self.cache.remember(rendered)
                    self.cache.feed_stale = self.cache.feed_stale or bool(row_html)
                    await self._deliver(list(self.dashboards), lambda _: rendered, row_html)
                self.pacing.record(time.thread_time() - started)
                delay = max(self.last_view_frame_at + self.pacing.view_interval() - loop.time(), 0)
        finally:
            self.view_task = None

    def _chart_due(self) -> None:
        self.chart_timer = None
        if self.chart_pending:
            self.view_panels.add(REVENUE_CHART)
            self._schedule_view()

    def _schedule_view(self) -> None:
        if self.view_task is None:
            loop = asyncio.get_running_loop()
            delay = max(self.last_view_frame_at + self.pacing.view_interval() - loop.time(), 0)
            self.view_task = asyncio.create_task(self._flush_view(delay))

    async def _deliver(self, targets: list[Dashboard], panels_for: Callable[[Dashboard], dict[str, str]],
                       rows: str = "") -> None:
        # One builder per set of panels (most dashboards are handed the same dict): the
        # dashboards that show the same HTML share one frame, built once.
        builders: dict[int, tuple[dict[str, str], FrameBuilder]] = {}
        for dashboard in targets:
            if dashboard not in self.dashboards:
                continue  # closed while the render ran
            panels = panels_for(dashboard)
            if id(panels) not in builders:
                builders[id(panels)] = (panels, FrameBuilder(panels, rows))
            try:
                await dashboard.deliver(builders[id(panels)][1])
            except Exception:
                logger.warning("live: could not send to a dashboard of store %s", self.store.public_id, exc_info=True)

    async def first_frame(self, dashboard: Dashboard, *, reliable: bool) -> None:
        """Send a dashboard that just joined every panel.

        While the store's view is current and no read is pending, from the panels the
        hub rendered last (the same that its other dashboards show): a web process that
        restarts then reads each store once, not once per reconnecting dashboard. Only
        with a `reliable` transport (PostgreSQL), whose listener knows when it may have
        missed a message (and then drops the view); a Redis message can be lost
        unnoticed, and a reconnect is how a page gets past that.
        """
        if reliable and self.view is not None and self.task is None and self.cache.has_every_panel():
            if self.cache.feed_stale:
                try:
                    self.cache.remember(fragments.render_from_view(self.store, self.view, {ORDER_FEED}))
                except ValueError:  # the store's day turned
                    self.request(dashboard, PANEL_IDS, delay=0)
                    return
            await self._deliver([dashboard], lambda _: self.cache.every_panel())
            return
        self.request(dashboard, PANEL_IDS, delay=0)

    def request(self, dashboard: Dashboard, panel_ids: Iterable[str], *, delay: float | None = None) -> None:
        """Render `panel_ids` for `dashboard` together with every other request.

        Without `delay`, as soon as the render interval allows.
        """
        self.requests.setdefault(dashboard, set()).update(panel_ids)
        self._schedule(delay)

    def request_all(self, panel_ids: Iterable[str], *, delay: float | None = None) -> None:
        """Render `panel_ids` for every dashboard of the store; cheap to repeat."""
        self.everyone.update(panel_ids)
        self._schedule(delay)

    def _schedule(self, delay: float | None) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._flush(self._until_allowed() if delay is None else delay))

    def _until_allowed(self) -> float:
        return max(self.last_render_at + self.pacing.interval() - asyncio.get_running_loop().time(), 0.0)

    async def _flush(self, delay: float) -> None:
        try:
            while self.requests or self.everyone:
                await asyncio.sleep(delay)
                requests, self.requests = self.requests, {}
                everyone, self.everyone = self.everyone, set()
                wanted = everyone.union(*requests.values())
                # Dashboards that join during the render have asked for a full render of their own.
                targets = list(self.dashboards) if everyone else list(requests)
                self.last_render_at = asyncio.get_running_loop().time()
                self.replay = []
                try:
                    rendered, day, parts, render_seconds = await render(self.store, wanted)
                except Exception:
                    logger.exception("live render failed for store %s; retrying", self.store.public_id)
                    for dashboard, panel_ids in requests.items():
                        self.requests.setdefault(dashboard, set()).update(panel_ids)
                    self.everyone |= everyone
                    delay = self.retry_seconds
                    continue
                finally:
                    replay, self.replay = self.replay, None
                self.renders += 1
                sending_started = time.thread_time()
                shown = self._renew_view(day, parts, replay, rendered)
                shared = {p: html for p, html in rendered.items() if p in everyone and p not in shown}

                def panels_for(dashboard: Dashboard) -> dict[str, str]:
                    own = requests.get(dashboard)
                    return shared if not own else {p: html for p, html in rendered.items() if p in everyone or p in own}

                self.cache.remember(rendered)
                await self._deliver(targets, panels_for)
                self.pacing.record(render_seconds + time.thread_time() - sending_started)
                delay = self._until_allowed()
        finally:
            self.task = None

    def _renew_view(self, day: metric_selectors.LocalDay, parts: dict[str, Any], replay: list[dict[str, Any]],
                    rendered: dict[str, str]) -> set[str]:
        """Renew the view from a read, and bring it and the read's panels up to the
        messages that arrived while the read ran (it may have read before their commit).

        Return the panels that the dashboards following the view already show as read:
        the feed, when the read found the orders the view had. Its rows reached the
        pages one at a time, so the whole panel would change nothing there.
        """
        if not parts:
            return set()
        followed = self.view is not None and self.view.day.start == day.start and parts.get("feed") == self.view.feed
        self.view = renewed(self.view, day, parts)
        if self.view is None:
            return set()
        if not replay:
            return {ORDER_FEED} if followed else set()
        change = self.view.apply(replay)
        self._reread(change.reread)
        stale = change.panels | ({ORDER_FEED} if change.rows else set())
        try:
            rendered.update(fragments.render_from_view(self.store, self.view, stale & rendered.keys()))
        except ValueError:
            self.forget_view()
            self.request_all(PANEL_IDS)
            return set()
        if stale - rendered.keys():
            self.view_panels |= stale - rendered.keys()
            self._schedule_view()
        return {ORDER_FEED} if followed and ORDER_FEED not in stale else set()


class DashboardHubs:
    """This process's hubs, one per store with an open dashboard."""

    def __init__(self) -> None:
        self.hubs: dict[int, StoreHub] = {}
        self.by_public_id: dict[str, StoreHub] = {}
        self.pacing = RenderPacing()

    def join(self, store: Store, dashboard: Dashboard) -> StoreHub:
        hub = self.hubs.get(store.pk)
        if hub is None:
            hub = self.hubs[store.pk] = StoreHub(store, self.pacing)
            self.by_public_id[str(store.public_id)] = hub
            self.pacing.watch_loop(lambda: bool(self.hubs))
        hub.dashboards.add(dashboard)
        return hub

    def leave(self, store: Store, dashboard: Dashboard) -> None:
        hub = self.hubs.get(store.pk)
        if hub is None:
            return
        hub.dashboards.discard(dashboard)
        hub.requests.pop(dashboard, None)
        if not hub.dashboards:
            hub.close()
            del self.hubs[store.pk]
            self.by_public_id.pop(str(store.public_id), None)

    def resync_all(self) -> None:
        """Every dashboard of the process reads all its panels again (messages were lost)."""
        for hub in list(self.hubs.values()):
            hub.forget_view()
            for dashboard in list(hub.dashboards):
                dashboard.resync()

    def for_store(self, public_id: str) -> StoreHub | None:
        return self.by_public_id.get(str(public_id))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DashboardHubs] = weakref.WeakKeyDictionary()


def hubs() -> DashboardHubs:
    """The hubs of the running event loop (a web process has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = DashboardHubs()
    return _hubs[loop]
