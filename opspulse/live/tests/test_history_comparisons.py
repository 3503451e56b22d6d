"""Comparisons with earlier days are shown only when the store's history covers them.

A store's history starts when it was connected, or where an import's period began.
Before that OpsPulse saw no sales, so "previous period +524%" against a period it saw
one day of would mislead: the dashboard, overview and wallboard say there is not
enough history yet instead.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.urls import reverse
from django.utils import timezone

from opspulse.commerce.actions import record_order
from opspulse.lib.formatting import NOT_ENOUGH_HISTORY
from opspulse.live import fragments
from opspulse.live.panels import KPI_REVENUE
from opspulse.metrics.models import Granularity, MetricName
from opspulse.metrics.selectors import local_day, local_midnight
from tests.factories import MetricFactory, OrderFactory
from tests.support.live import (
    LivePage,
    connect_and_read_panels,
    dashboard_socket,
    new_order,
    socket_headers,
)

NEW_YORK = ZoneInfo("America/New_York")
# 14:30 in New York (the factory's stores are there).
NOW = datetime(2025, 10, 14, 14, 30, tzinfo=NEW_YORK)
PERCENT = re.compile(r"[+−]\d+%")


def day_bucket(store, day, value: str) -> None:
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY,
                  timestamp=local_midnight(day, NEW_YORK), value=Decimal(value))


def history_from(store, start: datetime) -> None:
    store.history_starts_at = start
    store.save(update_fields=["history_starts_at"])


def dashboard(client, store) -> str:
    return client.get(reverse("dashboard", args=[store.public_id])).content.decode()


def daily_panel(html: str) -> str:
    start = html.index('<section id="daily-chart"')
    return html[start:html.index("</section>", start)]


def previous_period(html: str) -> str:
    """The daily chart's "Previous period" figure, as the merchant reads it."""
    cell = re.search(r"<dt>Previous period[^<]*</dt><dd[^>]*>(.*?)</dd>", daily_panel(html), re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell).strip()


def comparison_rows(html: str, panel_id: str) -> list[str]:
    """Each comparison row of a KPI card, as plain text ("Yesterday $40.00 +50%")."""
    panel = html[html.index(f'id="{panel_id}"'):]
    rows = panel[panel.index('<dl class="kpi-rows">'):panel.index("</dl>")]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r"<dd>(.*?)</dd>", rows, re.S)
    ]


def comparison_labels(html: str, panel_id: str) -> list[str]:
    panel = html[html.index(f'id="{panel_id}"'):]
    rows = panel[panel.index('<dl class="kpi-rows">'):panel.index("</dl>")]
    return re.findall(r'<span aria-hidden="true">([^<]+)</span></dt>', rows)


@pytest.mark.parametrize(
    "history_days",
    [3, 7],
    # 7: the history reaches only the last day of the 7 days before, the day whose sales
    # alone made the old "previous period +524%".
    ids=["three_days_case", "last_day_of_previous_period_case"],
)
def test_a_store_with_a_few_days_of_history_has_not_enough_for_a_7_day_comparison(store, owner_client, history_days):
    # given a store whose history began a few days ago, with sales every day since
    day = local_day(store)
    today = day.start.date()
    history_from(store, local_midnight(today - timedelta(days=history_days), NEW_YORK))
    for back in range(history_days + 1):
        day_bucket(store, today - timedelta(days=back), "100.00")
    OrderFactory(store=store, total=Decimal("40.00"), placed_at=day.yesterday_start)

    # when the merchant opens its dashboard (the last 7 days by default)
    html = dashboard(owner_client, store)

    # then the period before is not compared with, neither in words nor as a line
    assert previous_period(html) == NOT_ENOUGH_HISTORY
    assert not PERCENT.search(daily_panel(html))
    chart = json.loads(unescape(re.search(r'data-daily="([^"]*)"', html).group(1)))
    assert chart["previous"] is None and chart["revenue"][-1] == 100.0
    # and on the cards, yesterday is compared with, and the same weekday last week only
    # once the history reaches back to it
    for panel_id in ("kpi-revenue", "kpi-orders", "kpi-aov", "kpi-units"):
        yesterday, last_week = comparison_rows(html, panel_id)
        assert NOT_ENOUGH_HISTORY not in yesterday
        assert (last_week == NOT_ENOUGH_HISTORY) is (history_days < 7)


