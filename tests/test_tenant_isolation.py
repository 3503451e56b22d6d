"""Every route is checked: outsiders get 404, members can't do what needs a higher role.

The registries below classify every URL pattern and WebSocket route of OpsPulse. A new
route that is in none of them fails `test_every_route_is_classified`, so it cannot ship
without a decision about who may use it, and the classified ones are then exercised
against a real foreign tenant.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from opspulse.accounts.models import Account, Invitation, Membership, Role, User
from opspulse.live.routing import websocket_urlpatterns
from opspulse.stores.models import Store
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.support.live import dashboard_socket, refusal_code, shared_socket, socket_headers, wallboard_socket
from tests.support.stores import client_for

# Routes that name a tenant object by its public id: (object kind, role needed, method).
TENANT_ROUTES = {
    "dashboard": ("store", Role.MEMBER, "get"),
    "dashboard-panels": ("store", Role.MEMBER, "get"),
    "dashboard-daily": ("store", Role.MEMBER, "get"),
    "store-data-requests": ("store", Role.ADMIN, "get"),
    "store-data-request-download": ("store", Role.ADMIN, "get"),
    "store-settings": ("store", Role.ADMIN, "get"),
    "store-disconnect": ("store", Role.ADMIN, "post"),
    "store-delete": ("store", Role.ADMIN, "post"),
    "store-backfill": ("store", Role.MEMBER, "get"),
    "retry-deliveries": ("store", Role.ADMIN, "post"),
    "alert-rules": ("store", Role.MEMBER, "get"),
    "alert-rule-create": ("store", Role.ADMIN, "get"),
    "alert-rule-edit": ("store", Role.ADMIN, "get"),
    "alert-rule-toggle": ("store", Role.ADMIN, "post"),
    "alert-rule-delete": ("store", Role.ADMIN, "post"),
    "alert-history": ("store", Role.MEMBER, "get"),
    "alert-acknowledge": ("store", Role.MEMBER, "post"),
    "alert-acknowledge-all": ("store", Role.MEMBER, "post"),
    "alert-channels": ("store", Role.ADMIN, "get"),
    "alert-channel-remove": ("store", Role.ADMIN, "post"),
    "alert-account-channel-add": ("account", Role.ADMIN, "post"),
    "alert-account-channel-remove": ("account", Role.ADMIN, "post"),
    "wallboard": ("store", Role.MEMBER, "get"),
    "wallboard-links": ("store", Role.ADMIN, "get"),
    "account-switch": ("account", Role.MEMBER, "post"),
    "account-leave": ("account", Role.MEMBER, "post"),
    "account-invite": ("account", Role.OWNER, "post"),
    "account-rename": ("account", Role.OWNER, "post"),
    "account-delete": ("account", Role.OWNER, "post"),
    "member-role": ("membership", Role.OWNER, "post"),
    "member-remove": ("membership", Role.OWNER, "post"),
    "invitation-resend": ("invitation", Role.OWNER, "post"),
    "invitation-revoke": ("invitation", Role.OWNER, "post"),
}
# Pages of the account the user is working in, which the session names (switching to
# an account is itself a tenant route above): role needed.
CURRENT_ACCOUNT_ROUTES = {
    "account-team": Role.MEMBER,
    "account-audit": Role.OWNER,
    "account-settings": Role.OWNER,
    "alert-preferences": Role.MEMBER,
    "alert-account-channels": Role.ADMIN,
}
# The signed-in user's own things, no tenant data of others: (method, object kind named
# in the URL, if any: found only among the user's own).
USER_ROUTES = {
    "home": ("get", None),
    "account-create": ("get", None),
    "session-end": ("post", None),
    "invitation-join": ("post", "invitation"),
    # Connecting a store needs the admin role on the current account (checked inside).
    "shopify-connect": ("post", None),
    "shopify-install-resume": ("get", None),
    "shopify-callback": ("get", None),
}
# Reachable without a membership, and why that is safe.
PUBLIC_ROUTES = {
    "invitation-accept": "the secret token in the URL is the capability; it adds only its invited address",
    "dev-mailbox": "answers only with DEBUG on (production refuses to start with it) and only to 127.0.0.1 / ::1",
    "shopify-install": "Shopify's signed install request; it only leads to sign-in or to OAuth for the user's account",
    "shared-wallboard": "the secret token in the URL is the capability; read-only, one store's wallboard, no customer data",
}
# Sign-in, two-factor and session pages (django-allauth) act on the signed-in user's own
# sign-in only; the admin is for staff.
LIBRARY_MODULES = ("allauth.", "django.contrib.admin.")
WEBSOCKET_ROUTES = {
    "ws/stores/<uuid:public_id>/": "store",
    "ws/stores/<uuid:public_id>/wallboard/": "store",
    # The current account of the socket's session (checked against its memberships).
    "ws/overview/": "account",
    # Public by token, like the shared-wallboard page.
    "ws/wall/<str:token>/": "token",
}


def all_patterns(resolvers=None, prefix="", namespace=None):
    for entry in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name, namespace, entry.callback


def is_library_route(callback, namespace) -> bool:
    module = getattr(callback, "__module__", "") or ""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        module = view_class.__module__
    return namespace == "admin" or module.startswith(LIBRARY_MODULES)


def test_every_route_is_classified():
    classified = set(TENANT_ROUTES) | set(CURRENT_ACCOUNT_ROUTES) | set(USER_ROUTES) | set(PUBLIC_ROUTES)
    unclassified = [
        (route, name) for route, name, namespace, callback in all_patterns()
        if not is_library_route(callback, namespace) and name not in classified
    ]

    assert unclassified == []
    assert sorted(str(pattern.pattern) for pattern in websocket_urlpatterns) == sorted(WEBSOCKET_ROUTES)


@pytest.fixture
def tenants(db):
    """Alice owns her account with bob as a member; the foreign account is Charlie's."""
    alice = UserFactory(email="alice@example.com")
    bob = UserFactory(email="bob@example.com")
    charlie = UserFactory(email="charlie@example.com")
    dave = UserFactory(email="dave@example.com")
    own = MembershipFactory(user=alice, role=Role.OWNER).account
    MembershipFactory(user=bob, account=own, role=Role.MEMBER)
    foreign = MembershipFactory(user=charlie, role=Role.OWNER).account
    MembershipFactory(user=dave, account=foreign, role=Role.MEMBER)
    objects = {}
    for label, account, member in (("own", own, bob), ("foreign", foreign, dave)):
        objects[label] = {
            "account": account,
            "store": StoreFactory(account=account),
            "membership": Membership.objects.get(account=account, user=member),
            "invitation": Invitation.objects.create(
                account=account, email=f"new-{label}@example.com", role=Role.MEMBER,
                token_hash=uuid.uuid4().hex * 2, expires_at=timezone.now() + timedelta(days=7),
            ),
        }
    return {"alice": alice, "bob": bob, **objects}



