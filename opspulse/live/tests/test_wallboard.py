from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.models import Role
from opspulse.commerce.actions import record_order
from opspulse.live import share, wallboard_regions
from opspulse.live.access import AccessWatch
from opspulse.live.consumers import HEARTBEAT
from opspulse.live.models import WallboardLink
from opspulse.live.panels import WB_CHART, WB_DAY, WB_FEED, WB_REVENUE
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.models import Granularity, MetricName
from tests.factories import MembershipFactory, MetricFactory, OrderFactory, UserFactory
from tests.support.live import (
    LivePage,
    new_order,
    shared_socket,
    socket_headers,
    wallboard_socket,
)
from tests.support.stores import client_for


def test_the_wallboard_shows_the_day_in_large_type_without_customer_data(store, owner_client):
    OrderFactory(store=store, number="#2001", total=Decimal("120.00"), customer_first_name="Ada", customer_city="London")

    page = owner_client.get(reverse("wallboard", args=[store.public_id])).content.decode()

    assert "Revenue today" in page and "$120.00" in page and 'data-order-number="#2001"' in page
    assert "Ada" not in page and "London" not in page
    assert f'data-websocket-path="/ws/stores/{store.public_id}/wallboard/?rendered_at=' in page


def test_the_wallboard_shows_the_stores_date_in_the_evening_when_utc_is_already_tomorrow(store):
    """At 21:00 in New York it is 02:00 the next day in UTC: the wallboard still says today."""
    evening = datetime(2026, 12, 6, 21, 0, tzinfo=ZoneInfo("America/New_York"))

    day = wallboard_regions.render_regions(store, oob=False, now=evening)[WB_DAY]

    assert '<time datetime="2026-12-06">Sunday, December 6</time>' in day


def test_the_wallboard_turns_over_to_the_new_day_in_the_stores_timezone(store):
    OrderFactory(store=store, number="#2002", total=Decimal("80.00"), placed_at=timezone.now() - timedelta(minutes=1))
    today = metric_selectors.local_day(store)
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY, timestamp=today.start, value=80)
    tomorrow = today.now + timedelta(days=1)

    before = wallboard_regions.render_regions(store, oob=True)
    after = wallboard_regions.render_regions(store, oob=True, now=tomorrow)

    assert "$80.00" in before[WB_REVENUE]
    assert "$0.00" in after[WB_REVENUE] and "Yesterday by now $80.00" in after[WB_REVENUE]
    assert tomorrow.strftime("%A, %B %-d") in after[WB_DAY]


def test_an_admin_creates_a_link_whose_token_is_shown_once_and_stored_hashed(store, owner_client):
    url = reverse("wallboard-links", args=[store.public_id])

    created = owner_client.post(url, {"action": "create", "label": "Warehouse TV"}).content.decode()
    link = WallboardLink.objects.get()
    token = created.split("/wall/")[1].split("/")[0]
    listed = owner_client.get(url).content.decode()

    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert link.label == "Warehouse TV" and link.created_by.email == "owner@example.com"
    assert token not in listed and "Warehouse TV" in listed and "never used" in listed


def test_a_member_cannot_create_a_link(store):
    member = MembershipFactory(account=store.account, user=UserFactory(), role=Role.MEMBER).user

    response = client_for(member).post(reverse("wallboard-links", args=[store.public_id]), {"action": "create"})

    assert response.status_code == 403
    assert not WallboardLink.objects.exists()


def test_a_share_link_opens_the_wallboard_without_signing_in(store, owner):
    OrderFactory(store=store, number="#2003", customer_first_name="Grace", customer_city="Arlington")
    link, token = share.create_wallboard_link(store=store, created_by=owner, label="Lobby")

    response = Client().get(reverse("shared-wallboard", args=[token]))
    page = response.content.decode()

    assert response.status_code == 200 and response["Referrer-Policy"] == "no-referrer"
    assert 'data-order-number="#2003"' in page and store.name in page
    assert "Grace" not in page and "Arlington" not in page and "Exit" not in page
    link.refresh_from_db()
    assert link.last_used_at is not None


def test_revoking_a_link_from_the_page_makes_it_404(store, owner, owner_client):
    link, token = share.create_wallboard_link(store=store, created_by=owner)

    owner_client.post(reverse("wallboard-links", args=[store.public_id]), {"action": "revoke", "link": str(link.public_id)})

    assert Client().get(reverse("shared-wallboard", args=[token])).status_code == 404
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == owner


