"""A password change or an ended session closes the affected open dashboards at once."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from tests.support.live import connect_and_read_panels, dashboard_socket, refusal_code, socket_headers

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "quiet meadow copper lantern"


def signed_in_with_password(email: str, user_agent: str) -> Client:
    client = Client(HTTP_USER_AGENT=user_agent)
    response = client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


async def test_changing_the_password_closes_the_dashboards_of_the_other_sessions(store, owner, live_listener):  # noqa: F811
    desk = await sync_to_async(signed_in_with_password)(owner.email, "Firefox/140 (desk)")
    wallboard = await sync_to_async(signed_in_with_password)(owner.email, "Chromium/156 (wallboard)")
    desk_socket = dashboard_socket(store, socket_headers(desk))
    wallboard_socket = dashboard_socket(store, socket_headers(wallboard))
    await connect_and_read_panels(desk_socket)
    await connect_and_read_panels(wallboard_socket)

    response = await sync_to_async(desk.post)(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert await wallboard_socket.receive_close_code(timeout=3) == 4401
    # The desk's session continues under a new key (sockets opened under the old key
    # end too, and the page reconnects with the new cookie).
    assert await desk_socket.receive_close_code(timeout=3) == 4401
    reconnected = dashboard_socket(store, socket_headers(desk))
    await connect_and_read_panels(reconnected)
    assert await refusal_code(dashboard_socket(store, socket_headers(wallboard))) == 4403
    await reconnected.disconnect()


async def test_ending_a_session_closes_its_dashboards(store, owner, live_listener):  # noqa: F811
    desk = await sync_to_async(signed_in_with_password)(owner.email, "Firefox/140 (desk)")
    lost_phone = await sync_to_async(signed_in_with_password)(owner.email, "Safari/605 (phone)")
    phone_socket = dashboard_socket(store, socket_headers(lost_phone))
    await connect_and_read_panels(phone_socket)

    # "Sign out other sessions" on the sessions page.
    response = await sync_to_async(desk.post)(reverse("usersessions_list"))

    assert response.status_code == 302
    assert await phone_socket.receive_close_code(timeout=3) == 4401