def snapshot() -> tuple:
    """What an attempt must leave unchanged."""
    return (
        sorted(Account.objects.values_list("pk", "name")),
        sorted(Membership.objects.values_list("pk", "role")),
        sorted(Invitation.objects.values_list("pk", "revoked_at", "token_hash")),
        sorted(Store.objects.values_list("pk", "disconnected_at", "deleted_at")),
    )


POST_DATA = {"role": Role.ADMIN, "email": "intruder@example.com", "name": "Taken over", "confirm_name": "x"}


@pytest.mark.parametrize("name", sorted(TENANT_ROUTES))
def test_an_outsider_gets_404_on_every_route_of_another_tenant(tenants, name):
    kind, _, method = TENANT_ROUTES[name]
    url = reverse(name, args=[tenants["foreign"][kind].public_id])
    alice = client_for(tenants["alice"])
    before = snapshot()

    get = alice.get(url)
    post = alice.post(url, POST_DATA)

    assert get.status_code in (404, 405)  # a POST-only route refuses a GET before any lookup
    assert post.status_code == 404 if method == "post" else post.status_code in (404, 405)
    if method == "get":
        assert get.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(name for name, (_, kind) in USER_ROUTES.items() if kind))
def test_a_users_own_routes_do_not_find_another_tenants_objects(tenants, name):
    method, kind = USER_ROUTES[name]
    before = snapshot()

    response = getattr(client_for(tenants["alice"]), method)(reverse(name, args=[tenants["foreign"][kind].public_id]))

    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(TENANT_ROUTES))
