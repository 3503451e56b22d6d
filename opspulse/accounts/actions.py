"""Writes to accounts and memberships."""

from __future__ import annotations

from django.db import transaction

from opspulse.accounts.models import Account, Membership, Role, User


@transaction.atomic
def create_account(*, owner: User, name: str) -> Account:
    """Create an account with `owner` as its first owner."""
    account = Account.objects.create(name=name.strip() or default_account_name(owner))
    Membership.objects.create(account=account, user=owner, role=Role.OWNER)
    return account


def default_account_name(user: User) -> str:
    return f"{user.name or user.email.split('@')[0]}'s shops"