def test_a_link_of_another_store_cannot_be_revoked_from_this_one(store, owner, owner_client, outsider):
    from opspulse.stores.models import Store

    foreign_store = Store.objects.get(account__memberships__user=outsider)
    foreign_link, token = share.create_wallboard_link(store=foreign_store, created_by=outsider)

    response = owner_client.post(
        reverse("wallboard-links", args=[store.public_id]), {"action": "revoke", "link": str(foreign_link.public_id)}
    )

    assert response.status_code == 404
    assert Client().get(reverse("shared-wallboard", args=[token])).status_code == 200


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_shared_wallboard_shows_a_new_order_live_without_customer_data(store, owner, live_listener):
    _, token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=owner)
    socket = shared_socket(token)
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_text()
    assert 'id="wb-revenue" hx-swap-oob="morph"' in first and "$0.00" in first

    await database_sync_to_async(record_order)(store=store, data=new_order(8301, "40.00"))
    frame = await socket.receive_text(timeout=5)

    assert 'data-order-number="#8301"' in frame and "$40.00" in frame
    assert "Ines" not in frame and "Porto" not in frame
    # Only the regions that changed: the date did not.
    assert 'id="wb-day"' not in frame
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_wallboard_patches_its_figures_and_asks_for_a_region_whole_when_it_cannot(store, owner_client, live_listener):
    socket = wallboard_socket(store, socket_headers(owner_client))
    assert (await socket.connect())[0]
    page = LivePage()
    page.apply(await socket.receive_text())
    await database_sync_to_async(record_order)(store=store, data=new_order(8311, "40.00"))
    page.apply(await socket.receive_text(timeout=5))

    await database_sync_to_async(record_order)(store=store, data=new_order(8312, "60.00"))
    frame = await socket.receive_text(timeout=5)
    assert frame.startswith('{"patch":') and WB_REVENUE in page.apply(frame)
    assert "$100.00" in page.text(WB_REVENUE)

    await socket.send_text(f'{{"resync": ["{WB_REVENUE}"]}}')
    whole = await socket.receive_text(timeout=5)

    assert page.apply(whole) == {WB_REVENUE} and not whole.startswith("{")
    assert "$100.00" in page.text(WB_REVENUE)
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_revoking_a_link_closes_its_open_wallboards_at_once(store, owner, owner_client, live_listener):
    link, token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=owner)
    shared = shared_socket(token)
    member = wallboard_socket(store, socket_headers(owner_client))
    for socket in (shared, member):
        assert (await socket.connect())[0]
        await socket.receive_text()

    await sync_to_async(share.revoke_wallboard_link)(link=link, revoked_by=owner)

    assert await shared.receive_close_code() == 4404
    # A member's wallboard is not opened through the link and stays open.
    assert await member.receive_nothing(timeout=0.3)
    await member.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_the_members_wallboard(store, owner_client, live_listener):
    socket = wallboard_socket(store, socket_headers(owner_client))
    assert (await socket.connect())[0]
    await socket.receive_text()

    await sync_to_async(owner_client.post)(reverse("account_logout"))

    assert await socket.receive_close_code() == 4401


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_revoked_link_missed_by_its_notification_closes_at_the_next_check(store, owner, monkeypatch):
    monkeypatch.setattr(AccessWatch, "period_seconds", 0.3)
    link, token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=owner)
    socket = shared_socket(token)
    assert (await socket.connect())[0]
    await socket.receive_text()

    # Revoked while no listener runs: only the periodic re-check can notice.
    await database_sync_to_async(WallboardLink.objects.filter(pk=link.pk).update)(revoked_at=timezone.now())

    assert await socket.receive_text() == HEARTBEAT
    assert await socket.receive_close_code() == 4404


def test_a_cancelled_order_on_the_wallboard_is_struck_through_and_says_so(store):
    OrderFactory(store=store, number="#2101", total=Decimal("75.00"), status="cancelled")
    OrderFactory(store=store, number="#2102", total=Decimal("40.00"), status="refunded")
    OrderFactory(store=store, number="#2103", total=Decimal("60.00"))

    feed = wallboard_regions.render_regions(store, oob=False)[WB_FEED]

    rows = {number: feed[feed.index(f'data-order-number="{number}"'):] for number in ("#2101", "#2102", "#2103")}
    rows = {number: row[: row.index("</li>")] for number, row in rows.items()}
    for number, word in (("#2101", "Cancelled"), ("#2102", "Refunded")):
        total_classes, total = re.search(r'class="([^"]*)" data-wall-total>(.*?[0-9])</span>', rows[number]).groups()
        status_classes, status = re.search(r'class="([^"]*)" data-wall-status>([^<]*)</span>', rows[number]).groups()
        assert "line-through" in total_classes and "Not counted: </span>$" in total
        # The word is shown at every width: no class hides it.
        assert status == word and "hidden" not in status_classes.split()
    assert "line-through" not in rows["#2103"] and "Not counted" not in rows["#2103"]


def test_the_wallboards_hourly_chart_has_a_scale_in_the_stores_currency_and_hour_labels(store):
    store.currency = "EUR"
    store.save()
    today = metric_selectors.local_day(store)
    busiest = today.now.replace(minute=0, second=0, microsecond=0)
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.HOUR, timestamp=busiest, value=1234)

    chart = wallboard_regions.render_regions(store, oob=False)[WB_CHART]

    labels = re.findall(r"<span data-axis-label>([^<]*)</span>", chart)
    # A round scale from €0 up past the busiest hour's €1,234, then the day's hours.
    assert labels == ["€1,500", "€1,000", "€500", "€0", "00:00", "06:00", "12:00", "18:00", "24:00"]
    assert "on a scale up to €1,500" in chart
