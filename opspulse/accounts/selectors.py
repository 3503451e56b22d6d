"""Reads scoped to what a user may see: every account lookup for a user goes through here
(a store lookup goes through opspulse.stores.selectors)."""

from __future__ import annotations

from uuid import UUID

from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest
from django.utils import timezone

from opspulse.accounts.models import (
    ROLE_RANK,
    Account,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    hash_invitation_token,
    role_at_least,
)
from opspulse.lib.broadcast import session_hash

# Accounts and roles. Every view that acts on an account or its team looks it up here.

CURRENT_ACCOUNT_SESSION_KEY = "opspulse_account"


def accounts_for_user(user) -> QuerySet[Account]:
    """Return the accounts `user` is a member of, by name, each with the user's `role`."""
    if not user.is_authenticated:
        return Account.objects.none()
    # The role comes from the membership the filter joins (one per user and account).
    return Account.objects.filter(memberships__user=user).annotate(role=F("memberships__role")).order_by("name", "pk")


def get_account_for_user(user, public_id: UUID | str, *, at_least: Role = Role.MEMBER) -> Account:
    """Return the account with `public_id`, with the user's `role` on it.

    Raise Http404 if `user` is not a member (an account's existence is not revealed) and
    PermissionDenied if the user's role is below `at_least`.
    """
    try:
        account = accounts_for_user(user).get(public_id=public_id)
    except (Account.DoesNotExist, ValidationError):
        raise Http404("No such account") from None
    require_role(account, at_least)
    return account


def require_role(account: Account, at_least: Role) -> None:
    """Raise PermissionDenied unless the account's annotated `role` is at least `at_least`."""
    if not role_at_least(account.role, at_least):
        raise PermissionDenied(f"This needs the {at_least.label.lower()} role")


def current_account(request: HttpRequest) -> Account | None:
    """Return the account the user is working in, with their `role`, or None if they have none.

    The session remembers the choice, and it is checked against the memberships on every
    use: after a removal it falls back to the user's first account.
    """
    return pick_current_account(list(accounts_for_user(request.user)), request.session.get(CURRENT_ACCOUNT_SESSION_KEY))


def header_accounts(request: HttpRequest) -> tuple[list[Account], Account | None]:
    """The user's accounts and the current one, for the page header's account and store
    switchers: read once per page, when the header is rendered (after the view's work)."""
    cached = getattr(request, "_opspulse_header_accounts", None)
    if cached is None:
        accounts = list(accounts_for_user(request.user))
        cached = (accounts, pick_current_account(accounts, request.session.get(CURRENT_ACCOUNT_SESSION_KEY)))
        request._opspulse_header_accounts = cached
    return cached


def pick_current_account(accounts: list[Account], chosen: str | None) -> Account | None:
    """Of the user's `accounts`, the one whose public id the session holds, else the first."""
    for account in accounts:
        if chosen and str(account.public_id) == chosen:
            return account
    return accounts[0] if accounts else None


def get_current_account(request: HttpRequest, *, at_least: Role = Role.MEMBER) -> Account:
    """Return the current account; Http404 without one, PermissionDenied below `at_least`."""
    account = current_account(request)
    if account is None:
        raise Http404("No account")
    require_role(account, at_least)
    return account


def stores_of_account(account: Account) -> QuerySet:
    """Return the account's stores (but those being deleted), by name."""
    return account.stores.filter(deleted_at__isnull=True).select_related("account").order_by("name", "pk")


def members_of_account(account: Account) -> QuerySet[Membership]:
    """Return the account's memberships, owners first, then by email."""
    rank = Case(*(When(role=role, then=Value(-r)) for role, r in ROLE_RANK.items()), default=Value(0))
    return (
        Membership.objects.filter(account=account)
        .select_related("user")
        .annotate(rank=rank)
        .order_by("rank", "user__email")
    )


def get_membership_for_owner(user, public_id: UUID | str) -> Membership:
    """Return the membership with `public_id` for an owner of its account to change.

    Http404 for outsiders to that account, PermissionDenied for its non-owners.
    """
    try:
        membership = Membership.objects.select_related("account", "user").get(public_id=public_id)
    except (Membership.DoesNotExist, ValidationError):
        raise Http404("No such member") from None
    get_account_for_user(user, membership.account.public_id, at_least=Role.OWNER)
    return membership


def membership_of(user, account: Account) -> Membership:
    return Membership.objects.select_related("account", "user").get(user=user, account=account)


def open_invitations(account: Account) -> QuerySet[Invitation]:
    return Invitation.objects.open().filter(account=account).select_related("invited_by").order_by("-created_at")


def get_invitation_for_owner(user, public_id: UUID | str) -> Invitation:
    """Return the invitation with `public_id` for an owner of its account (404 / 403 as above)."""
    try:
        invitation = Invitation.objects.select_related("account").get(public_id=public_id)
    except (Invitation.DoesNotExist, ValidationError):
        raise Http404("No such invitation") from None
    get_account_for_user(user, invitation.account.public_id, at_least=Role.OWNER)
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    """Return the invitation a mailed token belongs to, whatever its state, or None."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("account", "invited_by")
        .filter(token_hash=hash_invitation_token(token))
        .first()
    )


def invitations_for_user(user) -> QuerySet[Invitation]:
    """Open, unexpired invitations to any of the user's confirmed addresses, newest first.

    Someone who signed up after being invited finds them on their home page.
    """
    addresses = [
        email.lower() for email in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    ]
    return (
        Invitation.objects.open()
        .annotate(address=Lower("email"))
        .filter(address__in=addresses, expires_at__gt=timezone.now())
        .select_related("account", "invited_by")
        .order_by("-created_at")
    )


def get_invitation_for_invitee(user, public_id: UUID | str) -> Invitation:
    """Return the open invitation with `public_id` addressed to the user, else raise Http404."""
    try:
        return invitations_for_user(user).get(public_id=public_id)
    except (Invitation.DoesNotExist, ValidationError):
        raise Http404("No such invitation") from None


def has_confirmed_email(user, email: str) -> bool:
    """Whether `user` has confirmed owning `email` (compared case-insensitively)."""
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def audit_events_for_account(account: Account) -> QuerySet[AuditEvent]:
    """Return the audit events an owner of `account` reads, newest first.

    Those recorded for the account, and the account-less ones (sign-ins, failures,
    password changes, devices) of the users who are its members now, from the moment each
    joined: what a member did before is none of the account's business.
    """
    member_then = Membership.objects.filter(
        account=account, user_id=OuterRef("user_id"), created_at__lte=OuterRef("created_at")
    )
    return (
        AuditEvent.objects.filter(Q(account=account) | Q(Exists(member_then), account__isnull=True))
        .select_related("user", "actor")
        .order_by("-created_at", "-pk")
    )


def get_session_of_user(user, reference: str):
    """Return the user's own signed-in session whose reference (see `session_reference`)
    is `reference`, else raise Http404."""
    from allauth.usersessions.models import UserSession

    for session in UserSession.objects.filter(user=user):
        if session_hash(session.session_key) == reference:
            return session
    raise Http404("No such session")