def test_a_store_with_sixty_days_of_history_shows_its_comparisons(store, owner_client):
    day = local_day(store)
    today = day.start.date()
    history_from(store, local_midnight(today - timedelta(days=59), NEW_YORK))
    for back in range(14):
        day_bucket(store, today - timedelta(days=back), "100.00" if back < 7 else "50.00")
    OrderFactory(store=store, total=Decimal("40.00"), placed_at=day.yesterday_start)

    html = dashboard(owner_client, store)

    assert previous_period(html) == "$350.00 +100%"
    chart = json.loads(unescape(re.search(r'data-daily="([^"]*)"', html).group(1)))
    assert chart["previous"] == [50.0] * 7
    assert 'aria-label="Revenue per day' in html and "previous period $350.00" in html
    for panel_id in ("kpi-revenue", "kpi-orders", "kpi-aov", "kpi-units"):
        assert not any(NOT_ENOUGH_HISTORY in row for row in comparison_rows(html, panel_id))
    # a 90-day range reaches past those sixty days
    response = owner_client.get(reverse("dashboard-daily", args=[store.public_id]), {"days": 90})
    assert previous_period(response.content.decode()) == NOT_ENOUGH_HISTORY


@pytest.mark.parametrize(
    ("offset", "covered"),
    [(timedelta(0), True), (timedelta(seconds=-1), True), (timedelta(seconds=1), False)],
    ids=["exactly_case", "a_second_earlier_case", "a_second_later_case"],
)
def test_history_that_begins_exactly_where_the_compared_period_does_covers_it(store, offset, covered):
    day = local_day(store, NOW)
    today = day.start.date()

    # the 7 days to today, against the 7 before them (which begin 13 days before today)
    history_from(store, local_midnight(today - timedelta(days=13), NEW_YORK) + offset)
    chart = fragments.render_daily_chart(store, first=today - timedelta(days=6), last=today, preset=7, now=NOW)
    # today against the same weekday last week
    history_from(store, day.last_week_start + offset)
    kpi = fragments.render_panels(store, [KPI_REVENUE], oob=False, now=NOW)[KPI_REVENUE]

    assert (previous_period(chart) != NOT_ENOUGH_HISTORY) is covered
    assert (comparison_rows(kpi, KPI_REVENUE)[1] != NOT_ENOUGH_HISTORY) is covered


def test_the_overview_and_wallboard_of_a_store_connected_today_say_not_enough_history(store, owner_client):
    history_from(store, timezone.now() - timedelta(minutes=30))

    home = owner_client.get(reverse("home")).content.decode()
    wall = owner_client.get(reverse("wallboard", args=[store.public_id])).content.decode()

    tile = home[home.index(f'id="store-tile-{store.public_id}"'):]
    assert NOT_ENOUGH_HISTORY in tile[:tile.index("</li>")]
    assert "vs yesterday" not in home
    for region in ("wb-revenue", "wb-orders", "wb-aov"):
        block = wall[wall.index(f'id="{region}"'):]
        block = block[:block.index("</div>")]
        assert NOT_ENOUGH_HISTORY in block and "Yesterday by now" not in block


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_the_live_cards_say_the_same_as_the_first_render(store, owner_client, live_listener):
    """A store connected this morning: the page and the panels pushed to it after a sale
    both say there is not enough history, on every card and on the day's chart."""
    await database_sync_to_async(history_from)(store, timezone.now() - timedelta(hours=2))
    first = await sync_to_async(dashboard)(owner_client, store)
    socket = dashboard_socket(store, socket_headers(owner_client))
    page = LivePage()
    page.apply(await connect_and_read_panels(socket))

    await database_sync_to_async(record_order)(store=store, data=new_order(9501, "80.00"))
    while "$80.00" not in page.text(KPI_REVENUE):
        page.apply(await socket.receive_text(timeout=5))
    await socket.disconnect()
    pushed = page.html[KPI_REVENUE]

    for html in (first, pushed):
        assert comparison_rows(html, "kpi-revenue") == [NOT_ENOUGH_HISTORY, NOT_ENOUGH_HISTORY]
    assert comparison_labels(first, "kpi-revenue") == comparison_labels(pushed, "kpi-revenue")
    assert comparison_labels(first, "kpi-revenue")[0] == "Yesterday"
    assert "Yesterday: not enough history yet" in first
