"""The overview's alerts: the latest of every store of the account, kept current by its socket."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.urls import reverse
from django.utils import timezone

from opspulse.alerts.models import AlertEvent, AlertPreference, AlertType
from opspulse.commerce.actions import record_order
from opspulse.live import overview
from opspulse.live.panels import ALERTS_ID
from tests.factories import AlertEventFactory, AlertFactory, MembershipFactory, StoreFactory
from tests.support.live import LivePage, new_order, overview_socket, socket_headers


@pytest.fixture
def second_store(store):
    return StoreFactory(account=store.account, name="Southwind Supply")


def fired(store, message: str, *, minutes_ago: int = 0, **kwargs) -> AlertEvent:
    event = AlertEventFactory(alert=AlertFactory(store=store), message=message, **kwargs)
    AlertEvent.objects.filter(pk=event.pk).update(fired_at=timezone.now() - timedelta(minutes=minutes_ago))
    return event


def alerts_panel(html: str) -> str:
    start = html.index('id="overview-alerts"')
    return html[start : html.index("</section>", start)]


def test_the_overview_lists_the_latest_alerts_of_the_accounts_stores_only(store, second_store, owner, owner_client):
    fired(store, "Only 2 left of Linen shirt", minutes_ago=30)
    fired(second_store, "Only 1 left of Wool socks", minutes_ago=5, acknowledged_at=timezone.now())
    # Not the overview's: a store of another account, a deleted store of this one, and a
    # store of the owner's other account, which has its own overview.
    fired(StoreFactory(name="Outsider Outlet"), "Only 3 left of Outsider hat")
    fired(StoreFactory(account=store.account, name="Closed Corner", deleted_at=timezone.now()), "Only 4 left of Gone")
    elsewhere = MembershipFactory(user=owner).account
    fired(StoreFactory(account=elsewhere, name="Elsewhere Emporium"), "Only 5 left of Elsewhere mug")

    panel = alerts_panel(owner_client.get(reverse("home")).content.decode())

    # Newest first, each under its store's name, linking to that store's alert history.
    assert panel.index("Southwind Supply") < panel.index("Wool socks") < panel.index("Northwind Outfitters")
    assert panel.index("Northwind Outfitters") < panel.index("Linen shirt")
    assert reverse("alert-history", args=[second_store.public_id]) in panel
    assert reverse("alert-history", args=[store.public_id]) in panel
    assert "Acknowledged" in panel
    # The one nobody has acknowledged yet.
    assert re.search(r"data-unacknowledged>1<", panel)
    for hidden in ("Outsider", "Closed Corner", "Gone", "Elsewhere"):
        assert hidden not in panel


def test_the_overview_says_so_when_no_alert_fired(store, second_store, owner_client):
    panel = alerts_panel(owner_client.get(reverse("home")).content.decode())

    assert "No alerts yet" in panel and "data-unacknowledged" not in panel


def test_alert_times_are_in_the_viewers_timezone(store, owner):
    event = fired(store, "Only 2 left of Linen shirt")
    AlertEvent.objects.filter(pk=event.pk).update(fired_at=datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
    AlertPreference.objects.create(user=owner, account=store.account, timezone="Asia/Tokyo")
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)

    tokyo = overview.render_alerts([store], tz=overview.viewer_timezone(owner.pk, store.account_id), oob=False, now=now)
    utc = overview.render_alerts([store], tz="UTC", oob=False, now=now)

    assert ">08:30</time>" in tokyo and "Times in Asia/Tokyo" in tokyo
    assert ">Yesterday 23:30</time>" in utc


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_alert_firing_in_any_store_is_pushed_to_the_overview(store, second_store, owner_client, live_listener):
    await database_sync_to_async(AlertFactory)(
        store=second_store, type=AlertType.HIGH_VALUE_ORDER, config={"threshold": "500.00", "window_minutes": 60}
    )
    await database_sync_to_async(lambda: fired(StoreFactory(name="Outsider Outlet"), "Only 3 left of Outsider hat"))()
    socket = overview_socket(socket_headers(owner_client))
    assert (await socket.connect())[0]
    first = await socket.receive_text()
    assert "No alerts yet" in alerts_panel(first)

    # The worker records a large order placed now; its rule fires.
    await database_sync_to_async(record_order)(store=second_store, data=new_order(9101, "750.00"))
    frame = await socket.receive_text(timeout=5)

    panel = alerts_panel(frame)
    assert 'hx-swap-oob="morph"' in panel
    assert "Southwind Supply" in panel and "High-value order #9101: $750.00" in panel
    assert re.search(r"data-unacknowledged>1<", panel) and "Outsider" not in panel
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_acknowledging_an_alert_updates_the_overviews_count(store, second_store, owner_client, live_listener):
    first_event = await database_sync_to_async(fired)(store, "Only 2 left of Linen shirt", minutes_ago=10)
    await database_sync_to_async(fired)(second_store, "Only 1 left of Wool socks")
    socket = overview_socket(socket_headers(owner_client))
    assert (await socket.connect())[0]
    page = LivePage()
    page.apply(await socket.receive_text())
    assert re.search(r"data-unacknowledged>2<", page.html[ALERTS_ID])

    response = await sync_to_async(owner_client.post)(
        reverse("alert-acknowledge", args=[store.public_id]), {"event": str(first_event.public_id)}
    )
    assert response.status_code == 302
    # The count and the row's state change in place: a patch of the panel.
    assert page.apply(await socket.receive_text(timeout=5)) == {ALERTS_ID}
    panel = alerts_panel(page.html[ALERTS_ID])

    assert re.search(r"data-unacknowledged>1<", panel)
    row = panel[panel.index(f'id="overview-alert-{first_event.public_id}"') :]
    assert 'data-alert-state="acknowledged"' in row[: row.index(">")]
    await socket.disconnect()
