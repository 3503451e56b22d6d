from __future__ import annotations

import asyncio
import html as html_lib
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.urls import reverse

from config.asgi import application
from opspulse.accounts.models import Membership
from opspulse.commerce.actions import record_order
from opspulse.lib.broadcast import close_session_sockets
from opspulse.live import frames
from opspulse.live import hub as hubs_module
from opspulse.live import listener
from opspulse.live.access import AccessWatch
from opspulse.live.consumers import HEARTBEAT, PAGE_CURRENT
from opspulse.live.hub import hubs
from opspulse.live.panels import KPI_AOV, KPI_REVENUE, ORDER_FEED, PANEL_IDS, REVENUE_CHART
from tests.factories import OrderFactory
from tests.support.live import (
    LivePage,
    connect_and_read_panels,
    dashboard_socket,
    new_order,
    receive_until,
    refusal_code,
    socket_headers,
)
from tests.support.websocket import WebsocketClient

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def announce(store, messages: list[dict]) -> None:
    """Hand live messages to the process's dashboards as the listener does with a NOTIFY."""
    listener.dispatch(json.dumps({"store": str(store.public_id), "messages": messages}))


async def test_member_receives_every_panel_on_connect(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client))

    html = await connect_and_read_panels(socket)

    for panel_id in PANEL_IDS:
        assert f'id="{panel_id}" hx-swap-oob="morph"' in html
    assert "No orders yet today" in html
    await socket.disconnect()


async def test_outsider_is_refused_with_4403(store, outsider_client):
    socket = dashboard_socket(store, socket_headers(outsider_client))

    assert await refusal_code(socket) == 4403


async def test_anonymous_socket_is_refused_with_4403(store):
    socket = dashboard_socket(store, socket_headers())

    assert await refusal_code(socket) == 4403


async def test_foreign_origin_is_rejected_before_the_consumer(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client, origin=b"https://evil.example"))

    connected, _ = await socket.connect()

    assert not connected


async def test_new_order_message_pushes_the_order_to_the_feed(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)
    await database_sync_to_async(OrderFactory)(store=store, number="#4242", customer_first_name="Maya")

    announce(store, [{"type": "new_order", "number": "#4242"}])
    html = await socket.receive_text()

    assert 'id="order-feed" hx-swap-oob="morph"' in html
    assert 'data-order-number="#4242"' in html
    assert "Maya" in html
    await socket.disconnect()


