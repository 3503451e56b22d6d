"""Render pacing: a busy web process renders each store less often instead of falling behind."""

from __future__ import annotations

import time

from opspulse.live.pacing import COALESCE_SECONDS, MAX_VIEW_INTERVAL_SECONDS, RenderPacing


def window(pacing: RenderPacing, *, busy_share: float) -> float:
    """One pacing window in which renders took `busy_share` of the time; the new interval."""
    pacing.window_started = time.monotonic() - 1.0
    pacing.record(busy_share * 1.0)
    return pacing.interval()


def test_a_process_with_time_to_spare_renders_a_store_at_the_shortest_interval(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    pacing = RenderPacing()

    assert window(pacing, busy_share=0.1) == COALESCE_SECONDS
    assert window(pacing, busy_share=0.4) == COALESCE_SECONDS


def test_renders_over_their_share_space_out_then_recover_when_the_rush_ends(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    pacing = RenderPacing()

    # a flash sale: renders would take 90% of the core, then more
    first = window(pacing, busy_share=0.9)
    second = window(pacing, busy_share=0.8)
    assert COALESCE_SECONDS < first < second

    # the rush is over: the interval halves back, window by window, to the minimum
    intervals = [window(pacing, busy_share=0.05) for _ in range(10)]
    assert intervals == sorted(intervals, reverse=True)
    assert intervals[-1] == COALESCE_SECONDS


def test_a_late_event_loop_spaces_renders_out_even_when_renders_are_cheap(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    pacing = RenderPacing()

    # sockets and webhooks keep the loop 200 ms late, although renders take little
    pacing.loop_late_seconds = 0.2
    assert window(pacing, busy_share=0.1) > COALESCE_SECONDS


def test_a_late_event_loop_spaces_out_frames_shown_from_the_view_up_to_a_second(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    pacing = RenderPacing()

    # a full machine keeps the loop late, and webhooks wait in it: frames give way,
    # however little they cost, but a dashboard still gets one a second
    intervals = []
    for _ in range(8):
        pacing.loop_late_seconds = 0.2
        pacing.window_started = time.monotonic() - 1.0
        pacing.record(0.1)
        intervals.append(pacing.view_interval())
    assert COALESCE_SECONDS < intervals[0] < intervals[1]
    assert intervals[-1] == MAX_VIEW_INTERVAL_SECONDS

    # the loop keeps time again: frames come back to the shortest interval
    for _ in range(8):
        pacing.window_started = time.monotonic() - 1.0
        pacing.record(0.05)
        pacing.view_interval()
    assert pacing.view_interval() == COALESCE_SECONDS


def test_frames_shown_from_the_view_space_out_when_they_take_over_their_share(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    pacing = RenderPacing()

    pacing.window_started = time.monotonic() - 1.0
    pacing.record(0.9)

    assert COALESCE_SECONDS < pacing.view_interval() <= MAX_VIEW_INTERVAL_SECONDS
