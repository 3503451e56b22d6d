"""How often a web process renders its live dashboards, given its load.

A store is rendered at once after a quiet spell, then at most once per interval. The
interval of reads follows the process's load: while renders (and sending their
frames) take more than LIVE_RENDER_SHARE of one core, or the event loop runs late, it
grows; while they take less than half of that and the loop keeps time, it shrinks
back to COALESCE_SECONDS. Frames shown from a store's view (cheap, no database read)
follow the same rule up to MAX_VIEW_INTERVAL_SECONDS. A flash sale across many stores
thus makes frames less frequent instead of starving the event loop: the webhooks it
answers come first. A loop runs late when the process is busy, and also when the
machine is (its CPU goes to the worker and the database too); either way a frame that
waits costs a dashboard less than an acknowledgement that waits costs a store.
The hubs (opspulse.live.hub) record what their renders cost and ask for the interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from django.conf import settings

# A store's dashboards are rendered at most this often, however idle the process: the
# first change after a quiet spell is rendered at once, and a burst of orders becomes
# one frame per interval.
COALESCE_SECONDS = 0.05
# The longest interval between two renders of a store, however busy the process.
MAX_INTERVAL_SECONDS = 5.0
# The longest interval between two frames of new orders shown from the view (cheap:
# no database read), however busy the process.
MAX_VIEW_INTERVAL_SECONDS = 1.0
# How often the interval is adjusted to the measured load.
PACING_WINDOW_SECONDS = 1.0
# The event loop is checked this often; running later than LATE_LOOP_SECONDS means the
# process is overloaded (webhooks and sockets wait as well).
LOOP_PROBE_SECONDS = 0.1
LATE_LOOP_SECONDS = 0.05


class RenderPacing:
    """The shortest intervals between a store's reads and frames, from the measured load."""

    def __init__(self) -> None:
        self.current_interval = COALESCE_SECONDS
        self.current_view_interval = COALESCE_SECONDS
        # Time spent rendering and sending, and the event loop's worst lateness, since
        # the window started.
        self.busy_seconds = 0.0
        self.loop_late_seconds = 0.0
        self.window_started = time.monotonic()
        self.probe_task: asyncio.Task | None = None

    def record(self, seconds: float) -> None:
        self.busy_seconds += seconds

    def watch_loop(self, running: Callable[[], bool]) -> None:
        """Measure the event loop's lateness for as long as `running()` holds."""
        if self.probe_task is None:
            self.probe_task = asyncio.create_task(self._probe_loop(running))

    async def _probe_loop(self, running: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        while running():
            expected = loop.time() + LOOP_PROBE_SECONDS
            await asyncio.sleep(LOOP_PROBE_SECONDS)
            self.loop_late_seconds = max(self.loop_late_seconds, loop.time() - expected)
        self.probe_task = None

    def view_interval(self) -> float:
        """The shortest time between two frames shown from a store's view."""
        self._adjust()
        return self.current_view_interval

    def interval(self) -> float:
        """The shortest time between two reads of a store, given the process's load."""
        self._adjust()
        return self.current_interval

    def _adjust(self) -> None:
        now = time.monotonic()
        elapsed = now - self.window_started
        if elapsed < PACING_WINDOW_SECONDS:
            return
        share = self.busy_seconds / elapsed
        target = settings.LIVE_RENDER_SHARE
        late = self.loop_late_seconds > LATE_LOOP_SECONDS
        if share > target or late:
            growth = min(max(share / target, 2.0 if late else 1.0), 4.0)
            self.current_interval = min(self.current_interval * growth, MAX_INTERVAL_SECONDS)
            self.current_view_interval = min(self.current_view_interval * growth, MAX_VIEW_INTERVAL_SECONDS)
        elif share < target / 2 and self.loop_late_seconds < LATE_LOOP_SECONDS / 5:
            self.current_interval = max(self.current_interval / 2, COALESCE_SECONDS)
            self.current_view_interval = max(self.current_view_interval / 2, COALESCE_SECONDS)
        self.busy_seconds, self.loop_late_seconds, self.window_started = 0.0, 0.0, now