async def test_burst_of_messages_is_sent_as_one_frame(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)
    numbers = ["#5001", "#5002", "#5003"]

    for number in numbers:
        await database_sync_to_async(OrderFactory)(store=store, number=number)
        announce(store, [{"type": "new_order", "number": number}])
    html = await socket.receive_text()
    if not all(f'data-order-number="{n}"' in html for n in numbers):
        # The first render may have started before the last order was written.
        html = await socket.receive_text()

    assert all(f'data-order-number="{n}"' in html for n in numbers)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_unchanged_panels_are_not_sent_again(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    announce(store, [{"type": "inventory_update", "item": "1"}])

    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_resync_sends_every_panel_again(store, owner_client):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    hubs().resync_all()  # what the listener does after it reconnects
    html = await socket.receive_text(timeout=5)

    for panel_id in PANEL_IDS:
        assert f'id="{panel_id}"' in html
    await socket.disconnect()


async def test_session_force_close_closes_the_socket_with_4401(store, owner_client, live_listener):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    # A sign-out in any web process: a NOTIFY that every process's listener receives.
    await database_sync_to_async(close_session_sockets)(owner_client.cookies["sessionid"].value)

    assert await socket.receive_close_code() == 4401


async def test_signing_out_closes_the_sessions_dashboards(store, owner_client, live_listener):
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    response = await sync_to_async(owner_client.post)(reverse("account_logout"))

    assert response.status_code == 302
    assert await socket.receive_close_code() == 4401


async def test_removed_member_is_disconnected_at_the_next_check(store, owner, owner_client, monkeypatch):
    monkeypatch.setattr(AccessWatch, "period_seconds", 0.3)
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    await database_sync_to_async(Membership.objects.filter(user=owner).delete)()

    assert await socket.receive_text() == HEARTBEAT
    assert await socket.receive_close_code() == 4403


async def test_heartbeat_is_sent_while_idle(store, owner_client, monkeypatch):
    monkeypatch.setattr(AccessWatch, "period_seconds", 0.3)
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    assert await socket.receive_text() == HEARTBEAT
    await socket.disconnect()


async def test_ended_session_is_disconnected_at_the_next_check(store, owner_client, monkeypatch):
    monkeypatch.setattr(AccessWatch, "period_seconds", 0.3)
    socket = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(socket)

    await database_sync_to_async(Session.objects.filter(session_key=owner_client.session.session_key).delete)()

    assert await socket.receive_text() == HEARTBEAT
    assert await socket.receive_close_code() == 4401


@pytest.fixture
def no_clock_refresh(monkeypatch):
    """Tests that count the hub's reads: its periodic clock refresh, which first comes at
    a random moment within 30 s of the hub opening, must not land inside them."""
    monkeypatch.setattr(hubs_module.StoreHub, "clock_seconds", 1e9)


async def test_dashboards_of_a_store_share_one_render_per_update(store, owner_client, no_clock_refresh):
    sockets = [dashboard_socket(store, socket_headers(owner_client)) for _ in range(5)]
    for socket in sockets:
        await connect_and_read_panels(socket)
    hub = hubs().hubs[store.pk]
    renders_before = hub.renders
    await database_sync_to_async(OrderFactory)(store=store, number="#7007")

    announce(store, [{"type": "new_order", "number": "#7007"}])

    for socket in sockets:
        assert 'data-order-number="#7007"' in await socket.receive_text()
    assert hub.renders == renders_before + 1
    for socket in sockets:
        await socket.disconnect()
    assert store.pk not in hubs().hubs


async def test_new_orders_are_shown_from_their_messages_without_reading_the_database(store, owner_client, live_listener, no_clock_refresh):
    socket = dashboard_socket(store, socket_headers(owner_client))
    page = LivePage()
    page.apply(await connect_and_read_panels(socket))
    hub = hubs().hubs[store.pk]
    reads_before = hub.renders

    # The worker writes the day's first order and commits; its NOTIFY reaches the hub.
    await database_sync_to_async(record_order)(store=store, data=new_order(8001, "40.00"))
    first = await socket.receive_text(timeout=5)
    first_changed = page.apply(first)
    await database_sync_to_async(record_order)(store=store, data=new_order(8002, "60.00"))
    second = await socket.receive_text(timeout=5)
    second_changed = page.apply(second)

    # The first replaces the feed's empty state; the second is one row on top of it.
    assert 'id="order-feed" hx-swap-oob="morph"' in first and 'data-order-number="#8001"' in first
    assert 'id="order-feed-today" hx-swap-oob="afterbegin"' in second
    assert 'data-order-number="#8002"' in second and "Ines" in second and "Porto" in second
    assert 'id="order-feed"' not in second and "#8001" not in second
    # The KPIs follow the buckets' values carried in the message, as patches of their text.
    assert second.startswith('{"patch":') and 'id="kpi-aov"' not in second
    assert {KPI_REVENUE, KPI_AOV} <= second_changed
    assert "$100.00" in page.text(KPI_REVENUE) and "$50.00" in page.text(KPI_AOV)
    # The chart came with the first order; its next point follows within two seconds.
    assert REVENUE_CHART in first_changed and REVENUE_CHART not in second_changed
    chart = await socket.receive_text(timeout=3)
    assert page.apply(chart) == {REVENUE_CHART} and "$100.00" in page.text(REVENUE_CHART)
    today = json.loads(page.attribute(REVENUE_CHART, "data-chart"))["today"]
    assert max(value for value in today if value is not None) == 100.0
    assert len(chart) < 1000
    assert hub.renders == reads_before
    await socket.disconnect()


async def test_a_dashboard_joining_a_store_on_screen_gets_every_panel_without_a_read(store, owner_client, live_listener, no_clock_refresh):
    first = dashboard_socket(store, socket_headers(owner_client))
    await connect_and_read_panels(first)
    await database_sync_to_async(record_order)(store=store, data=new_order(8101, "40.00"))
    await first.receive_text(timeout=5)
    await database_sync_to_async(record_order)(store=store, data=new_order(8102, "10.00"))
    assert 'id="order-feed-today" hx-swap-oob="afterbegin"' in await first.receive_text(timeout=5)
    hub = hubs().hubs[store.pk]
    reads_before = hub.renders

    second = dashboard_socket(store, socket_headers(owner_client))
    html = await connect_and_read_panels(second)

    for panel_id in PANEL_IDS:
        assert f'id="{panel_id}" hx-swap-oob="morph"' in html
    # The feed as the first page shows it after its rows, and the KPIs' latest values.
    assert html.index('data-order-number="#8102"') < html.index('data-order-number="#8101"')
    assert "$50.00" in html
    assert hub.renders == reads_before
    await first.disconnect()
    await second.disconnect()


async def open_dashboard_page(store, client) -> WebsocketClient:
    """Load the dashboard page as a browser does, and the socket its page opens."""
    response = await sync_to_async(client.get)(reverse("dashboard", args=[store.public_id]))
    path = re.search(r'ws-connect="([^"]+)"', response.content.decode()).group(1)
    return WebsocketClient(application, html_lib.unescape(path), socket_headers(client))


async def test_a_socket_opened_right_after_its_page_is_told_the_page_is_current(store, owner_client, live_listener, small_clock_skew, no_clock_refresh):
    await asyncio.sleep(0.05)
    socket = await open_dashboard_page(store, owner_client)

    assert await connect_and_read_panels(socket) == PAGE_CURRENT
    hub = hubs().hubs[store.pk]
    assert hub.renders == 0
    # The page then follows the store as any other.
    await database_sync_to_async(record_order)(store=store, data=new_order(8201, "75.00"))
    html = await socket.receive_text(timeout=5)
    assert 'data-order-number="#8201"' in html and "$75.00" in html
    await socket.disconnect()


async def test_a_page_that_missed_a_change_gets_every_panel(store, owner_client, live_listener, small_clock_skew):
    await asyncio.sleep(0.05)
    socket = await open_dashboard_page(store, owner_client)
    # An order is processed between the page's render and its socket.
    await database_sync_to_async(record_order)(store=store, data=new_order(8301, "20.00"))
    for _ in range(100):
        if str(store.public_id) in listener.last_message_at:
            break
        await asyncio.sleep(0.02)

    html = await connect_and_read_panels(socket)

    for panel_id in PANEL_IDS:
        assert f'id="{panel_id}" hx-swap-oob="morph"' in html
    assert 'data-order-number="#8301"' in html
    await socket.disconnect()


@pytest.mark.parametrize("age", [listener.PAGE_CURRENT_SECONDS + 5, -60])
async def test_a_page_from_another_time_gets_every_panel(store, owner_client, live_listener, small_clock_skew, age):
    await asyncio.sleep(0.05)
    socket = WebsocketClient(
        application, f"/ws/stores/{store.public_id}/?rendered_at={time.time() - age:.3f}", socket_headers(owner_client))

    html = await connect_and_read_panels(socket)

    for panel_id in PANEL_IDS:
        assert f'id="{panel_id}" hx-swap-oob="morph"' in html
    await socket.disconnect()


async def test_without_its_listener_a_process_cannot_tell_and_sends_every_panel(store, owner_client):
    socket = await open_dashboard_page(store, owner_client)

    html = await connect_and_read_panels(socket)

    assert f'id="{ORDER_FEED}" hx-swap-oob="morph"' in html
    await socket.disconnect()


async def test_dashboards_showing_the_same_panels_get_one_frame_built_once(store, owner_client, live_listener, no_clock_refresh, monkeypatch):
    sockets = [dashboard_socket(store, socket_headers(owner_client)) for _ in range(4)]
    for socket in sockets:
        await connect_and_read_panels(socket)
    built = []
    build_frame = frames.build_frame
    monkeypatch.setattr(frames, "build_frame", lambda *args: built.append(args) or build_frame(*args))

    await database_sync_to_async(record_order)(store=store, data=new_order(8601, "40.00"))
    await database_sync_to_async(record_order)(store=store, data=new_order(8602, "60.00"))
    received = [await receive_until(socket, 'data-order-number="#8602"') for socket in sockets]

    assert len(set(received)) == 1
    assert 0 < len(built) <= 2  # one per frame, not one per dashboard
    for socket in sockets:
        await socket.disconnect()


async def test_a_page_that_could_not_apply_a_patch_gets_those_panels_whole(store, owner_client, live_listener, no_clock_refresh):
    socket = dashboard_socket(store, socket_headers(owner_client))
    page = LivePage()
    page.apply(await connect_and_read_panels(socket))
    await database_sync_to_async(record_order)(store=store, data=new_order(8701, "40.00"))
    page.apply(await socket.receive_text(timeout=5))

    await socket.send_text(json.dumps({"resync": [KPI_REVENUE, KPI_AOV, "not-a-panel"]}))
    frame = await socket.receive_text(timeout=5)

    assert page.apply(frame) == {KPI_REVENUE, KPI_AOV}
    assert not frame.startswith("{") and f'id="{KPI_REVENUE}" hx-swap-oob="morph"' in frame
    # Later changes are patches of the panels as sent whole.
    await database_sync_to_async(record_order)(store=store, data=new_order(8702, "60.00"))
    while "$100.00" not in page.text(KPI_REVENUE):
        page.apply(await socket.receive_text(timeout=5))
    assert "$50.00" in page.text(KPI_AOV)
    await socket.disconnect()
