"""Render pacing: a busy web process renders each store less often instead of falling behind."""

from __future__ import annotations

import time

from opspulse.live.hub import COALESCE_SECONDS, MAX_VIEW_INTERVAL_SECONDS, DashboardHubs


def window(hubs: DashboardHubs, *, busy_share: float) -> float:
    """One pacing window in which renders took `busy_share` of the time; the new interval."""
    hubs.window_started = time.monotonic() - 1.0
    hubs.record(busy_share * 1.0)
    return hubs.interval()


def test_a_process_with_time_to_spare_renders_a_store_at_the_shortest_interval(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = DashboardHubs()

    assert window(hubs, busy_share=0.1) == COALESCE_SECONDS
    assert window(hubs, busy_share=0.4) == COALESCE_SECONDS


def test_renders_over_their_share_space_out_then_recover_when_the_rush_ends(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = DashboardHubs()

    # a flash sale: renders would take 90% of the core, then more
    first = window(hubs, busy_share=0.9)
    second = window(hubs, busy_share=0.8)
    assert COALESCE_SECONDS < first < second

    # the rush is over: the interval halves back, window by window, to the minimum
    intervals = [window(hubs, busy_share=0.05) for _ in range(10)]
    assert intervals == sorted(intervals, reverse=True)
    assert intervals[-1] == COALESCE_SECONDS


def test_a_late_event_loop_spaces_renders_out_even_when_renders_are_cheap(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = DashboardHubs()

    # sockets and webhooks keep the loop 200 ms late, although renders take little
    hubs.loop_late_seconds = 0.2
    assert window(hubs, busy_share=0.1) > COALESCE_SECONDS


def test_a_late_event_loop_does_not_space_out_frames_shown_from_the_view(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = DashboardHubs()

    # a busy machine keeps the loop late; frames from the view cost little
    hubs.loop_late_seconds = 0.2
    hubs.window_started = time.monotonic() - 1.0
    hubs.record(0.1)

    assert hubs.view_interval() == COALESCE_SECONDS
    assert hubs.interval() > COALESCE_SECONDS


def test_frames_shown_from_the_view_space_out_when_they_take_over_their_share(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = DashboardHubs()

    hubs.window_started = time.monotonic() - 1.0
    hubs.record(0.9)

    assert COALESCE_SECONDS < hubs.view_interval() <= MAX_VIEW_INTERVAL_SECONDS
