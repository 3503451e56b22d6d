from __future__ import annotations

import asyncio
import html
import re
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.urls import reverse

from config.asgi import application
from opspulse.accounts import actions as account_actions
from opspulse.accounts.models import Role
from opspulse.commerce.actions import record_order
from opspulse.live import overview
from opspulse.live.consumers import PAGE_CURRENT
from opspulse.live.panels import tile_id
from opspulse.metrics import selectors as metric_selectors
from opspulse.metrics.models import Granularity, MetricName
from tests.factories import (
    MembershipFactory,
    MetricFactory,
    OrderFactory,
    StoreFactory,
    UserFactory,
)
from tests.support.live import LivePage, new_order, overview_socket, socket_headers
from tests.support.stores import client_for
from tests.support.websocket import WebsocketClient


def revenue_today(store, value: str, orders: int) -> None:
    day = metric_selectors.local_day(store)
    MetricFactory(store=store, name=MetricName.REVENUE, granularity=Granularity.DAY, timestamp=day.start, value=Decimal(value))
    MetricFactory(store=store, name=MetricName.ORDERS, granularity=Granularity.DAY, timestamp=day.start, value=orders)


@pytest.fixture
def second_store(store):
    return StoreFactory(account=store.account, name="Southwind Supply", currency="EUR", timezone="Europe/Berlin")


def test_the_overview_shows_a_tile_per_store_and_one_total_per_currency(store, second_store, owner_client):
    third = StoreFactory(account=store.account, name="Eastwind Goods", currency="USD")
    revenue_today(store, "100.00", 2)
    revenue_today(third, "50.00", 1)
    revenue_today(second_store, "70.00", 1)

    page = owner_client.get(reverse("home")).content.decode()

    for each in (store, second_store, third):
        assert f'id="store-tile-{each.public_id}"' in page
        assert reverse("dashboard", args=[each.public_id]) in page
    assert "$100.00" in page and "€70.00" in page and "$50.00" in page
    # Summed per currency, never converted into one figure.
    assert 'data-currency-total="USD"' in page and "$150.00" in page and "3 orders" in page
    assert 'data-currency-total="EUR"' in page and "1 order<" in page
    assert 'data-websocket-path="/ws/overview/?rendered_at=' in page


def test_a_tile_compares_with_yesterday_at_the_same_time(store):
    revenue_today(store, "120.00", 3)
    day = metric_selectors.local_day(store)
    OrderFactory(store=store, total=Decimal("100.00"), placed_at=day.yesterday_start + day.elapsed / 2)

    html = overview.render_overview([store], oob=False)[tile_id(store)]

    assert "+20% vs yesterday" in html and "$40.00" in html and "Not connected" in html


def test_an_account_without_stores_is_asked_to_connect_one(db):
    owner = MembershipFactory(user=UserFactory()).user

    page = client_for(owner).get(reverse("home")).content.decode()

    assert "No stores yet" in page and "Connect a Shopify store" in page
    assert "/ws/overview/" not in page


def test_the_store_switcher_lists_the_accounts_stores_and_marks_the_current_one(store, second_store, owner_client, outsider):
    page = owner_client.get(reverse("dashboard", args=[store.public_id])).content.decode()
    switcher = page[page.index('<nav aria-label="Stores"') : page.index("</nav>")]
    links = {match[1]: match[0] for match in re.findall(r'(<a [^>]*data-store-switch="([^"]+)"[^>]*>)', switcher)}

    assert set(links) == {str(store.public_id), str(second_store.public_id)}
    assert 'aria-current="page"' in links[str(store.public_id)]
    assert 'aria-current="page"' not in links[str(second_store.public_id)]
    assert "Current" in switcher and outsider.email not in switcher


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_the_overview_socket_pushes_only_the_tile_that_changed(store, second_store, owner_client, live_listener):
    socket = overview_socket(socket_headers(owner_client))
    assert (await socket.connect())[0]
    first = await socket.receive_text()
    assert f'id="store-tile-{store.public_id}" hx-swap-oob="morph"' in first
    assert f'id="store-tile-{second_store.public_id}" hx-swap-oob="morph"' in first

    page = LivePage()
    page.apply(first)
    await database_sync_to_async(record_order)(store=store, data=new_order(8401, "40.00"))
    changed = page.apply(await socket.receive_text(timeout=5))

    assert changed == {f"store-tile-{store.public_id}", "overview-totals"}
    assert "$40.00" in page.text(f"store-tile-{store.public_id}")
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_overview_socket_opened_right_after_its_page_is_told_the_page_is_current(
        store, second_store, owner_client, live_listener, small_clock_skew):
    await database_sync_to_async(revenue_today)(second_store, "70.00", 1)
    await asyncio.sleep(0.05)
    page = (await sync_to_async(owner_client.get)(reverse("home"))).content.decode()
    path = html.unescape(re.search(r'data-websocket-path="([^"]+)"', page).group(1))
    socket = WebsocketClient(application, path, socket_headers(owner_client))
    assert (await socket.connect())[0]

    assert await socket.receive_text() == PAGE_CURRENT
    await database_sync_to_async(record_order)(store=store, data=new_order(8501, "40.00"))
    frame = await socket.receive_text(timeout=5)

    # The totals still count every store, though the socket had read none of them.
    assert f'id="store-tile-{store.public_id}"' in frame and "$40.00" in frame
    assert 'id="overview-totals"' in frame and "€70.00" in frame
    await socket.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_the_overview_socket(store, owner_client, live_listener):
    socket = overview_socket(socket_headers(owner_client))
    assert (await socket.connect())[0]
    await socket.receive_text()

    await sync_to_async(owner_client.post)(reverse("account_logout"))

    assert await socket.receive_close_code() == 4401


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_leaving_the_account_closes_the_overview_socket(store, live_listener):
    member = await database_sync_to_async(
        lambda: MembershipFactory(account=store.account, user=UserFactory(), role=Role.MEMBER)
    )()
    client = await sync_to_async(client_for)(member.user)
    socket = overview_socket(socket_headers(client))
    assert (await socket.connect())[0]
    await socket.receive_text()

    await database_sync_to_async(account_actions.leave_account)(account=store.account, user=member.user)

    assert await socket.receive_close_code(timeout=5) == 4403


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_overview_socket_is_refused(store):
    socket = overview_socket(socket_headers())

    connected, code = await socket.connect()
    if connected:
        code = await socket.receive_close_code()

    assert code == 4403
