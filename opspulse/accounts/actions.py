"""Writes to accounts, memberships and invitations.

Team changes lock the account's memberships first (lock_objects), so rules that read
the whole team, such as "an account keeps at least one owner", hold under concurrent
changes. Each change writes an audit event; mails and the re-check of open
dashboards happen after commit.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.emails import send_invitation
from opspulse.accounts.lock_objects import account_memberships_for_update, invitation_for_update
from opspulse.accounts.models import (
    INVITATION_LIFETIME,
    Account,
    AuditKind,
    Invitation,
    Membership,
    Role,
    User,
    hash_invitation_token,
)
from opspulse.accounts.selectors import has_confirmed_email, invitation_for_token
from opspulse.lib.broadcast import recheck_user_access

INVITABLE_ROLES = (Role.ADMIN, Role.MEMBER)


class TeamError(Exception):
    """A refused team change; the message is meant for the person who asked for it."""


class LastOwnerError(TeamError):
    pass


class InvitationError(TeamError):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


INVITATION_PROBLEMS = {
    "missing": "This invitation link is not valid. Check that you copied the whole link from the mail.",
    "expired": "This invitation has expired. Ask the account owner to send you a new one.",
    "revoked": "This invitation was withdrawn by the account owner.",
    "accepted": "This invitation has already been used.",
}


@transaction.atomic
def create_account(*, owner: User, name: str) -> Account:
    """Create an account with `owner` as its first owner."""
    account = Account.objects.create(name=name.strip() or default_account_name(owner))
    Membership.objects.create(account=account, user=owner, role=Role.OWNER)
    return account


def default_account_name(user: User) -> str:
    return f"{user.name or user.email.split('@')[0]}'s shops"


@transaction.atomic
def rename_account(*, account: Account, name: str, actor: User, request: HttpRequest | None = None) -> Account:
    name = name.strip()
    if not name:
        raise TeamError("The account needs a name.")
    _require_owner(account_memberships_for_update(account), actor)
    old = account.name
    if name != old:
        Account.objects.filter(pk=account.pk).update(name=name)
        account.name = name
        record_event(AuditKind.ACCOUNT_RENAMED, user=actor, request=request, account=account, **{"from": old, "to": name})
    return account


@transaction.atomic
def delete_account(*, account: Account, actor: User, request: HttpRequest | None = None) -> None:
    """Delete the account with its stores, their data, memberships and invitations."""
    memberships = account_memberships_for_update(account)
    _require_owner(memberships, actor)
    name = account.name
    account.delete()
    # Recorded without the account (its own events went with it): it shows in the
    # owner's other accounts, like their sign-ins.
    record_event(AuditKind.ACCOUNT_DELETED, user=actor, request=request, account_name=name)
    for membership in memberships:
        _recheck_on_commit(membership.user_id)


# Invitations


@transaction.atomic
def invite_member(
    *, account: Account, email: str, role: Role | str, invited_by: User, request: HttpRequest
) -> Invitation:
    """Invite `email` to the account and mail the link, after commit.

    Inviting an address with an open invitation renews that one (new link, role and
    expiry) instead of adding a second.
    """
    email = email.strip().lower()
    if role not in INVITABLE_ROLES:
        raise TeamError("Invite as an admin or a member; promote to owner after they join.")
    memberships = account_memberships_for_update(account)
    _require_owner(memberships, invited_by)
    if any(m.user.email.lower() == email for m in memberships):
        raise TeamError(f"{email} is already a member of {account.name}.")
    invitation = (
        Invitation.objects.open().select_for_update().filter(account=account, email__iexact=email).first()
        or Invitation(account=account, email=email)
    )
    invitation.role = role
    invitation.invited_by = invited_by
    invitation.created_at = timezone.now()
    token = _new_token(invitation, now=invitation.created_at)
    invitation.save()
    record_event(AuditKind.MEMBER_INVITED, user=None, request=request, actor=invited_by, account=account, email=email, role=role)
    _send_on_commit(invitation, token, request)
    return invitation


@transaction.atomic
def resend_invitation(*, invitation: Invitation, actor: User, request: HttpRequest) -> Invitation:
    """Mail an open invitation again, with a new link (the old one stops working) and expiry."""
    _require_owner(account_memberships_for_update(invitation.account), actor)
    invitation = invitation_for_update(invitation)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise TeamError(f"The invitation for {invitation.email} is no longer open.")
    token = _new_token(invitation, now=timezone.now())
    invitation.save(update_fields=["token_hash", "expires_at"])
    record_event(
        AuditKind.MEMBER_INVITED, user=None, request=request, actor=actor, account=invitation.account,
        email=invitation.email, role=invitation.role, resent=True,
    )
    _send_on_commit(invitation, token, request)
    return invitation


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, actor: User, request: HttpRequest | None = None) -> Invitation:
    _require_owner(account_memberships_for_update(invitation.account), actor)
    invitation = invitation_for_update(invitation)
    if invitation.accepted_at is not None:
        raise TeamError(f"{invitation.email} has already joined; remove them from the team instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        record_event(
            AuditKind.INVITATION_REVOKED, user=None, request=request, actor=actor, account=invitation.account,
            email=invitation.email, role=invitation.role,
        )
    return invitation


@transaction.atomic
def accept_invitation(*, token: str, user: User, request: HttpRequest | None = None) -> Membership:
    """Make `user` a member with the invitation's role, if the invitation was sent to one
    of their confirmed addresses and is still open. Raise InvitationError otherwise."""
    found = invitation_for_token(token)
    if found is None:
        raise InvitationError(INVITATION_PROBLEMS["missing"], reason="missing")
    return join_by_invitation(invitation=found, user=user, request=request)


@transaction.atomic
def join_by_invitation(*, invitation: Invitation, user: User, request: HttpRequest | None = None) -> Membership:
    """Accept `invitation` for `user`, whether they came by the mailed link or found it
    listed for their confirmed address after signing up. Raise InvitationError if it is
    no longer open or not addressed to them."""
    invitation = invitation_for_update(invitation)
    if invitation.state == "accepted" and invitation.accepted_by_id == user.pk:
        # A second click on the link by the member it made: nothing to do.
        joined = Membership.objects.select_related("account").filter(account=invitation.account, user=user).first()
        if joined is not None:
            return joined
    if invitation.state != "pending":
        raise InvitationError(INVITATION_PROBLEMS[invitation.state], reason=invitation.state)
    if not has_confirmed_email(user, invitation.email):
        raise InvitationError(
            f"This invitation was sent to {invitation.email}. Sign in with that address, or add and confirm it"
            " in your email settings, to accept it.",
            reason="wrong_user",
        )
    account = invitation.account
    memberships = account_memberships_for_update(account)
    membership = next((m for m in memberships if m.user_id == user.pk), None)
    if membership is None:
        membership = Membership.objects.create(account=account, user=user, role=invitation.role)
        record_event(
            AuditKind.MEMBER_JOINED, user=user, request=request, account=account, role=invitation.role,
            invited_by=getattr(invitation.invited_by, "email", None),
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


# Members


@transaction.atomic
def change_role(*, membership: Membership, role: Role | str, actor: User, request: HttpRequest | None = None) -> Membership:
    """Give the member `role`. Refused when it would leave the account without an owner."""
    if role not in Role.values:
        raise TeamError("Unknown role.")
    memberships = account_memberships_for_update(membership.account)
    _require_owner(memberships, actor)
    current = _locked(memberships, membership)
    if current.role == role:
        return current
    if current.role == Role.OWNER:
        _refuse_last_owner(memberships, current, f"{current.user.email} is the last owner. Make someone else an owner first.")
    old = current.role
    current.role = role
    current.save(update_fields=["role"])
    record_event(
        AuditKind.ROLE_CHANGED, user=current.user, request=request, actor=actor, account=current.account,
        **{"from": old, "to": role},
    )
    _recheck_on_commit(current.user_id)
    return current


@transaction.atomic
def remove_member(*, membership: Membership, actor: User, request: HttpRequest | None = None) -> None:
    """Remove a member; their open dashboards of the account's stores close within seconds."""
    memberships = account_memberships_for_update(membership.account)
    _require_owner(memberships, actor)
    current = _locked(memberships, membership)
    if current.role == Role.OWNER:
        _refuse_last_owner(memberships, current, f"{current.user.email} is the last owner and cannot be removed.")
    current.delete()
    record_event(
        AuditKind.MEMBER_LEFT if current.user_id == actor.pk else AuditKind.MEMBER_REMOVED,
        user=current.user, request=request, actor=actor, account=current.account, role=current.role,
    )
    _recheck_on_commit(current.user_id)


