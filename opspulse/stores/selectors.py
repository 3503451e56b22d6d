"""Reads of stores scoped to what a user may see: every store lookup for a user goes through here."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404

from opspulse.accounts.models import Membership, Role, role_at_least
from opspulse.stores.models import Store


def stores_for_user(user) -> QuerySet[Store]:
    """Return the stores of every account `user` is a member of, by account then name.

    A deleted store is gone at once, while its rows are still being removed.
    """
    if not user.is_authenticated:
        return Store.objects.none()
    return (
        Store.objects.filter(account__memberships__user=user, deleted_at__isnull=True)
        .select_related("account")
        .order_by("account__name", "account_id", "name")
    )


def get_store_for_user(user, public_id: UUID | str) -> Store:
    """Return the store with `public_id` if `user` belongs to its account, else raise Http404.

    Outsiders get 404, not 403, so a store's existence is not revealed.
    """
    try:
        return stores_for_user(user).get(public_id=public_id)
    except (Store.DoesNotExist, ValidationError):
        raise Http404("No such store") from None


def get_store_for_admin(user, public_id: UUID | str, *, denied: str = "This needs the admin role") -> Store:
    """Return the store for its account's admins and owners: Http404 for outsiders,
    PermissionDenied (saying `denied`) for members."""
    store = get_store_for_user(user, public_id)
    if not user_can_manage_store(user, store):
        raise PermissionDenied(denied)
    return store


def user_can_manage_store(user, store: Store) -> bool:
    """Whether `user` may connect, reconnect and configure `store` (admin or owner)."""
    role = Membership.objects.filter(user=user, account_id=store.account_id).values_list("role", flat=True).first()
    return role is not None and role_at_least(role, Role.ADMIN)


def member_store_pairs(pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of the (user id, store id) pairs, those where the user belongs to the store's account.

    The same scope as `stores_for_user`, for many users at once (open dashboards re-check it).
    """
    pairs = set(pairs)
    if not pairs:
        return set()
    account_of = dict(
        Store.objects.filter(pk__in={store_id for _, store_id in pairs}, deleted_at__isnull=True).values_list(
            "pk", "account_id"
        )
    )
    members = set(
        Membership.objects.filter(
            user_id__in={user_id for user_id, _ in pairs}, account_id__in=set(account_of.values())
        ).values_list("user_id", "account_id")
    )
    return {(user_id, store_id) for user_id, store_id in pairs if (user_id, account_of.get(store_id)) in members}
