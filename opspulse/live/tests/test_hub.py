"""Render pacing: a busy web process renders each store less often instead of falling behind."""

from __future__ import annotations

from opspulse.live.hub import COALESCE_SECONDS, DashboardHubs


def hubs_with(stores: int, flush_seconds: float) -> DashboardHubs:
    hubs = DashboardHubs()
    hubs.hubs = {store: object() for store in range(stores)}
    for _ in range(200):
        hubs.record(flush_seconds)
    return hubs


def test_a_quiet_process_renders_a_store_as_often_as_the_minimum_interval():
    assert hubs_with(1, 0.005).interval() == COALESCE_SECONDS


def test_renders_of_all_stores_stay_within_their_share_of_a_core(settings):
    settings.LIVE_RENDER_SHARE = 0.5
    hubs = hubs_with(100, 0.005)

    # 100 stores at 5 ms a render: each store at most once a second, so renders take
    # half a core however many orders arrive.
    interval = hubs.interval()
    assert 0.95 < interval < 1.05
    assert 100 * 0.005 / interval <= 0.5 + 1e-9