@transaction.atomic
def leave_account(*, account: Account, user: User, request: HttpRequest | None = None) -> None:
    """Leave the account; refused for its last owner."""
    memberships = account_memberships_for_update(account)
    current = next((m for m in memberships if m.user_id == user.pk), None)
    if current is None:
        raise TeamError(f"You are not a member of {account.name}.")
    if current.role == Role.OWNER:
        _refuse_last_owner(
            memberships, current,
            f"You are the last owner of {account.name}. Make someone else an owner first, or delete the account.",
        )
    current.delete()
    record_event(AuditKind.MEMBER_LEFT, user=user, request=request, account=account, role=current.role)
    _recheck_on_commit(user.pk)


def _locked(memberships: list[Membership], membership: Membership) -> Membership:
    current = next((m for m in memberships if m.pk == membership.pk), None)
    if current is None:
        raise TeamError(f"{membership.user.email} is no longer a member.")
    return current


def _require_owner(memberships: list[Membership], actor: User) -> None:
    # The view checked the role; this sees it under the lock, after any concurrent demotion.
    if not any(m.user_id == actor.pk and m.role == Role.OWNER for m in memberships):
        raise TeamError("Only an owner of the account can do that.")


def _refuse_last_owner(memberships: list[Membership], owner: Membership, message: str) -> None:
    if not any(m.role == Role.OWNER and m.pk != owner.pk for m in memberships):
        raise LastOwnerError(message)


def _new_token(invitation: Invitation, *, now) -> str:
    """Give the invitation a new token and expiry; return the token, which is stored only hashed."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_invitation_token(token)
    invitation.expires_at = now + INVITATION_LIFETIME
    return token


def _send_on_commit(invitation: Invitation, token: str, request: HttpRequest) -> None:
    accept_url = request.build_absolute_uri(reverse("invitation-accept", args=[token]))
    # robust: a mail server failure leaves the invitation open, for the owner to resend.
    transaction.on_commit(lambda: send_invitation(invitation, accept_url=accept_url), robust=True)


def _recheck_on_commit(user_id: int) -> None:
    # robust: the change is committed either way; the periodic re-check is the backstop.
    transaction.on_commit(lambda: recheck_user_access(user_id), robust=True)
