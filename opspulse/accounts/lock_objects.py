"""Row locks for account writes, always taken in the same order (by primary key)."""

from __future__ import annotations

from opspulse.accounts.models import Account, Invitation, Membership


def account_memberships_for_update(account: Account) -> list[Membership]:
    """Lock every membership of `account` until the transaction ends.

    Checks such as "at least one owner remains" read all of them, so two concurrent
    changes to the same team run one after the other and the second sees the first.
    """
    return list(Membership.objects.select_for_update().filter(account=account).select_related("user").order_by("pk"))


def invitation_for_update(invitation: Invitation) -> Invitation:
    return Invitation.objects.select_for_update(of=("self",)).select_related("account").get(pk=invitation.pk)