def test_an_unknown_id_gets_the_same_404(tenants, name):
    kind, _, method = TENANT_ROUTES[name]
    alice = client_for(tenants["alice"])

    response = getattr(alice, method)(reverse(name, args=[uuid.uuid4()]), POST_DATA)

    assert response.status_code == 404


@pytest.mark.parametrize("name", sorted(n for n, (_, role, _) in TENANT_ROUTES.items() if role != Role.MEMBER))
def test_a_member_cannot_do_what_needs_a_higher_role(tenants, name):
    kind, _, method = TENANT_ROUTES[name]
    own = tenants["own"]
    target = own["membership"] if kind == "membership" else own[kind]
    bob = client_for(tenants["bob"])
    before = snapshot()

    response = getattr(bob, method)(reverse(name, args=[target.public_id]), POST_DATA)

    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(n for n, role in CURRENT_ACCOUNT_ROUTES.items() if role != Role.MEMBER))
def test_a_member_cannot_open_owner_pages_of_their_account(tenants, name):
    response = client_for(tenants["bob"]).get(reverse(name))

    assert response.status_code == 403


def test_a_session_cannot_be_pointed_at_a_foreign_account(tenants):
    alice = client_for(tenants["alice"])

    refused = alice.post(reverse("account-switch", args=[tenants["foreign"]["account"].public_id]))
    team = alice.get(reverse("account-team"))

    assert refused.status_code == 404
    assert tenants["foreign"]["account"].name not in team.content.decode()
    assert tenants["own"]["account"].name in team.content.decode()


@pytest.mark.parametrize("name", sorted(set(TENANT_ROUTES) | set(CURRENT_ACCOUNT_ROUTES) | set(USER_ROUTES)))
def test_anonymous_visitors_are_sent_to_sign_in(tenants, name):
    if name in TENANT_ROUTES:
        kind, _, method = TENANT_ROUTES[name]
    else:
        method, kind = USER_ROUTES.get(name, ("get", None))
    args = [tenants["foreign"][kind].public_id] if kind else []

    response = getattr(Client(), method)(reverse(name, args=args))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


async def socket_refusal(store, user: User | None) -> int | None:
    from asgiref.sync import sync_to_async

    client = await sync_to_async(client_for)(user) if user is not None else None
    return await refusal_code(dashboard_socket(store, socket_headers(client)))


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_outsiders_dashboard_socket_is_refused_like_one_for_no_store(tenants):
    foreign_store = tenants["foreign"]["store"]

    outsider = await socket_refusal(foreign_store, tenants["alice"])
    nowhere = await socket_refusal(Store(public_id=uuid.uuid4()), tenants["alice"])
    anonymous = await socket_refusal(foreign_store, None)

    assert outsider == nowhere == anonymous == 4403


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_outsiders_wallboard_socket_is_refused_like_one_for_no_store(tenants):
    from asgiref.sync import sync_to_async

    foreign_store = tenants["foreign"]["store"]
    alice = await sync_to_async(client_for)(tenants["alice"])

    outsider = await refusal_code(wallboard_socket(foreign_store, socket_headers(alice)))
    nowhere = await refusal_code(wallboard_socket(Store(public_id=uuid.uuid4()), socket_headers(alice)))
    anonymous = await refusal_code(wallboard_socket(foreign_store, socket_headers()))

    assert outsider == nowhere == anonymous == 4403


def test_a_wrong_or_revoked_wallboard_token_gets_404(tenants):
    from opspulse.live import share

    link, token = share.create_wallboard_link(store=tenants["own"]["store"], created_by=tenants["alice"])
    share.revoke_wallboard_link(link=link, revoked_by=tenants["alice"])

    revoked = Client().get(reverse("shared-wallboard", args=[token]))
    wrong = Client().get(reverse("shared-wallboard", args=["not-a-token"]))

    assert revoked.status_code == wrong.status_code == 404


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_wrong_or_revoked_wallboard_token_gets_a_closed_socket(tenants):
    from asgiref.sync import sync_to_async

    from opspulse.live import share

    link, token = await sync_to_async(share.create_wallboard_link)(
        store=tenants["own"]["store"], created_by=tenants["alice"]
    )
    await sync_to_async(share.revoke_wallboard_link)(link=link, revoked_by=tenants["alice"])

    assert await refusal_code(shared_socket(token)) == 4404
    assert await refusal_code(shared_socket("not-a-token")) == 4404
